#pragma once
// Sa2VA's predict_forward for a batch of images: the user's prompt inside the model's chat template (`<image>`
// expanded to the image's tiles; prepended as "<image>\n" when the prompt has none), greedy generation with the
// KV cache until a stop word or max_new_tokens, the decoded answer, and for every [SEG] the answer holds a
// probability map at the image's own size (SAM2's logits resized as Sa2VA does, sam2::probabilities_from_logits).
// Images of a batch are left-padded to the longest prompt. Runs on the model's device in its dtype.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/data/model_inputs.h"
#include "vesseltune/text/chat_template.h"
#include "vesseltune/setup/trained_model.h"

namespace vesseltune::eval {

struct PredictOptions {
  std::string prompt = text::VesselPrompts{}.questions.front();
  int64_t max_new_tokens = 2048;  // Sa2VA's default; capped by the model's max_length
  bool use_cache = true;
};

struct Prediction {
  std::string answer;                     // the generated text, special tokens kept, surrounding spaces trimmed
  std::vector<int64_t> tokens;            // the generated ids
  std::vector<at::Tensor> probabilities;  // one float [H, W] map on the CPU per [SEG] with a mask
  bool seg_cut_off = false;               // the answer ended in a [SEG] at max_new_tokens: no state, no mask
};

class Predictor {
 public:
  Predictor(const setup::TrainedModel& model, PredictOptions options);
  // RECORDS' images (their masks are not read); errors name the image's source and the lengths.
  std::vector<Prediction> predict(const std::vector<data::SampleRecord>& records);
  // The model's inputs for RECORDS: their tiles and SAM2 images on the model's device, the prompts left-padded.
  model::Sa2VAPrompts prompts(const std::vector<data::SampleRecord>& records) const;

 private:
  bool ends_with_stop_word(const std::vector<int64_t>& tokens) const;

  const setup::TrainedModel& model_;
  model::Sa2VAModel net_;  // model_.model: the same module, callable
  PredictOptions options_;
  text::ChatTemplate template_;
  data::ModelInputOptions inputs_;
  int64_t pad_id_;
  std::vector<int64_t> eos_ids_;
};

}  // namespace vesseltune::eval
