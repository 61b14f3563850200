#pragma once
// The one place where LibTorch versions differ: Debian's 1.13 (CPU, CI) and 2.x with CUDA (GPU machine).
// Everything else in vesseltune uses APIs present in both.

#include <ATen/ATen.h>
#include <c10/util/Optional.h>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vesseltune::compat {

// Registration of a hook that runs right after autograd has accumulated a gradient into `param.grad()`; it is
// given the gradient that was added (sparse for an Embedding with sparse gradients).
// The returned handle keeps the hook (and the parameter's grad accumulator) alive; destroying it removes it.
class GradAccumulatedHook {
 public:
  GradAccumulatedHook(const at::Tensor& param, std::function<void(const at::Tensor& added)> on_accumulated);
  ~GradAccumulatedHook();
  GradAccumulatedHook(const GradAccumulatedHook&) = delete;
  GradAccumulatedHook& operator=(const GradAccumulatedHook&) = delete;

 private:
  std::shared_ptr<void> accumulator_;  // torch::autograd::Node, type-erased to keep autograd headers out
  uintptr_t key_ = 0;
};

// While alive, autograd makes new gradient accumulators for PARAMS (on the stream current when they are first
// used) and forgets their own; destroying it puts their own back (with the hooks on them). For recording a
// backward pass as a CUDA graph: an accumulator remembers the stream it was made on (the default stream, before
// any graph), and autograd's sync with that stream from a capturing stream breaks the capture.
class FreshGradAccumulators {
 public:
  explicit FreshGradAccumulators(std::vector<at::Tensor> params);
  ~FreshGradAccumulators();
  FreshGradAccumulators(const FreshGradAccumulators&) = delete;
  FreshGradAccumulators& operator=(const FreshGradAccumulators&) = delete;

 private:
  std::vector<at::Tensor> params_;
  std::vector<std::shared_ptr<void>> own_;  // torch::autograd::Node, type-erased as in GradAccumulatedHook
};

// softmax(q kᵀ · scale + mask) v over the last two dimensions ([..., L, E] × [..., S, E] → [..., L, Ev]).
// 2.x: at::scaled_dot_product_attention (flash / memory-efficient kernels on the GPU); 1.13 has none, so the
// same arithmetic is spelled out with matmul + softmax. `mask`: bool (true = attend) or additive float,
// broadcastable to [..., L, S]; `scale` defaults to 1/sqrt(E). Grouped-query attention: k and v [B, Hkv, S, E]
// with H = g·Hkv query heads serve query heads h·g … h·g + g − 1 each; the flash kernel (2.5+, half precision,
// no mask) reads them as they are, other paths repeat them.
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const c10::optional<at::Tensor>& mask = c10::nullopt,
                                        bool is_causal = false, c10::optional<double> scale = c10::nullopt);

// x / sqrt(mean(x², last dim) + eps) · weight, computed in fp32 and returned in x's dtype, as transformers'
// Qwen2RMSNorm (which rounds the normalised x to its dtype before the weight; 2.x's fused kernel rounds once at
// the end, one bf16 ulp apart). 2.x: at::rms_norm (one fused kernel forward and backward on the GPU); 1.13:
// spelled out.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// One AdamW step in one fused kernel on a GPU (2.x: at::_fused_adamw_, what torch.optim.AdamW(fused=True) runs):
// MASTER, EXP_AVG and EXP_AVG_SQ (fp32, one shape) are updated in place from GRAD (fp32) divided by GRAD_DIVISOR;
// STEP (counted from 1) and GRAD_DIVISOR are one-element fp32 tensors on the same device. GRAD is overwritten with
// GRAD / GRAD_DIVISOR. Returns false, having done nothing, where this LibTorch has no such kernel (1.13) or the
// tensors are not on a GPU: the caller then runs tensor operations.
bool fused_adamw(at::Tensor master, at::Tensor exp_avg, at::Tensor exp_avg_sq, at::Tensor grad, const at::Tensor& step,
                 const at::Tensor& grad_divisor, double lr, double beta1, double beta2, double weight_decay, double eps);

// True when this LibTorch was built with CUDA (tensors can live on a GPU).
bool torch_has_cuda();

// The CUDA stream LibTorch computes on for the current device (cudaStream_t), or nullptr without CUDA.
void* current_cuda_stream();

// Makes `index` the current CUDA device for LibTorch and the CUDA runtime. No-op without CUDA.
void set_cuda_device(int index);

// CUDA caching allocator figures of `device` in bytes (0 without CUDA), for benchmarks and the memory plan.
int64_t cuda_peak_allocated_bytes(int device);
int64_t cuda_peak_reserved_bytes(int device);  // includes what CUDA graphs' pools keep and allocator caching
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

// Work on the current CUDA device recorded once as a CUDA graph and replayed with one launch: the host's cost per
// kernel (what bounds small-batch steps) is paid at capture only. Graphs that share a memory pool must not run
// concurrently. Without CUDA, capture throws.
class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  // A graph serves inputs of one shape and dtype: the key to keep graphs by input (sizes, then the dtype).
  static std::vector<int64_t> key_of(const at::Tensor& input);
  // Runs WORK once on the device's capture stream (lazy library state, e.g. cuBLAS workspaces, is set up outside
  // the graph), then records it. WORK must not wait for the host (no .item(), no copies to pageable memory); what it
  // allocates while recorded comes from this graph's pool, or from SHARE_POOL_WITH's (a captured graph).
  // Only this thread's work is recorded; other threads may use the device meanwhile.
  void capture(const std::function<void()>& work, const CudaGraph* share_pool_with = nullptr);
  // Runs the recorded work on the current stream.
  void replay();
  bool captured() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One event of LibTorch's (Kineto) profiler: an operator or runtime call on the host, or a kernel/copy on the GPU.
struct ProfiledEvent {
  std::string name;
  bool on_gpu = false;     // runs on the device (kernel, memcpy, memset); false: a host-side event
  double start_us = 0;     // from an arbitrary origin common to all events of one profile
  double duration_us = 0;
};

struct ProfiledRun {
  std::vector<ProfiledEvent> events;
  std::string trace_error;  // why the Chrome trace was not written ("" when it was, or none was asked for)
};

// Starts LibTorch's profiler on this process (host operators, and with CUDA the runtime calls and kernels).
// LibTorch builds without Kineto (Debian's 1.13) record the host operators only and cannot write a trace.
void start_op_profiler(bool cuda);
// Stops it; writes the Chrome trace to TRACE_PATH unless empty.
ProfiledRun stop_op_profiler(const std::string& trace_path);

}  // namespace vesseltune::compat
