#include "vesseltune/optim/deepspeed_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::optim {
namespace {

using nlohmann::json;

// Walks one JSON object, remembering which keys were read, so that the rest can be reported by name.
class Section {
 public:
  Section(const json& object, std::string path, const std::string& source) : object_(object), path_(std::move(path)), source_(source) {
    VT_CHECK(object_.is_object(), source_, ": '", path_.empty() ? "(top level)" : path_, "' must be an object");
  }

  bool has(const std::string& key) const { return object_.contains(key); }
  std::string path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const json& raw(const std::string& key) {
    used_.insert(key);
    return object_.at(key);
  }
  Section section(const std::string& key) { return Section(raw(key), path(key), source_); }

  // "auto" (or an absent key) gives `fallback`.
  template <typename T>
  T value(const std::string& key, T fallback) {
    if (!has(key)) return fallback;
    const json& v = raw(key);
    if (v.is_string() && v.get<std::string>() == "auto") return fallback;
    try {
      if constexpr (std::is_same_v<T, bool>) {
        VT_CHECK(v.is_boolean(), "expected true, false or \"auto\"");
      } else if constexpr (std::is_arithmetic_v<T>) {
        VT_CHECK(v.is_number(), "expected a number or \"auto\"");
      }
      return v.get<T>();
    } catch (const std::exception& error) {
      VT_FAIL(source_, ": '", path(key), "' = ", v.dump(), ": ", error.what());
    }
  }

  void accept_without_effect(const std::string& key, const std::string& why, std::vector<std::string>& notes) {
    if (!has(key)) return;
    raw(key);
    notes.push_back(source_ + ": '" + path(key) + "' has no effect in vesseltune (" + why + ")");
  }

  void refuse(const std::string& key, const std::string& why) {
    VT_CHECK(!has(key), source_, ": '", path(key), "' is not supported: ", why);
  }

  // Call last: every key not read is an error.
  void reject_unknown() const {
    std::vector<std::string> unknown;
    for (const auto& item : object_.items()) {
      if (!used_.count(item.key())) unknown.push_back(path(item.key()));
    }
    if (unknown.empty()) return;
    std::ostringstream list;
    for (size_t i = 0; i < unknown.size(); ++i) list << (i ? ", " : "") << "'" << unknown[i] << "'";
    VT_FAIL(source_, ": unknown or unsupported key(s) ", list.str());
  }

 private:
  const json& object_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> used_;
};

}  // namespace

namespace {

// train_micro_batch_size_per_gpu, gradient_accumulation_steps (checked against train_batch_size) and clipping.
void parse_batch(Section& top, const TrainingDefaults& defaults, const std::string& source,
                 DeepSpeedSettings& settings) {
  settings.micro_batch_per_gpu = top.value("train_micro_batch_size_per_gpu", defaults.micro_batch_per_gpu);
  settings.gradient_accumulation_steps = top.value("gradient_accumulation_steps", defaults.gradient_accumulation_steps);
  VT_CHECK(settings.micro_batch_per_gpu >= 1, source, ": 'train_micro_batch_size_per_gpu' must be >= 1");
  VT_CHECK(settings.gradient_accumulation_steps >= 1, source, ": 'gradient_accumulation_steps' must be >= 1");
  const int expected_batch = settings.micro_batch_per_gpu * settings.gradient_accumulation_steps * defaults.world_size;
  const int train_batch = top.value("train_batch_size", expected_batch);
  VT_CHECK(train_batch == expected_batch, source, ": 'train_batch_size' = ", train_batch, " but micro batch ",
           settings.micro_batch_per_gpu, " x accumulation ", settings.gradient_accumulation_steps, " x world ",
           defaults.world_size, " = ", expected_batch);
  settings.zero.gradient_clipping = top.value("gradient_clipping", defaults.gradient_clipping);
}

// bf16 on or off; fp16 only as xtuner's "enabled": "auto" block, which resolves to off when bf16 is on.
void parse_precision(Section& top, const TrainingDefaults& defaults, const std::string& source,
                     DeepSpeedSettings& settings) {
  settings.bf16 = defaults.bf16;
  if (top.has("bf16")) {
    Section bf16 = top.section("bf16");
    settings.bf16 = bf16.value("enabled", defaults.bf16);
    bf16.reject_unknown();
  }
  if (top.has("fp16")) {
    Section fp16 = top.section("fp16");
    const bool enabled = fp16.value("enabled", false);
    VT_CHECK(!enabled, source, ": 'fp16.enabled' = true is not supported: vesseltune trains in bf16 or fp32");
    for (const char* key : {"initial_scale_power", "loss_scale", "loss_scale_window", "hysteresis", "min_loss_scale"}) {
      fp16.accept_without_effect(key, "fp16 is off", settings.notes);
    }
    fp16.reject_unknown();
  }
}

void parse_offload(Section& z, DeepSpeedSettings& settings) {
  Section offload = z.section("offload_optimizer");
  ZeroConfig& zero = settings.zero;
  zero.offload = parse_offload_device(offload.value<std::string>("device", "none"));
  zero.pin_memory = offload.value("pin_memory", zero.pin_memory);
  offload.accept_without_effect("buffer_count", "host buffers are sized per shard", settings.notes);
  offload.accept_without_effect("fast_init", "state is created in place", settings.notes);
  zero.offload_ratio = offload.value("ratio", zero.offload_ratio);
  offload.refuse("nvme_path", "nvme offload is not implemented");
  offload.reject_unknown();
}

void parse_zero_optimization(Section& top, const std::string& source, DeepSpeedSettings& settings) {
  if (!top.has("zero_optimization")) return;
  Section z = top.section("zero_optimization");
  ZeroConfig& zero = settings.zero;
  auto& notes = settings.notes;
  zero.stage = z.value("stage", zero.stage);
  zero.overlap_comm = z.value("overlap_comm", zero.overlap_comm);
  zero.reduce_bucket_numel = static_cast<int64_t>(z.value("reduce_bucket_size", static_cast<double>(zero.reduce_bucket_numel)));
  VT_CHECK(z.value("reduce_scatter", true), source, ": 'zero_optimization.reduce_scatter' = false is not supported");
  VT_CHECK(z.value("contiguous_gradients", true), source,
           ": 'zero_optimization.contiguous_gradients' = false is not supported (gradients are always contiguous)");
  VT_CHECK(z.value("allgather_partitions", true), source,
           ": 'zero_optimization.allgather_partitions' = false is not supported");
  z.accept_without_effect("allgather_bucket_size", "parameters are all-gathered per reduce bucket", notes);
  z.accept_without_effect("round_robin_gradients", "ownership is by bucket chunk", notes);
  z.accept_without_effect("sub_group_size", "the optimizer runs per bucket", notes);
  z.accept_without_effect("load_from_fp32_weights", "master weights are always restored from the checkpoint", notes);
  z.refuse("offload_param", "parameter offload belongs to stage 3, which vesseltune does not implement");
  z.refuse("stage3_prefetch_bucket_size", "stage 3 is not implemented");
  z.refuse("stage3_param_persistence_threshold", "stage 3 is not implemented");
  z.refuse("stage3_max_live_parameters", "stage 3 is not implemented");
  z.refuse("stage3_gather_16bit_weights_on_model_save", "stage 3 is not implemented");
  if (z.has("offload_optimizer")) parse_offload(z, settings);
  z.reject_unknown();
}

// AdamW only; its lr, betas, eps and weight decay (the training config's where the JSON has none).
void parse_optimizer(Section& top, const TrainingDefaults& defaults, const std::string& source,
                     DeepSpeedSettings& settings) {
  ZeroConfig& zero = settings.zero;
  zero.beta1 = defaults.beta1;
  zero.beta2 = defaults.beta2;
  zero.eps = defaults.eps;
  zero.weight_decay = defaults.weight_decay;
  settings.lr = defaults.lr;
  if (!top.has("optimizer")) return;
  Section optimizer = top.section("optimizer");
  const std::string type = optimizer.value<std::string>("type", "AdamW");
  VT_CHECK(type == "AdamW" || type == "adamw", source, ": 'optimizer.type' = \"", type,
           "\": vesseltune implements AdamW only");
  if (optimizer.has("params")) {
    Section params = optimizer.section("params");
    settings.lr = params.value("lr", defaults.lr);
    if (params.has("betas") && !params.raw("betas").is_string()) {
      const json& betas = params.raw("betas");
      VT_CHECK(betas.is_array() && betas.size() == 2, source, ": 'optimizer.params.betas' must be [beta1, beta2]");
      zero.beta1 = betas[0].get<double>();
      zero.beta2 = betas[1].get<double>();
    }
    zero.eps = params.value("eps", defaults.eps);
    zero.weight_decay = params.value("weight_decay", defaults.weight_decay);
    params.accept_without_effect("torch_adam", "the AdamW kernels are vesseltune's own", settings.notes);
    params.accept_without_effect("adam_w_mode", "weight decay is always decoupled (AdamW)", settings.notes);
    params.reject_unknown();
  }
  optimizer.reject_unknown();
}

// Top-level keys that belong to DeepSpeed's engine: refused where they would change training, else noted.
void parse_engine_keys(Section& top, DeepSpeedSettings& settings) {
  auto& notes = settings.notes;
  top.refuse("scheduler", "set the schedule in the training config (lr, warmup_ratio); it is cosine with warmup");
  top.accept_without_effect("steps_per_print", "use log_interval in the training config", notes);
  top.accept_without_effect("wall_clock_breakdown", "step phase times are always measured", notes);
  top.accept_without_effect("zero_allow_untested_optimizer", "the optimizer is vesseltune's AdamW", notes);
  top.accept_without_effect("zero_force_ds_cpu_optimizer", "the CPU optimizer is vesseltune's SIMD AdamW", notes);
  top.accept_without_effect("dump_state", "no DeepSpeed engine here", notes);
}

}  // namespace

DeepSpeedSettings parse_deepspeed_config(const std::string& json_text, const std::string& source,
                                         const TrainingDefaults& defaults) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& error) {
    VT_FAIL(source, ": not valid JSON: ", error.what());
  }
  DeepSpeedSettings settings;
  Section top(root, "", source);
  parse_batch(top, defaults, source, settings);
  parse_precision(top, defaults, source, settings);
  parse_zero_optimization(top, source, settings);
  parse_optimizer(top, defaults, source, settings);
  parse_engine_keys(top, settings);
  top.reject_unknown();
  settings.zero.validate();
  return settings;
}

DeepSpeedSettings load_deepspeed_config(const std::string& path, const TrainingDefaults& defaults) {
  std::ifstream file(path);
  VT_CHECK(file.good(), "cannot read DeepSpeed config '", path, "'");
  std::stringstream text;
  text << file.rdbuf();
  return parse_deepspeed_config(text.str(), path, defaults);
}

}  // namespace vesseltune::optim
