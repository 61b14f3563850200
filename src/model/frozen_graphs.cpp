#include "vesseltune/model/frozen_graphs.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "vesseltune/core/check.h"

namespace vesseltune::model {

bool FrozenGraphs::can_replay(const torch::nn::Module& module, const at::Tensor& input) {
  if (!input.is_cuda() || input.requires_grad()) return false;
  const std::vector<at::Tensor> params = module.parameters();
  return std::none_of(params.begin(), params.end(), [](const at::Tensor& p) { return p.requires_grad(); });
}

std::vector<at::Tensor> FrozenGraphs::run(const at::Tensor& input, const Forward& forward) {
  VT_CHECK(input.is_cuda(), "CUDA graphs: the input must be on a GPU, got ", input.device());
  VT_CHECK(!input.requires_grad(), "CUDA graphs replay frozen modules only; the input requires a gradient");
  c10::NoGradGuard no_grad;
  std::unique_ptr<Shape>& shape = shapes_[compat::CudaGraph::key_of(input)];
  if (!shape) shape = std::make_unique<Shape>();
  if (shape->eager_runs == 0) {  // a shape seen once (e.g. the last, smaller batch of an epoch) costs no graph
    ++shape->eager_runs;
    return forward(input);
  }
  if (!shape->graph.captured()) {
    shape->input = input.clone();
    shape->graph.capture([&] { shape->outputs = forward(shape->input); }, pool_owner_);
    if (!pool_owner_) pool_owner_ = &shape->graph;
  } else {
    shape->input.copy_(input);
  }
  shape->graph.replay();
  std::vector<at::Tensor> outputs;
  outputs.reserve(shape->outputs.size());
  for (const at::Tensor& out : shape->outputs) outputs.push_back(out.clone());
  return outputs;
}

}  // namespace vesseltune::model
