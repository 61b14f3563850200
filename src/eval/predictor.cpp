#include "vesseltune/eval/predictor.h"

#include <torch/torch.h>

#include <algorithm>

#include "vesseltune/core/check.h"
#include "vesseltune/model/sam2/grounding_encoder.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::eval {
namespace {

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\n\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\n\r") - first + 1);
}

}  // namespace

Predictor::Predictor(const setup::TrainedModel& model, PredictOptions options)
    : model_(model), net_(model.model), options_(std::move(options)),
      template_(text::chat_template(model.shapes.sa2va.template_name)),
      inputs_(setup::model_input_options(model.config, model.shapes)) {
  if (options_.prompt.find(text::kImagePlaceholder) == std::string::npos) {
    options_.prompt = std::string(text::kImagePlaceholder) + "\n" + options_.prompt;
  }
  VT_CHECK(options_.max_new_tokens > 0, "predict: max_new_tokens must be positive, got ", options_.max_new_tokens);
  const text::Tokenizer& tokenizer = model.encoder->tokenizer();
  pad_id_ = tokenizer.has_token("<|endoftext|>") ? tokenizer.token_id("<|endoftext|>") : 0;
  // Sa2VA also stops at the tokenizer's EOS, <|im_end|> for the Qwen-based Sa2VA models (whatever the template).
  if (tokenizer.has_token("<|im_end|>")) eos_ids_.push_back(tokenizer.token_id("<|im_end|>"));
}

bool Predictor::ends_with_stop_word(const std::vector<int64_t>& tokens) const {
  // As Sa2VA's stopping criterion: the decoded text without line breaks ends with a stop word. The tail's text is
  // enough: stop words are a few tokens long.
  const size_t tail = std::min<size_t>(tokens.size(), 8);
  std::string text = model_.encoder->tokenizer().decode({tokens.end() - static_cast<long>(tail), tokens.end()});
  text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n'; }), text.end());
  return std::any_of(template_.stop_words.begin(), template_.stop_words.end(), [&](const std::string& stop) {
    return text.size() >= stop.size() && text.compare(text.size() - stop.size(), stop.size(), stop) == 0;
  });
}

model::Sa2VAPrompts Predictor::prompts(const std::vector<data::SampleRecord>& records) const {
  VT_CHECK(!records.empty(), "predict: no images");
  std::vector<data::Sample> samples;
  for (const data::SampleRecord& record : records) samples.push_back(data::make_model_inputs(record, inputs_, 0));
  const data::Batch batch = data::collate(std::move(samples));
  std::vector<std::vector<int64_t>> ids;
  int64_t longest = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    text::EncodeOptions options;
    options.image_tokens_per_tile = model_.shapes.sa2va.image_tokens_per_tile();
    options.tiles = batch.tiles_per_sample.at(i);
    options.max_length = model_.shapes.sa2va.max_length - 1;  // room for one generated token at least
    try {
      ids.push_back(text::encode_prompt(model_.encoder->tokenizer(), template_, options_.prompt, options));
    } catch (const Error& e) {
      VT_FAIL(records[i].source, ": ", e.what());
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.back().size()));
  }
  const int64_t size = static_cast<int64_t>(ids.size());
  at::Tensor input_ids = at::full({size, longest}, pad_id_, at::kLong), valid = at::zeros({size, longest}, at::kLong);
  for (int64_t i = 0; i < size; ++i) {  // left padding: every prompt ends where generation starts
    const int64_t n = static_cast<int64_t>(ids[i].size());
    input_ids[i].slice(0, longest - n).copy_(at::tensor(ids[i], at::kLong));
    valid[i].slice(0, longest - n).fill_(1);
  }
  const data::ModelImages images = data::normalize_for_model(batch, model_.device, inputs_, model_.dtype);
  return {images.tiles, input_ids.to(model_.device), valid.to(model_.device), images.sam_images};
}

std::vector<Prediction> Predictor::predict(const std::vector<data::SampleRecord>& records) {
  torch::NoGradGuard no_grad;
  const model::Sa2VAPrompts prompts = this->prompts(records);

  model::GreedyOptions greedy;
  greedy.max_new_tokens = std::min(options_.max_new_tokens, model_.shapes.sa2va.max_length - prompts.input_ids.size(1));
  greedy.use_cache = options_.use_cache;
  greedy.stop_token_ids = eos_ids_;
  greedy.stop = [this](const std::vector<int64_t>& tokens) { return ends_with_stop_word(tokens); };
  const model::Sa2VAAnswers answers = net_->generate(prompts, greedy);

  std::vector<Prediction> out(records.size());
  int64_t mask = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    out[i].tokens = answers.tokens[i];
    out[i].answer = trimmed(model_.encoder->tokenizer().decode(answers.tokens[i]));
    out[i].seg_cut_off = answers.unfed_seg[i] > 0;
    for (int64_t k = 0; k < answers.masks.per_sample[i]; ++k, ++mask) {
      out[i].probabilities.push_back(model::sam2::probabilities_from_logits(
          answers.masks.logits.narrow(0, mask, 1), inputs_.sam_size, records[i].image.height,
          records[i].image.width)[0].to(at::kCPU));
    }
  }
  return out;
}

}  // namespace vesseltune::eval
