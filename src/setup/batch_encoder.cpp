#include "vesseltune/setup/batch_encoder.h"

#include <algorithm>
#include <random>

#include "vesseltune/core/check.h"
#include "vesseltune/data/random.h"

namespace vesseltune::setup {

BatchEncoder::BatchEncoder(text::Tokenizer tokenizer, const model::Sa2VAConfig& config, data::ModelInputOptions inputs,
                           bool fov_in_loss)
    : tokenizer_(std::move(tokenizer)),
      template_(text::chat_template(config.template_name)),
      inputs_(inputs),
      tokens_per_tile_(config.image_tokens_per_tile()),
      max_length_(config.max_length),
      fov_in_loss_(fov_in_loss) {
  VT_CHECK(tokenizer_.has_token(text::kSegToken) &&
               config.image_context_token_id == tokenizer_.token_id(text::kImageContextToken) &&
               config.seg_token_id == tokenizer_.token_id(text::kSegToken),
           "BatchEncoder: the model's token ids are not the tokenizer's (build both with model_shapes(config, tokenizer))");
  // Qwen pads with <|endoftext|>; the id only fills masked positions, so any valid id would do.
  pad_id_ = tokenizer_.has_token("<|endoftext|>") ? tokenizer_.token_id("<|endoftext|>") : 0;
  prompts_.validate();
}

namespace {

// The prompt's stream of a sample's seed (its image and text draws use others).
constexpr uint64_t kPromptStream = 0x9f0e;

}  // namespace

EncodedBatch BatchEncoder::encode(const data::Batch& batch, at::Device device, at::ScalarType dtype,
                                  bool sample_prompts) const {
  const int64_t size = batch.size();
  std::vector<text::EncodedConversation> conversations;
  int64_t longest = 0, tokens = 0, labelled = 0;
  for (int64_t i = 0; i < size; ++i) {
    VT_CHECK(!sample_prompts || batch.seeds.size() == static_cast<size_t>(size),
             "BatchEncoder: a training batch needs one seed per sample, got ", batch.seeds.size(), " for ", size);
    std::mt19937_64 rng(sample_prompts ? data::mix_seed(batch.seeds[i], kPromptStream) : 0);
    const text::Turn turn = sample_prompts ? prompts_.sample(rng) : prompts_.default_turn();
    text::EncodeOptions options;
    options.image_tokens_per_tile = tokens_per_tile_;
    options.tiles = batch.tiles_per_sample.at(i);
    options.max_length = max_length_;
    conversations.push_back(text::encode_conversation(tokenizer_, template_, {turn}, options));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(conversations.back().input_ids.size()));
    tokens += static_cast<int64_t>(conversations.back().input_ids.size());
    const auto& labels = conversations.back().labels;
    labelled += std::count_if(labels.begin(), labels.end(), [](int64_t id) { return id != text::kIgnoreIndex; });
  }
  at::Tensor input_ids = at::full({size, longest}, pad_id_, at::kLong);
  at::Tensor labels = at::full({size, longest}, text::kIgnoreIndex, at::kLong);
  at::Tensor attention = at::zeros({size, longest}, at::kLong);
  for (int64_t i = 0; i < size; ++i) {
    const auto& c = conversations[i];
    const int64_t n = static_cast<int64_t>(c.input_ids.size());
    input_ids[i].slice(0, 0, n).copy_(at::tensor(c.input_ids, at::kLong));
    labels[i].slice(0, 0, n).copy_(at::tensor(c.labels, at::kLong));
    attention[i].slice(0, 0, n).fill_(1);
  }

  const data::ModelImages images = data::normalize_for_model(batch, device, inputs_, dtype);
  EncodedBatch encoded;
  encoded.tokens = tokens;
  encoded.labelled_tokens = labelled;
  model::Sa2VABatch& out = encoded.inputs;
  out.inputs.pixel_values = images.tiles;
  out.inputs.input_ids = input_ids.to(device);
  out.inputs.labels = labels.to(device);
  out.inputs.attention_mask = attention.to(device);
  out.inputs.masks_per_sample.assign(size, 1);
  out.sam_images = images.sam_images;
  out.masks = batch.masks.to(device, at::kFloat);
  if (fov_in_loss_) out.fov = batch.fovs.to(device, at::kFloat);
  return encoded;
}

}  // namespace vesseltune::setup
