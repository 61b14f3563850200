#pragma once
// The memory plan's own pieces, shared by its three files: memory_plan.cpp (activations, the plan, its table),
// memory_plan_parameters.cpp (the parameter list) and memory_plan_advice.cpp (what to change to fit a GPU).

#include <algorithm>
#include <string>
#include <vector>

#include "vesseltune/optim/flat_layout.h"
#include "vesseltune/perf/memory_plan.h"

namespace vesseltune::perf::plan {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The parameter list, in the model code's registration order.
class ParameterList {
 public:
  explicit ParameterList(const PlanInputs& in) : in_(in) {}

  void add(const std::string& key, std::vector<int64_t> shape) { params_.push_back({key, std::move(shape), false}); }
  void linear(const std::string& key, int64_t in, int64_t out, bool bias = true) {
    add(key + ".weight", {out, in});
    if (bias) add(key + ".bias", {out});
  }
  // A model::LoraLinear: nn.Linear keys, then the adapter where model::apply_lora would add one.
  void lora_linear(const std::string& key, int64_t in, int64_t out, bool bias) {
    linear(key, in, out, bias);
    if (!has_adapter(key)) return;
    add(key + ".lora_A.weight", {in_.model.lora.r, in});
    add(key + ".lora_B.weight", {out, in_.model.lora.r});
  }
  void norm(const std::string& key, int64_t size, bool bias = true) {
    add(key + ".weight", {size});
    if (bias) add(key + ".bias", {size});
  }
  void conv(const std::string& key, int64_t in, int64_t out, int64_t kernel) {
    add(key + ".weight", {out, in, kernel, kernel});
    add(key + ".bias", {out});
  }
  void conv_transpose(const std::string& key, int64_t in, int64_t out, int64_t kernel) {
    add(key + ".weight", {in, out, kernel, kernel});
    add(key + ".bias", {out});
  }
  void embedding(const std::string& key, int64_t count, int64_t size) { add(key + ".weight", {count, size}); }
  // model::sam2::Mlp: layers.0 .. layers.{n-1}.
  void sam2_mlp(const std::string& key, int64_t in, int64_t hidden, int64_t out, int64_t layers) {
    for (int64_t i = 0; i < layers; ++i) {
      linear(key + ".layers." + std::to_string(i), i == 0 ? in : hidden, i == layers - 1 ? out : hidden);
    }
  }

  bool has_adapter(const std::string& key) const {
    if (!in_.model.use_llm_lora) return false;
    const model::LoraConfig& lora = in_.model.lora;
    const std::string name = key.substr(key.rfind('.') + 1);
    return key.compare(0, lora.scope.size(), lora.scope) == 0 &&
           std::find(lora.target_modules.begin(), lora.target_modules.end(), name) != lora.target_modules.end();
  }
  std::vector<PlannedParameter> take() { return std::move(params_); }

 private:
  const PlanInputs& in_;
  std::vector<PlannedParameter> params_;
};

struct Parameters {
  std::vector<PlannedParameter> all;
  std::vector<optim::TensorSpec> trainable;  // what the ZeRO optimizer lays out
};

// Every parameter of the model IN describes, with trainability and groups decided on a meta-tensor tree by the
// model's own rules (memory_plan.cpp's header explains).
Parameters list_parameters(const PlanInputs& in, ParameterList& list);

// Refuses inputs the plan cannot describe, naming the setting.
void check_inputs(const PlanInputs& in);

// "1.23 GiB".
std::string gib(int64_t bytes);

}  // namespace vesseltune::perf::plan
