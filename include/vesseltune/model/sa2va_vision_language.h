#pragma once
// The vision-language half of Sa2VA. Its parameter names are the checkpoint's keys for this half:
//   vision_model.*  mlp1.{0,1,3}.*  language_model.{model.*, lm_head.*}  text_hidden_fcs.{0,2}.*
// Data flow of forward():
//   tiles [N, 3, 448, 448] → InternViT → last layer, CLS dropped → pixel shuffle → mlp1 → [N·256, H]
//   embeddings of input_ids, with those features written at the <IMG_CONTEXT> positions (in order)
//   → Qwen2 → final hidden state (after the final norm) [B, T, H]
//   → text_hidden_fcs at the [SEG] positions → prompt embeddings [n_seg, 256] for SAM2's mask decoder
//   → lm_head at the positions that have a label → llm_loss (shifted cross-entropy, mean over labels ≠ -100)

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "vesseltune/model/config.h"
#include "vesseltune/model/intern_vit.h"
#include "vesseltune/model/qwen2.h"

namespace vesseltune::model {

struct Sa2VAInputs {
  at::Tensor pixel_values;    // [tiles, 3, H, W]: every sample's tiles, in sample order
  at::Tensor input_ids;       // [B, T] int64, right-padded
  at::Tensor attention_mask;  // [B, T], 1 = token, 0 = padding; undefined: no padding
  at::Tensor labels;          // [B, T], -100 = no loss; undefined: no llm_loss
  // Number of ground-truth masks per sample, when masks are given: each sample must have as many [SEG].
  std::vector<int64_t> masks_per_sample;
};

struct Sa2VAOutputs {
  at::Tensor prompt_embeddings;  // [n_seg, prompt_dim], [SEG] tokens in (sample, position) order
  at::Tensor seg_sample_index;   // [n_seg] int64: the sample of each [SEG]
  at::Tensor llm_loss;           // scalar (fp32); undefined without labels
  at::Tensor hidden;             // [B, T, H] final hidden state
  at::Tensor logits;             // [B, T, vocab]; only with return_logits
};

class Sa2VAVisionLanguageImpl : public torch::nn::Module {
 public:
  // Random weights (any preset); load a checkpoint with io::load_into afterwards. Needs the
  // image-context and [SEG] token ids (config.image_context_token_id / seg_token_id) set.
  explicit Sa2VAVisionLanguageImpl(const Sa2VAConfig& config);

  Sa2VAOutputs forward(const Sa2VAInputs& inputs, bool return_logits = false);
  // tiles → [tiles · tokens_per_tile, H]
  at::Tensor image_features(const at::Tensor& pixel_values);
  // Token embeddings of input_ids [B, T] with the tiles' features written at the <IMG_CONTEXT> positions, in order
  // (pixel_values undefined: no image); checks that the counts agree.
  at::Tensor embed_inputs(const at::Tensor& input_ids, const at::Tensor& pixel_values);

  // Activation checkpointing of every ViT and decoder layer (training mode only).
  void set_activation_checkpointing(bool on);
  const Sa2VAConfig& config() const { return config_; }

  InternVisionModel vision_model{nullptr};
  torch::nn::Sequential mlp1{nullptr};
  Qwen2ForCausalLM language_model{nullptr};
  torch::nn::Sequential text_hidden_fcs{nullptr};

 private:
  Sa2VAConfig config_;
};
TORCH_MODULE(Sa2VAVisionLanguage);

}  // namespace vesseltune::model
