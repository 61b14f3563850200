#include "vesseltune/core/torch_compat.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#ifdef VESSELTUNE_TORCH_HAS_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
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

}  // namespace vesseltune::compat
