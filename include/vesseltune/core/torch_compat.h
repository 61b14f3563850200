#pragma once
// The one place where LibTorch versions differ: Debian's 1.13 (CPU, CI) and 2.x with CUDA (GPU machine).
// Everything else in vesseltune uses APIs present in both.

#include <ATen/ATen.h>
#include <functional>
#include <memory>

namespace vesseltune::compat {

// Registration of a hook that runs right after autograd has accumulated a gradient into `param.grad()`.
// The returned handle keeps the hook (and the parameter's grad accumulator) alive; destroying it removes it.
class GradAccumulatedHook {
 public:
  GradAccumulatedHook(const at::Tensor& param, std::function<void()> on_accumulated);
  ~GradAccumulatedHook();
  GradAccumulatedHook(const GradAccumulatedHook&) = delete;
  GradAccumulatedHook& operator=(const GradAccumulatedHook&) = delete;

 private:
  std::shared_ptr<void> accumulator_;  // torch::autograd::Node, type-erased to keep autograd headers out
  uintptr_t key_ = 0;
};

// True when this LibTorch was built with CUDA (tensors can live on a GPU).
bool torch_has_cuda();

// The CUDA stream LibTorch computes on for the current device (cudaStream_t), or nullptr without CUDA.
void* current_cuda_stream();

// Makes `index` the current CUDA device for LibTorch and the CUDA runtime. No-op without CUDA.
void set_cuda_device(int index);

}  // namespace vesseltune::compat
