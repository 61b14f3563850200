#pragma once
// The one place where LibTorch versions differ: Debian's 1.13 (CPU, CI) and 2.x with CUDA (GPU machine).
// Everything else in vesseltune uses APIs present in both.

#include <ATen/ATen.h>
#include <c10/util/Optional.h>
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

// softmax(q kᵀ · scale + mask) v over the last two dimensions ([..., L, E] × [..., S, E] → [..., L, Ev]).
// 2.x: at::scaled_dot_product_attention (flash / memory-efficient kernels on the GPU); 1.13 has none, so the
// same arithmetic is spelled out with matmul + softmax. `mask`: bool (true = attend) or additive float,
// broadcastable to [..., L, S]; `scale` defaults to 1/sqrt(E).
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const c10::optional<at::Tensor>& mask = c10::nullopt,
                                        bool is_causal = false, c10::optional<double> scale = c10::nullopt);

// True when this LibTorch was built with CUDA (tensors can live on a GPU).
bool torch_has_cuda();

// The CUDA stream LibTorch computes on for the current device (cudaStream_t), or nullptr without CUDA.
void* current_cuda_stream();

// Makes `index` the current CUDA device for LibTorch and the CUDA runtime. No-op without CUDA.
void set_cuda_device(int index);

// CUDA caching allocator figures of `device` in bytes (0 without CUDA), for benchmarks and the memory plan.
int64_t cuda_peak_allocated_bytes(int device);
void cuda_reset_peak_stats(int device);
void cuda_synchronize(int device);

// Points in the work of the current CUDA stream (events with timing), so that phases of GPU work can be timed
// without stalling the host; on the CPU (or without CUDA) the points are host times. For benchmarks.
class StreamClock {
 public:
  explicit StreamClock(bool cuda);
  ~StreamClock();
  StreamClock(const StreamClock&) = delete;
  StreamClock& operator=(const StreamClock&) = delete;
  // Records a point now (on the stream: when the work issued so far is done); returns its index.
  int mark();
  // Milliseconds from point `from` to point `to`; waits until `to` has been reached.
  double elapsed_ms(int from, int to);
  // Forgets every point.
  void clear();

 private:
  struct Points;
  std::unique_ptr<Points> points_;
};

}  // namespace vesseltune::compat
