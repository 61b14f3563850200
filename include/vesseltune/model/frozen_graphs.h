#pragma once
// A frozen module's forward replayed as CUDA graphs, one per input shape: the frozen image encoders (InternViT,
// SAM2's Hiera + FPN) issue thousands of small kernels per image, and at micro-batch 1 a step is bound by the
// host's cost of issuing them (bench/NOTES.md, issue 8), not by the GPU. The first input of a shape runs eagerly;
// the second is captured (after one more eager run on the capture stream) and every later one is one replay:
// the input is copied into the graph's static buffer, the graph runs, and the outputs are cloned, so callers own
// them as with the eager forward.
//
// Memory: the graphs of one FrozenGraphs share one private pool, which keeps the largest shape's working set of
// the forward reserved for the run (the memory plan counts it). Sharing is safe here although the shapes replay in
// any order: a replay can overwrite another graph's static outputs only after those were cloned.
// Only without autograd: can_replay says when (also the rule the memory plan counts the pools by).
#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "vesseltune/core/torch_compat.h"

namespace vesseltune::model {

class FrozenGraphs {
 public:
  using Forward = std::function<std::vector<at::Tensor>(const at::Tensor&)>;
  // Whether MODULE's forward on INPUT may replay: a GPU input that needs no gradient and no trainable parameter
  // in MODULE, whatever the grad mode (a trained encoder runs eagerly in validation too, and holds no pool).
  static bool can_replay(const torch::nn::Module& module, const at::Tensor& input);
  // FORWARD(input) on an input can_replay accepts, through the graph of input's shape and dtype.
  std::vector<at::Tensor> run(const at::Tensor& input, const Forward& forward);

 private:
  struct Shape {
    int64_t eager_runs = 0;
    compat::CudaGraph graph;
    at::Tensor input;                  // static: each replay reads its input here
    std::vector<at::Tensor> outputs;   // static: each replay writes here
  };
  std::map<std::vector<int64_t>, std::unique_ptr<Shape>> shapes_;  // key: sizes, then the dtype
  const compat::CudaGraph* pool_owner_ = nullptr;                   // the first captured graph
};

}  // namespace vesseltune::model
