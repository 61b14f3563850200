#include "vesseltune/model/activation_checkpoint.h"

#include <ATen/core/ivalue.h>
#include <torch/autograd.h>

#include <mutex>

#include "vesseltune/core/check.h"

namespace vesseltune::model {
namespace {

at::Generator generator_of(const c10::optional<at::Device>& device) {
  return device ? at::globalContext().defaultGenerator(*device) : at::detail::getDefaultCPUGenerator();
}

}  // namespace

at::Tensor rng_state(const c10::optional<at::Device>& device) {
  at::Generator gen = generator_of(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const c10::optional<at::Device>& device, const at::Tensor& state) {
  at::Generator gen = generator_of(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward pass needs besides the saved inputs: the function and the RNG states it started with.
struct CheckpointState : torch::CustomClassHolder {
  CheckpointFn fn;
  c10::optional<at::Device> device;  // the inputs' accelerator, whose generator dropout draws from
  at::Tensor cpu_rng, device_rng;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  // inputs: the caller's tensors plus, last, an empty tensor that requires grad, so that the outputs are
  // part of the graph even when no input needs a gradient (parameters inside fn still do).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<CheckpointState> state,
                               at::TensorList inputs) {
    variable_list real(inputs.begin(), inputs.end() - 1);
    ctx->save_for_backward(real);
    state->cpu_rng = rng_state(c10::nullopt);
    if (state->device) state->device_rng = rng_state(state->device);
    variable_list outputs = state->fn(real);  // grad mode is off inside Function::forward
    ctx->saved_data["state"] = at::IValue::make_capsule(std::move(state));
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(ctx->saved_data["state"].toCapsule());
    variable_list saved = ctx->get_saved_variables();
    variable_list inputs;
    for (const at::Tensor& x : saved) {
      inputs.push_back(x.defined() ? x.detach().requires_grad_(x.requires_grad()) : x);
    }
    // Recompute with the RNG states of the first forward, then put the current states back.
    at::Tensor cpu_now = rng_state(c10::nullopt);
    at::Tensor device_now = state->device ? rng_state(state->device) : at::Tensor();
    set_rng_state(c10::nullopt, state->cpu_rng);
    if (state->device) set_rng_state(state->device, state->device_rng);
    variable_list outputs;
    {
      at::AutoGradMode enable(true);
      outputs = state->fn(inputs);
    }
    set_rng_state(c10::nullopt, cpu_now);
    if (state->device) set_rng_state(state->device, device_now);

    VT_CHECK(outputs.size() == grad_outputs.size(), "checkpoint: the recomputation returned ", outputs.size(),
             " tensors, the first forward ", grad_outputs.size());
    variable_list roots, grads;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].defined() && outputs[i].requires_grad() && grad_outputs[i].defined()) {
        roots.push_back(outputs[i]);
        grads.push_back(grad_outputs[i]);
      }
    }
    if (!roots.empty()) torch::autograd::backward(roots, grads);

    variable_list result{at::Tensor()};  // for the state argument
    for (const at::Tensor& x : inputs) result.push_back(x.defined() && x.requires_grad() ? x.grad() : at::Tensor());
    result.emplace_back();  // for the graph anchor
    return result;
  }
};

}  // namespace

std::vector<at::Tensor> checkpoint(CheckpointFn fn, const std::vector<at::Tensor>& inputs) {
  if (!at::GradMode::is_enabled()) return fn(inputs);
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = std::move(fn);
  for (const at::Tensor& x : inputs) {
    if (x.defined() && !x.device().is_cpu()) {
      state->device = x.device();
      break;
    }
  }
  variable_list args(inputs.begin(), inputs.end());
  args.push_back(at::empty({0}).requires_grad_(true));
  // As a TensorList: autograd counts the tensors of a list argument as inputs (a std::vector would not be).
  return CheckpointFunction::apply(state, at::TensorList(args));
}

at::Tensor checkpoint(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& input) {
  return checkpoint([fn](const std::vector<at::Tensor>& x) { return std::vector<at::Tensor>{fn(x[0])}; },
                    {input})[0];
}

}  // namespace vesseltune::model
