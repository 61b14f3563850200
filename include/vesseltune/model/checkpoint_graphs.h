#pragma once
// Activation-checkpointed layers replayed as CUDA graphs. At micro-batch 1 a training step is bound by the host's
// cost of issuing kernels (bench/NOTES.md, issue 8), and most of them come from the checkpointed decoder layers:
// each runs twice (forward, then recompute) and once backward, a few hundred small kernels per layer. Here each
// layer, at each input shape, is recorded as two graphs:
//   forward:  no-grad forward of the layer (what a checkpointed forward does)
//   backward: recompute with grad + autograd::grad with respect to the layer's input and trainable parameters
// and a custom autograd function replays them, so a layer costs a few launches in each direction. Its gradients
// reach autograd as the function's outputs, so the parameters' accumulate hooks (ZeRO's reduce-scatter) fire as
// with eager checkpointing.
//
// Dropout draws the same masks as in eager training: the device generator's state is saved before the forward
// replay and put back for the backward replay (a graph draws from the generator's offset at replay time), and a
// capture leaves the generator's state as it found it.
//
// Static buffers: the input, output, output gradient, input gradient and one set of parameter gradients are shared
// by all layers of a shape (the layers run one at a time on one stream); results are cloned out of them. All graphs
// share one private pool and are captured on one stream, so they reuse each other's blocks: the pool holds about
// one layer's recompute + backward (measured on an H200, bench/NOTES.md: sa2va-4b, 36 layers at 320 tokens, the
// reserved peak +0.06 GiB over eager checkpointing). Per layer and shape: first sighting eager checkpointing, second
// capture, then replays. At most kMaxGraphedShapes shapes get graphs (the caller pads sequences to a few lengths);
// further shapes run eager checkpointing.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "vesseltune/core/torch_compat.h"

namespace vesseltune::model {

class CheckpointGraphs {
 public:
  // Each graphed shape costs its captures (a second or so for a 36-layer LLM) and its static buffers.
  static constexpr int kMaxGraphedShapes = 16;

  CheckpointGraphs();
  ~CheckpointGraphs();
  CheckpointGraphs(const CheckpointGraphs&) = delete;
  CheckpointGraphs& operator=(const CheckpointGraphs&) = delete;

  // The layer's forward: x and the constants given to run → output of x's shape.
  using LayerForward = std::function<at::Tensor(const at::Tensor& x, const std::vector<at::Tensor>& constants)>;

  // Whether a checkpointed layer may run through graphs on INPUT: grad mode on and a GPU input.
  static bool can_replay(const at::Tensor& input);

  // FORWARD(x, constants) for layer number LAYER (its trainable parameters are MODULE's), checkpointed, through
  // the layer's graphs for x's shape. CONSTANTS must be determined by x's shape (e.g. RoPE tables): the graphs
  // keep the values they were captured with. FORWARD is called only while run() runs (captures, eager sightings).
  at::Tensor run(size_t layer, const torch::nn::Module& module, const LayerForward& forward, const at::Tensor& x,
                 const std::vector<at::Tensor>& constants);

  struct LayerGraph;  // defined where used (the .cpp)
  struct Shape;

 private:
  std::map<std::vector<int64_t>, std::unique_ptr<Shape>> shapes_;  // key: sizes, then the dtype
  const compat::CudaGraph* pool_owner_ = nullptr;                   // the first captured graph
  int graphed_shapes_ = 0;                                          // shapes with graphs, up to kMaxGraphedShapes
};

}  // namespace vesseltune::model
