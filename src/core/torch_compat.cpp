#include "vesseltune/core/torch_compat.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#ifdef VESSELTUNE_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include "vesseltune/core/check.h"

namespace vesseltune::compat {

GradAccumulatedHook::GradAccumulatedHook(const at::Tensor& param,
                                         std::function<void(const at::Tensor& added)> on_accumulated) {
  VT_CHECK(param.requires_grad() && param.is_leaf(), "gradient hooks need a leaf tensor that requires grad");
  // The AccumulateGrad node is what DDP hooks too: its post hook runs after param.grad() was updated.
  // (LibTorch 2.x has Tensor::register_post_accumulate_grad_hook; 1.13 has only this route, present in both.)
  std::shared_ptr<torch::autograd::Node> node = torch::autograd::impl::grad_accumulator(param);
  VT_CHECK(node != nullptr, "no grad accumulator for a trainable tensor");
  key_ = node->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
      // The engine keeps the node's inputs (the gradient it added) for its post hooks.
      [hook = std::move(on_accumulated)](const torch::autograd::variable_list& outputs,
                                         const torch::autograd::variable_list& inputs) {
        hook(inputs.at(0));
        return outputs;
      }));
  accumulator_ = node;
}

GradAccumulatedHook::~GradAccumulatedHook() {
  if (accumulator_) {
    std::static_pointer_cast<torch::autograd::Node>(accumulator_)->del_post_hook(key_);
  }
}

FreshGradAccumulators::FreshGradAccumulators(std::vector<at::Tensor> params) : params_(std::move(params)) {
  for (const at::Tensor& p : params_) {
    VT_CHECK(p.requires_grad() && p.is_leaf(), "gradient accumulators belong to leaf tensors that require grad");
    own_.push_back(torch::autograd::impl::grad_accumulator(p));
    torch::autograd::impl::set_grad_accumulator(p, {});
  }
}

FreshGradAccumulators::~FreshGradAccumulators() {
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::autograd::impl::set_grad_accumulator(params_[i], std::static_pointer_cast<torch::autograd::Node>(own_[i]));
  }
}

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const c10::optional<at::Tensor>& mask, bool is_causal,
                                        c10::optional<double> scale) {
  VT_CHECK(q.dim() >= 3 && k.dim() == q.dim() && v.dim() == q.dim(), "attention: q, k, v must have the same rank "
           "(>= 3), got ", q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  const int64_t heads = q.size(-3), kv_heads = k.size(-3);
  VT_CHECK(kv_heads > 0 && heads % kv_heads == 0 && v.size(-3) == kv_heads, "attention: ", heads,
           " query heads cannot share ", kv_heads, " key and ", v.size(-3), " value heads");
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  const bool half = q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  if (kv_heads == heads || (q.is_cuda() && half && !mask.has_value())) {
    return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale, /*enable_gqa=*/kv_heads != heads);
  }
#endif
  const at::Tensor keys = kv_heads == heads ? k : k.repeat_interleave(heads / kv_heads, -3);
  const at::Tensor values = kv_heads == heads ? v : v.repeat_interleave(heads / kv_heads, -3);
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, keys, values, mask, 0.0, is_causal, scale);
#else
  const double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, keys.transpose(-2, -1)) * s;
  if (is_causal) {
    at::Tensor keep = at::ones({q.size(-2), keys.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value()) {
    scores = mask->scalar_type() == at::kBool
                 ? scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity())
                 : scores + *mask;
  }
  return at::matmul(at::softmax(scores, -1), values);
#endif
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if TORCH_VERSION_MAJOR >= 2
  return at::rms_norm(x, {x.size(-1)}, weight.to(x.scalar_type()), eps);
#else
  at::Tensor x32 = x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);  // double stays double (references)
  at::Tensor normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
#endif
}

bool fused_adamw(at::Tensor master, at::Tensor exp_avg, at::Tensor exp_avg_sq, at::Tensor grad, const at::Tensor& step,
                 const at::Tensor& grad_divisor, double lr, double beta1, double beta2, double weight_decay, double eps) {
#if TORCH_VERSION_MAJOR >= 2 && defined(VESSELTUNE_TORCH_HAS_CUDA)
  if (!master.is_cuda()) return false;
  at::_fused_adamw_({master}, {grad}, {exp_avg}, {exp_avg_sq}, /*max_exp_avg_sqs=*/{}, {step}, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false, grad_divisor, /*found_inf=*/c10::nullopt);
  return true;
#else
  (void)master, (void)exp_avg, (void)exp_avg_sq, (void)grad, (void)step, (void)grad_divisor;
  (void)lr, (void)beta1, (void)beta2, (void)weight_decay, (void)eps;
  return false;
#endif
}

bool torch_has_cuda() {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  return true;
#else
  return false;
#endif
}

void* current_cuda_stream() {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  return c10::cuda::getCurrentCUDAStream().stream();
#else
  return nullptr;
#endif
}

void set_cuda_device(int index) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
#else
  (void)index;
#endif
}

int64_t cuda_peak_allocated_bytes(int device) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return stats.allocated_bytes[0].peak;  // index 0: StatType::AGGREGATE
#else
  (void)device;
  return 0;
#endif
}

int64_t cuda_peak_reserved_bytes(int device) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return stats.reserved_bytes[0].peak;
#else
  (void)device;
  return 0;
#endif
}

void cuda_reset_peak_stats(int device) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
#else
  (void)device;
#endif
}

void cuda_synchronize(int device) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

struct StreamClock::Points {
  bool cuda = false;
  std::vector<std::chrono::steady_clock::time_point> host;
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  std::vector<cudaEvent_t> events;
#endif
};

StreamClock::StreamClock(bool cuda) : points_(std::make_unique<Points>()) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  points_->cuda = cuda;
#else
  VT_CHECK(!cuda, "StreamClock: this LibTorch has no CUDA");
#endif
}

StreamClock::~StreamClock() { clear(); }

int StreamClock::mark() {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  if (points_->cuda) {
    cudaEvent_t event = nullptr;
    VT_CHECK(cudaEventCreate(&event) == cudaSuccess, "StreamClock: cudaEventCreate failed");
    VT_CHECK(cudaEventRecord(event, c10::cuda::getCurrentCUDAStream().stream()) == cudaSuccess,
             "StreamClock: cudaEventRecord failed");
    points_->events.push_back(event);
    return static_cast<int>(points_->events.size()) - 1;
  }
#endif
  points_->host.push_back(std::chrono::steady_clock::now());
  return static_cast<int>(points_->host.size()) - 1;
}

double StreamClock::elapsed_ms(int from, int to) {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  if (points_->cuda) {
    auto& e = points_->events;
    VT_CHECK(from >= 0 && to >= 0 && to < static_cast<int>(e.size()) && from < static_cast<int>(e.size()),
             "StreamClock: no point ", from, " or ", to);
    VT_CHECK(cudaEventSynchronize(e[to]) == cudaSuccess, "StreamClock: cudaEventSynchronize failed");
    float ms = 0;
    VT_CHECK(cudaEventElapsedTime(&ms, e[from], e[to]) == cudaSuccess, "StreamClock: cudaEventElapsedTime failed");
    return ms;
  }
#endif
  const auto& h = points_->host;
  VT_CHECK(from >= 0 && to >= 0 && to < static_cast<int>(h.size()) && from < static_cast<int>(h.size()),
           "StreamClock: no point ", from, " or ", to);
  return std::chrono::duration<double, std::milli>(h[to] - h[from]).count();
}

void StreamClock::clear() {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  for (cudaEvent_t event : points_->events) cudaEventDestroy(event);
  points_->events.clear();
#endif
  points_->host.clear();
}

struct CudaGraph::State {
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  at::cuda::CUDAGraph graph;
#endif
  bool captured = false;
};

CudaGraph::CudaGraph() : state_(std::make_unique<State>()) {}
CudaGraph::~CudaGraph() = default;
bool CudaGraph::captured() const { return state_->captured; }

std::vector<int64_t> CudaGraph::key_of(const at::Tensor& input) {
  std::vector<int64_t> key(input.sizes().begin(), input.sizes().end());
  key.push_back(static_cast<int64_t>(input.scalar_type()));
  return key;
}

#ifdef VESSELTUNE_TORCH_HAS_CUDA
namespace {
// One stream per device for every capture, made once and kept for the process (as torch.cuda.graph's
// default_capture_stream): the caching allocator reuses a freed block only on the stream it was allocated on, so
// graphs that share a pool reuse each other's memory only when they were captured on the same stream.
// getStreamFromPool() rotates over 32 streams, which left most of a shared pool's blocks unusable to the next
// capture.
c10::cuda::CUDAStream capture_stream() {
  static std::mutex mutex;
  static std::map<c10::DeviceIndex, cudaStream_t> streams;
  const c10::DeviceIndex device = c10::cuda::current_device();
  std::lock_guard<std::mutex> lock(mutex);
  cudaStream_t& stream = streams[device];
  if (stream == nullptr) {
    const cudaError_t status = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    VT_CHECK(status == cudaSuccess, "CUDA graph: cannot create a capture stream on device ", static_cast<int>(device),
             ": ", cudaGetErrorString(status));
  }
  return c10::cuda::getStreamFromExternal(stream, device);
}
}  // namespace
#endif

void CudaGraph::capture(const std::function<void()>& work, const CudaGraph* share_pool_with) {
  VT_CHECK(!state_->captured, "CUDA graph: captured already");
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  VT_CHECK(share_pool_with == nullptr || share_pool_with->captured(), "CUDA graph: the pool to share is not captured");
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
  const c10::cuda::CUDAStream side = capture_stream();
  at::cuda::CUDAEvent inputs_ready;
  inputs_ready.record(current);
  inputs_ready.block(side);
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    work();
    const auto pool = share_pool_with ? share_pool_with->state_->graph.pool() : decltype(state_->graph.pool()){0, 0};
    state_->graph.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    try {
      work();
    } catch (...) {
      try {
        state_->graph.capture_end();
      } catch (...) {  // the capture's own error is the one to report
      }
      throw;
    }
    state_->graph.capture_end();
  }
  at::cuda::CUDAEvent warmed_up;
  warmed_up.record(side);
  warmed_up.block(current);
  state_->captured = true;
#else
  (void)work;
  (void)share_pool_with;
  VT_FAIL("CUDA graph: this LibTorch has no CUDA");
#endif
}

void CudaGraph::replay() {
  VT_CHECK(state_->captured, "CUDA graph: replay before capture");
#ifdef VESSELTUNE_TORCH_HAS_CUDA
  state_->graph.replay();
#endif
}

void start_op_profiler(bool cuda) {
  namespace prof = torch::profiler::impl;
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
  if (cuda) activities.insert(prof::ActivityType::CUDA);
  torch::autograd::profiler::prepareProfiler(config, activities);
  torch::autograd::profiler::enableProfiler(config, activities);
}

ProfiledRun stop_op_profiler(const std::string& trace_path) {
  std::unique_ptr<torch::autograd::profiler::ProfilerResult> result = torch::autograd::profiler::disableProfiler();
  VT_CHECK(result != nullptr, "profiler: no result (was it started?)");
  ProfiledRun run;
  run.events.reserve(result->events().size());
  for (const auto& e : result->events()) {
    ProfiledEvent event;
    event.name = e.name();
    event.on_gpu = e.deviceType() != c10::DeviceType::CPU;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)  // ns since 2.4, µs before
    event.start_us = static_cast<double>(e.startNs()) / 1000.0;
    event.duration_us = static_cast<double>(e.durationNs()) / 1000.0;
#else
    event.start_us = static_cast<double>(e.startUs());
    event.duration_us = static_cast<double>(e.durationUs());
#endif
    run.events.push_back(std::move(event));
  }
  if (!trace_path.empty()) {
    try {
      result->save(trace_path);
    } catch (const c10::Error& e) {
      run.trace_error = e.what_without_backtrace();
    }
  }
  return run;
}

}  // namespace vesseltune::compat
