#pragma once
// Activation checkpointing for LibTorch (which has no torch.utils.checkpoint in C++): run `fn` without
// recording a graph, keep only its inputs, and in the backward pass run it again with the graph on and
// backpropagate through that recomputation. Memory of a checkpointed block: its inputs instead of every
// intermediate activation; cost: one more forward of the block.
//
// Parameters used inside `fn` get their gradients from the recomputation (accumulated into .grad as usual,
// so optimizer hooks on the parameters fire). The CPU and device RNG states are restored before the
// recomputation, so dropout draws the same masks. `fn` is kept until the backward pass: capture by value
// (module holders, masks, RoPE tables), never references to locals. Captured tensors must not require grad;
// pass everything that needs a gradient through `inputs`.
//
// Use: hidden = checkpoint([layer, mask](const at::Tensor& x) { return layer->forward(x, mask); }, hidden);

#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace vesseltune::model {

using CheckpointFn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

// Without grad mode (or when no input and no parameter needs a gradient) this is just fn(inputs).
std::vector<at::Tensor> checkpoint(CheckpointFn fn, const std::vector<at::Tensor>& inputs);

at::Tensor checkpoint(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& input);

// The state of the generator that dropout on DEVICE draws from (the CPU's for nullopt), and setting it back:
// a recomputation that starts from the same state draws the same masks.
at::Tensor rng_state(const c10::optional<at::Device>& device);
void set_rng_state(const c10::optional<at::Device>& device, const at::Tensor& state);

}  // namespace vesseltune::model
