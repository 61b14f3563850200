#include "vesseltune/model/checkpoint_graphs.h"

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>
#include <torch/autograd.h>

#include "vesseltune/core/check.h"
#include "vesseltune/model/activation_checkpoint.h"

namespace vesseltune::model {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What every layer of one input shape reads and writes; the layers run one at a time on one stream.
struct CheckpointGraphs::Shape {
  at::Tensor input, output, output_grad, input_grad;
  std::vector<at::Tensor> constants;  // the values the graphs were captured with
  // Parameter-gradient buffers by sizes and dtype: a layer's k-th parameter of a kind uses the k-th buffer.
  std::map<std::vector<int64_t>, std::vector<at::Tensor>> param_grads;
  std::vector<std::unique_ptr<LayerGraph>> layers;
};

struct CheckpointGraphs::LayerGraph {
  int64_t eager_runs = 0;
  compat::CudaGraph forward, backward;
  std::vector<at::Tensor> params;       // trainable, in the module's order
  std::vector<const void*> param_data;  // where the graphs read them from
  std::vector<at::Tensor> param_grads;  // where the backward graph writes their gradients (the shape's buffers)
  std::vector<bool> used;               // whether the layer's output depends on each of them
};

CheckpointGraphs::CheckpointGraphs() = default;
CheckpointGraphs::~CheckpointGraphs() = default;

namespace {

// One replayed layer, from its forward to its backward.
struct LayerReplay : torch::CustomClassHolder {
  LayerReplay(CheckpointGraphs::Shape* s, CheckpointGraphs::LayerGraph* l, at::Device d)
      : shape(s), layer(l), device(d) {}
  CheckpointGraphs::Shape* shape;
  CheckpointGraphs::LayerGraph* layer;
  at::Device device;
  at::Tensor rng;  // the device generator's state before the forward replay
};

struct GraphedCheckpointFunction : torch::autograd::Function<GraphedCheckpointFunction> {
  // inputs: x, then the layer's trainable parameters (so that autograd routes their gradients to them).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<LayerReplay> replay, at::TensorList inputs) {
    const at::Tensor& x = inputs[0];
    replay->rng = rng_state(replay->device);
    replay->shape->input.copy_(x);
    replay->layer->forward.replay();
    ctx->save_for_backward({x});
    at::Tensor output = replay->shape->output.clone();
    ctx->saved_data["replay"] = at::IValue::make_capsule(std::move(replay));
    return {output};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto replay = c10::static_intrusive_pointer_cast<LayerReplay>(ctx->saved_data["replay"].toCapsule());
    CheckpointGraphs::Shape& shape = *replay->shape;
    CheckpointGraphs::LayerGraph& layer = *replay->layer;
    const at::Tensor x = ctx->get_saved_variables()[0];
    shape.input.copy_(x);
    if (grad_outputs[0].defined()) {
      shape.output_grad.copy_(grad_outputs[0]);
    } else {
      shape.output_grad.zero_();
    }
    // The recomputation draws the forward's dropout masks; then the generator goes on from where it is now.
    const at::Tensor now = rng_state(replay->device);
    set_rng_state(replay->device, replay->rng);
    layer.backward.replay();
    set_rng_state(replay->device, now);

    variable_list grads{at::Tensor()};  // for the replay argument
    grads.push_back(x.requires_grad() ? shape.input_grad.clone() : at::Tensor());
    for (size_t i = 0; i < layer.params.size(); ++i) {
      grads.push_back(layer.used[i] ? layer.param_grads[i].clone() : at::Tensor());
    }
    return grads;
  }
};

// Records LAYER's forward and recompute + backward at x's shape. Capturing must leave the device generator as it
// found it (the warm-up runs draw from it), so that the replays draw what eager training would.
void capture_layer(CheckpointGraphs::Shape& shape, CheckpointGraphs::LayerGraph& layer, const torch::nn::Module& module,
                   const CheckpointGraphs::LayerForward& forward, const at::Tensor& x,
                   const std::vector<at::Tensor>& constants, const compat::CudaGraph*& pool_owner) {
  if (!shape.input.defined()) {  // the shape's first layer: buffers outside the graphs' pool, shared by all layers
    shape.input = at::empty_like(x, at::MemoryFormat::Contiguous);
    shape.output = at::empty_like(shape.input);
    shape.output_grad = at::zeros_like(shape.input);
    shape.input_grad = at::empty_like(shape.input);
    for (const at::Tensor& c : constants) shape.constants.push_back(c.detach().clone());
  }
  shape.input.copy_(x);  // real values for the warm-up runs
  std::map<std::vector<int64_t>, size_t> taken;
  for (const at::Tensor& p : module.parameters()) {
    if (!p.requires_grad()) continue;
    layer.params.push_back(p);
    layer.param_data.push_back(p.data_ptr());
    const std::vector<int64_t> key = compat::CudaGraph::key_of(p);
    std::vector<at::Tensor>& buffers = shape.param_grads[key];
    const size_t k = taken[key]++;
    if (k == buffers.size()) buffers.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous));
    layer.param_grads.push_back(buffers[k]);
  }

  const at::Tensor rng = rng_state(x.device());
  const compat::FreshGradAccumulators fresh(layer.params);  // grad() only reads gradients at them
  layer.forward.capture([&] {
    at::NoGradGuard no_grad;
    shape.output.copy_(forward(shape.input, shape.constants));
  }, pool_owner);
  if (!pool_owner) pool_owner = &layer.forward;
  layer.backward.capture([&] {
    at::AutoGradMode grad_mode(true);
    const at::Tensor leaf = shape.input.detach().requires_grad_(true);
    const at::Tensor output = forward(leaf, shape.constants);
    variable_list wrt{leaf};
    wrt.insert(wrt.end(), layer.params.begin(), layer.params.end());
    const variable_list grads = torch::autograd::grad({output}, wrt, {shape.output_grad}, /*retain_graph=*/false,
                                                      /*create_graph=*/false, /*allow_unused=*/true);
    VT_CHECK(grads[0].defined(), "CUDA graphs of a checkpointed layer: its output does not depend on its input");
    shape.input_grad.copy_(grads[0]);
    layer.used.assign(layer.params.size(), false);
    for (size_t i = 0; i < layer.params.size(); ++i) {
      if (!grads[i + 1].defined()) continue;
      layer.used[i] = true;
      layer.param_grads[i].copy_(grads[i + 1]);
    }
  }, pool_owner);
  set_rng_state(x.device(), rng);
}

}  // namespace

bool CheckpointGraphs::can_replay(const at::Tensor& input) { return at::GradMode::is_enabled() && input.is_cuda(); }

at::Tensor CheckpointGraphs::run(size_t index, const torch::nn::Module& module, const LayerForward& forward,
                                 const at::Tensor& x, const std::vector<at::Tensor>& constants) {
  VT_CHECK(can_replay(x), "CUDA graphs of a checkpointed layer need grad mode on and a GPU input, got one on ",
           x.device());
  std::unique_ptr<Shape>& shape = shapes_[compat::CudaGraph::key_of(x)];
  if (!shape) shape = std::make_unique<Shape>();
  if (shape->layers.size() <= index) shape->layers.resize(index + 1);
  std::unique_ptr<LayerGraph>& layer = shape->layers[index];
  if (!layer) layer = std::make_unique<LayerGraph>();
  const auto eager = [&] {
    return checkpoint([forward, constants](const at::Tensor& input) { return forward(input, constants); }, x);
  };
  if (layer->eager_runs == 0) {  // a shape seen once (e.g. an epoch's last, smaller batch) costs no graphs
    ++layer->eager_runs;
    return eager();
  }
  if (!layer->forward.captured()) {
    if (!shape->input.defined()) {  // the shape's first capture (it makes the shape's buffers)
      if (graphed_shapes_ == kMaxGraphedShapes) return eager();
      ++graphed_shapes_;
    }
    capture_layer(*shape, *layer, module, forward, x, constants, pool_owner_);
  }
  for (size_t i = 0; i < layer->params.size(); ++i) {  // the graphs read the memory they were captured with
    VT_CHECK(layer->params[i].data_ptr() == layer->param_data[i], "CUDA graphs of checkpointed layer ", index,
             ": a trainable parameter moved to other memory after its capture; set model.cuda_graphs: false");
  }
  variable_list inputs{x};
  inputs.insert(inputs.end(), layer->params.begin(), layer->params.end());
  auto replay = c10::make_intrusive<LayerReplay>(shape.get(), layer.get(), x.device());
  // As a TensorList: autograd counts the tensors of a list argument as inputs (a std::vector would not be).
  return GraphedCheckpointFunction::apply(replay, at::TensorList(inputs))[0];
}

}  // namespace vesseltune::model
