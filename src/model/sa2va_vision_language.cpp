#include "vesseltune/model/sa2va_vision_language.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include "vesseltune/core/check.h"
#include "vesseltune/model/projector.h"
#include "vesseltune/model/precision.h"

namespace vesseltune::model {

Sa2VAVisionLanguageImpl::Sa2VAVisionLanguageImpl(const Sa2VAConfig& config) : config_(config) {
  config_.validate();
  VT_CHECK(config_.image_context_token_id >= 0 && config_.image_context_token_id < config_.llm.vocab_size,
           "Sa2VA: image_context_token_id ", config_.image_context_token_id, " must be a token of the vocabulary (size ",
           config_.llm.vocab_size, "); set it from the tokenizer's <IMG_CONTEXT>");
  VT_CHECK(config_.seg_token_id >= 0 && config_.seg_token_id < config_.llm.vocab_size, "Sa2VA: seg_token_id ",
           config_.seg_token_id, " must be a token of the vocabulary (size ", config_.llm.vocab_size,
           "); set it from the tokenizer's [SEG]");
  // Registration order = checkpoint order = the optimizer's parameter order.
  vision_model = register_module("vision_model", InternVisionModel(config_.vision));
  mlp1 = register_module("mlp1", make_mlp1(config_.shuffled_vision_size(), config_.llm.hidden_size));
  language_model = register_module("language_model", Qwen2ForCausalLM(config_.llm));
  text_hidden_fcs = register_module(
      "text_hidden_fcs",
      torch::nn::Sequential(torch::nn::Linear(config_.llm.hidden_size, config_.llm.hidden_size), torch::nn::ReLU(),
                            torch::nn::Linear(config_.llm.hidden_size, config_.prompt_dim)));
  set_activation_checkpointing(config_.activation_checkpointing);
}

void Sa2VAVisionLanguageImpl::set_activation_checkpointing(bool on) {
  config_.activation_checkpointing = on;
  vision_model->activation_checkpointing = on;
  language_model->model->activation_checkpointing = on;
}

at::Tensor Sa2VAVisionLanguageImpl::image_features(const at::Tensor& pixel_values) {
  at::Tensor vit = vision_model(pixel_values);
  at::Tensor shuffled = pixel_shuffle(vit, config_.downsample_ratio, config_.ps_version);
  at::Tensor features = mlp1->forward(shuffled);
  return features.reshape({-1, features.size(-1)});
}

at::Tensor Sa2VAVisionLanguageImpl::embed_inputs(const at::Tensor& ids, const at::Tensor& pixel_values) {
  at::Tensor embeds = language_model->embed(ids);
  const at::Tensor image_mask = ids == config_.image_context_token_id;
  const int64_t image_tokens = image_mask.sum().item<int64_t>();
  const int64_t tiles = pixel_values.defined() ? pixel_values.size(0) : 0;
  VT_CHECK(image_tokens == tiles * config_.image_tokens_per_tile(), "Sa2VA: input_ids hold ", image_tokens,
           " <IMG_CONTEXT> tokens (id ", config_.image_context_token_id, ") but ", tiles, " tile(s) give ",
           tiles * config_.image_tokens_per_tile(), " image features (", config_.image_tokens_per_tile(), " per tile)");
  if (tiles == 0) return embeds;
  RECORD_USER_SCOPE("vesseltune::vision_model+mlp1");  // named in profiles (vesseltune-train --profile)
  at::Tensor features = image_features(pixel_values).to(embeds.scalar_type());
  return embeds.masked_scatter(image_mask.unsqueeze(-1), features);
}

Sa2VAOutputs Sa2VAVisionLanguageImpl::forward(const Sa2VAInputs& inputs, bool return_logits) {
  const at::Tensor& ids = inputs.input_ids;
  VT_CHECK(ids.defined() && ids.dim() == 2, "Sa2VA: input_ids must be [batch, tokens], got ",
           ids.defined() ? ids.sizes() : at::IntArrayRef{});
  const int64_t batch = ids.size(0), tokens = ids.size(1);
  VT_CHECK(tokens <= config_.max_length, "Sa2VA: sequences of ", tokens, " tokens exceed max_length ",
           config_.max_length, " (fewer tiles or a larger max_length)");
  if (inputs.labels.defined()) {
    VT_CHECK(inputs.labels.sizes() == ids.sizes(), "Sa2VA: labels ", inputs.labels.sizes(), " and input_ids ",
             ids.sizes(), " differ in shape");
  }

  // [SEG] positions: counted per sample, checked against the masks when given.
  const at::Tensor seg_mask = ids == config_.seg_token_id;
  const at::Tensor seg_per_sample = seg_mask.sum(1).cpu();
  if (!inputs.masks_per_sample.empty()) {
    VT_CHECK(static_cast<int64_t>(inputs.masks_per_sample.size()) == batch, "Sa2VA: masks_per_sample has ",
             inputs.masks_per_sample.size(), " entries for a batch of ", batch);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t segs = seg_per_sample[b].item<int64_t>();
      VT_CHECK(segs == inputs.masks_per_sample[static_cast<size_t>(b)], "Sa2VA: sample ", b, " has ", segs,
               " [SEG] token(s) (id ", config_.seg_token_id, ") but ", inputs.masks_per_sample[static_cast<size_t>(b)],
               " mask(s); its answer must contain one [SEG] per mask");
    }
  }

  const at::Tensor embeds = embed_inputs(ids, inputs.pixel_values);
  Sa2VAOutputs out;
  {
    RECORD_USER_SCOPE("vesseltune::language_model");
    out.hidden = language_model->model(embeds, inputs.attention_mask);
  }
  out.prompt_embeddings = text_hidden_fcs->forward(out.hidden.index({seg_mask}));
  out.seg_sample_index = seg_mask.nonzero().select(1, 0);
  if (inputs.labels.defined()) {
    // Position t predicts token t+1; only positions with a label go through lm_head (the vocabulary is
    // large, the answers short).
    at::Tensor targets = inputs.labels.slice(1, 1).to(at::kLong);
    at::Tensor learned = targets != -100;
    const int64_t count = learned.sum().item<int64_t>();
    VT_CHECK(count > 0, "Sa2VA: labels have no token to learn (all -100)");
    at::Tensor logits = at_least_fp32(language_model->logits(out.hidden.slice(1, 0, tokens - 1).index({learned})));
    out.llm_loss = at::cross_entropy_loss(logits, targets.index({learned}));
  }
  if (return_logits) out.logits = language_model->logits(out.hidden);
  return out;
}

}  // namespace vesseltune::model
