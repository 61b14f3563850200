#pragma once
// From the loader's batch to Sa2VA's inputs on the model's device: per sample a vessel conversation
// (question with <image> expanded to the sample's 256 · tiles image tokens, answer with [SEG]) encoded
// with the chat template, right-padded into one [B, T] batch with labels on the answers only; the images
// normalised on the device; one ground-truth mask per sample, since each answer has one [SEG] (and the FOV
// when the loss is restricted to it).

#include <ATen/ATen.h>

#include <cstdint>

#include "vesseltune/data/model_inputs.h"
#include "vesseltune/data/sample.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/text/chat_template.h"
#include "vesseltune/text/tokenizer.h"

namespace vesseltune::setup {

struct EncodedBatch {
  model::Sa2VABatch inputs;
  int64_t tokens = 0;           // tokens without padding, counted on the host (no device synchronisation)
  int64_t labelled_tokens = 0;  // tokens with a label (the answers)
};

class BatchEncoder {
 public:
  // TOKENIZER: run_tokenizer's; CONFIG: model_shapes(config, TOKENIZER)'s (model_setup.h), whose token ids are
  // checked against it.
  BatchEncoder(text::Tokenizer tokenizer, const model::Sa2VAConfig& config, data::ModelInputOptions inputs,
               bool fov_in_loss);

  // Training (SAMPLE_PROMPTS) draws each sample's question and answer from its own seed (Batch::seeds: the run's
  // seed, the epoch and the sample's global position), so ranks draw independently and a resumed run, on any
  // number of ranks, sees the same conversations; evaluation uses the first question and answer.
  EncodedBatch encode(const data::Batch& batch, at::Device device, at::ScalarType dtype, bool sample_prompts) const;

  const text::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  text::Tokenizer tokenizer_;
  text::ChatTemplate template_;
  text::VesselPrompts prompts_;
  data::ModelInputOptions inputs_;
  int64_t tokens_per_tile_;
  int64_t max_length_;
  int64_t pad_id_;
  bool fov_in_loss_;
};

}  // namespace vesseltune::setup
