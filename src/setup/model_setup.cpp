#include "vesseltune/setup/model_setup.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/sam2/sam2_model.h"
#include "vesseltune/text/chat_template.h"

namespace vesseltune::setup {
namespace {

std::vector<std::string> extra_trainable(const TrainConfig& config) {
  std::vector<std::string> prefixes;
  std::stringstream list(config.model.extra_trainable);
  for (std::string prefix; std::getline(list, prefix, ',');) {
    if (!prefix.empty()) prefixes.push_back(prefix);
  }
  return prefixes;
}

}  // namespace

ModelShapes model_shapes(const TrainConfig& config) {
  ModelShapes shapes;
  shapes.sa2va = config.model.config_json.empty() ? model::Sa2VAConfig::preset(config.model.preset)
                                                  : model::Sa2VAConfig::from_json_file(config.model.config_json);
  shapes.sam2 = model::sam2::sam2_preset(config.model.sam2_preset);
  if (config.model.sam2_image_size > 0) shapes.sam2.image_size = config.model.sam2_image_size;
  shapes.sa2va.use_llm_lora = config.model.lora_r > 0;
  shapes.sa2va.lora.r = config.model.lora_r;
  shapes.sa2va.lora.alpha = config.model.lora_alpha;
  shapes.sa2va.lora.dropout = config.model.lora_dropout;
  shapes.sa2va.activation_checkpointing = config.model.activation_checkpointing;
  shapes.sa2va.object_score_gate = config.model.object_score_gate;
  for (const std::string& prefix : extra_trainable(config)) shapes.sa2va.trainable_modules.push_back(prefix);
  shapes.sa2va.min_dynamic_patch = config.data.min_tiles;
  shapes.sa2va.max_dynamic_patch = config.data.max_tiles;
  shapes.sa2va.validate();
  return shapes;
}

text::Tokenizer run_tokenizer(const TrainConfig& config) {
  text::Tokenizer tokenizer = text::Tokenizer::from_file(config.model.tokenizer);
  tokenizer.add_tokens(text::sa2va_added_tokens(), true);
  const int64_t vocab_size = model_shapes(config).sa2va.llm.vocab_size;
  VT_CHECK(tokenizer.vocab_size() <= vocab_size, "the tokenizer ", config.model.tokenizer, " has ",
           tokenizer.vocab_size(), " ids with Sa2VA's tokens, more than the model's vocabulary of ", vocab_size,
           " (model.tokenizer does not belong to model.preset / model.config_json)");
  return tokenizer;
}

ModelShapes model_shapes(const TrainConfig& config, const text::Tokenizer& tokenizer) {
  ModelShapes shapes = model_shapes(config);
  shapes.sa2va.image_context_token_id = tokenizer.token_id(text::kImageContextToken);
  shapes.sa2va.seg_token_id = tokenizer.token_id(text::kSegToken);
  return shapes;
}

at::ScalarType model_dtype(const TrainConfig& config, at::Device device) {
  if (config.model.dtype == "bf16") return at::kBFloat16;
  if (config.model.dtype == "fp32") return at::kFloat;
  return device.is_cuda() ? at::kBFloat16 : at::kFloat;
}

model::Sa2VAModel build_model(const ModelShapes& shapes, const TrainConfig& config, at::Device device,
                              at::ScalarType dtype) {
  // Every rank draws the same random weights (the frozen ones are never synchronised).
  torch::manual_seed(config.train.seed);
  model::MaskLossOptions losses;
  losses.mask_weight = config.loss.mask_weight;
  losses.dice_weight = config.loss.dice_weight;
  losses.num_points = config.loss.num_points;
  losses.dense = config.loss.dense;
  losses.cldice_weight = config.loss.cldice_weight;
  model::Sa2VAModel net(shapes.sa2va, shapes.sam2, losses);
  if (!config.model.weights.empty()) {
    const io::Checkpoint checkpoint(config.model.weights);
    io::LoadOptions options;
    for (const std::string& prefix : model::sam2::Sam2ModelImpl::unused_checkpoint_prefixes()) {
      options.ignore_prefixes.push_back("grounding_encoder.sam2_model." + prefix);
    }
    const io::LoadReport report = io::load_into(*net, checkpoint, options);
    VT_LOG(info) << "base weights: " << report.loaded.size() << " tensors from " << config.model.weights;
  }
  net->to(device, dtype);
  if (shapes.sa2va.use_llm_lora) model::apply_lora(*net, shapes.sa2va.lora);
  const std::vector<std::string> trainable = model::set_trainable(*net, shapes.sa2va.trainable_modules);
  // Sa2VA's own list names modules some models lack; a prefix the user added must match something.
  for (const std::string& prefix : extra_trainable(config)) {
    VT_CHECK(std::any_of(trainable.begin(), trainable.end(), [&](const std::string& key) { return key.rfind(prefix, 0) == 0; }),
             "model.extra_trainable: no parameter of the model is under '", prefix, "'");
  }
  // embed_tokens' gradient is zero outside the rows of the batch's tokens. As a sparse gradient, ZeRO reduces just
  // those rows: for sa2va-4b a few MB instead of 620 MB, which as the backward pass's last gradient could overlap
  // nothing (bench/NOTES.md).
  net->language_model->model->embed_tokens->options.sparse(model::sparse_embedding_gradient(shapes.sa2va.llm));
  net->set_activation_checkpointing(shapes.sa2va.activation_checkpointing);
  net->vision_model->cuda_graphs = config.model.cuda_graphs;
  net->language_model->model->cuda_graphs = config.model.cuda_graphs;
  net->grounding_encoder->sam2_model()->cuda_graphs = config.model.cuda_graphs;
  return net;
}

std::vector<ParameterCount> count_parameters(const torch::nn::Module& model) {
  std::vector<ParameterCount> counts;
  for (const auto& item : model.named_parameters(true)) {
    const std::string module = item.key().substr(0, item.key().find('.'));
    if (counts.empty() || counts.back().module != module) counts.push_back({module});
    (item.value().requires_grad() ? counts.back().trainable : counts.back().frozen) += item.value().numel();
  }
  return counts;
}

data::ModelInputOptions model_input_options(const TrainConfig& c, const ModelShapes& shapes) {
  data::ModelInputOptions inputs;
  inputs.tile_size = static_cast<int>(shapes.sa2va.vision.image_size);
  inputs.min_tiles = static_cast<int>(c.data.min_tiles);
  inputs.max_tiles = static_cast<int>(c.data.max_tiles);
  inputs.use_thumbnail = shapes.sa2va.use_thumbnail;
  inputs.sam_size = static_cast<int>(shapes.sam2.image_size);
  return inputs;
}

}  // namespace vesseltune::setup
