#include "vesseltune/core/torch_compat.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#ifdef VESSELTUNE_TORCH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include "vesseltune/core/check.h"

namespace vesseltune::compat {

GradAccumulatedHook::GradAccumulatedHook(const at::Tensor& param, std::function<void()> on_accumulated) {
  VT_CHECK(param.requires_grad() && param.is_leaf(), "gradient hooks need a leaf tensor that requires grad");
  // The AccumulateGrad node is what DDP hooks too: its post hook runs after param.grad() was updated.
  // (LibTorch 2.x has Tensor::register_post_accumulate_grad_hook; 1.13 has only this route, present in both.)
  std::shared_ptr<torch::autograd::Node> node = torch::autograd::impl::grad_accumulator(param);
  VT_CHECK(node != nullptr, "no grad accumulator for a trainable tensor");
  key_ = node->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
      [hook = std::move(on_accumulated)](const torch::autograd::variable_list& outputs,
                                         const torch::autograd::variable_list&) {
        hook();
        return outputs;
      }));
  accumulator_ = node;
}

GradAccumulatedHook::~GradAccumulatedHook() {
  if (accumulator_) {
    std::static_pointer_cast<torch::autograd::Node>(accumulator_)->del_post_hook(key_);
  }
}

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const c10::optional<at::Tensor>& mask, bool is_causal,
                                        c10::optional<double> scale) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale);
#else
  const double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * s;
  if (is_causal) {
    at::Tensor keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value()) {
    scores = mask->scalar_type() == at::kBool
                 ? scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity())
                 : scores + *mask;
  }
  return at::matmul(at::softmax(scores, -1), v);
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

}  // namespace vesseltune::compat
