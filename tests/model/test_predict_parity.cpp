// The whole Sa2VA against a Python reference that follows Sa2VA's released predict path
// (tests/fixtures/make_sa2va_predict_fixtures.py: transformers' InternVL vision + Qwen2 + Sam2Model, random weights,
// config_tiny.json's dimensions with the tiny tokenizer's 2048 ids, the tiny SAM2 at 128²): from the raw image and the
// prompt text to the masks at the image's size, every stage in between, and greedy generation (KV cache on and off)
// against transformers' generate(do_sample=False). fp32 on the CPU, ≤ 1e-4 relative; the fixture's two prompts have
// object scores of opposite signs, and both keep the decoder's masks (Sa2VA has no object-score gate).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>

#include "test_support.h"
#include "vesseltune/data/model_inputs.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/grounding_encoder.h"
#include "vesseltune/text/chat_template.h"
#include "vesseltune/text/tokenizer.h"

namespace vesseltune::model {
namespace {

using testing::close;
using testing::fixture;

std::vector<int64_t> ids_of(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

class PredictParity : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = fixture("sa2va_predict_parity.safetensors");
    config_ = Sa2VAConfig::from_json_text(file_.metadata().at("config"), path);
    config_.image_context_token_id = tokenizer_.token_id(text::kImageContextToken);
    config_.seg_token_id = tokenizer_.token_id(text::kSegToken);
    model_ = Sa2VAModel(config_, sam2::sam2_preset(file_.metadata().at("sam2_preset")));
    io::LoadOptions options;
    options.strict = false;  // the file also holds the inputs and outputs
    for (const std::string& p : sam2::Sam2ModelImpl::unused_checkpoint_prefixes()) {
      options.ignore_prefixes.push_back("grounding_encoder.sam2_model." + p);
    }
    const io::LoadReport report = io::load_into(*model_, io::Checkpoint(path), options);
    ASSERT_TRUE(report.missing.empty() && report.mismatched.empty()) << report.describe();
    model_->eval();
  }

  // The image as Sa2VA's predict path sees it: InternVL tiles and the SAM2 image, normalised.
  data::ModelImages images() const {
    const at::Tensor pixels = file_.tensor("input.image");  // [H, W, 3] uint8
    data::SampleRecord record;
    record.image = data::Image(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)), 3);
    std::copy_n(pixels.contiguous().data_ptr<uint8_t>(), pixels.numel(), record.image.pixels.data());
    record.mask = data::Image(record.image.height, record.image.width, 1);
    record.fov = data::Image(record.image.height, record.image.width, 1, 1);
    record.texts = {"blood vessels"};
    const data::ModelInputOptions options = input_options();
    return data::normalize_for_model(data::collate({data::make_model_inputs(record, options, 0)}), at::kCPU, options);
  }

  data::ModelInputOptions input_options() const {
    data::ModelInputOptions options;
    options.max_tiles = static_cast<int>(config_.max_dynamic_patch);
    options.sam_size = static_cast<int>(model_->grounding_encoder->sam2_model()->config().image_size);
    return options;
  }

  GreedyOutput greedy(bool use_cache, const GreedyOptions& base = {}) {
    GreedyOptions options = base;
    options.use_cache = use_cache;
    if (base.max_new_tokens == GreedyOptions{}.max_new_tokens) options.max_new_tokens = 32;
    const at::Tensor prompt = file_.tensor("input.prompt_ids").unsqueeze(0);
    return greedy_generate(*model_->language_model, model_->embed_inputs(prompt, images().tiles), {}, options);
  }

  io::SafetensorsFile file_{fixture("sa2va_predict_parity.safetensors")};
  text::Tokenizer tokenizer_ = text::Tokenizer::from_file(std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny/tokenizer.json");
  Sa2VAConfig config_;
  Sa2VAModel model_{nullptr};
};

TEST_F(PredictParity, ImagePreprocessingAndPromptAreSa2VAs) {
  const data::ModelImages in = images();
  const data::ModelInputOptions options_in = input_options();
  // The reference's uint8 pixels, normalised as ToTensor + Normalize do it.
  const auto normalised = [&](const at::Tensor& pixels) {
    const at::Tensor mean = at::tensor(std::vector<float>(options_in.mean.begin(), options_in.mean.end())).view({1, 3, 1, 1});
    const at::Tensor std = at::tensor(std::vector<float>(options_in.std.begin(), options_in.std.end())).view({1, 3, 1, 1});
    return (pixels.to(at::kFloat) / 255 - mean) / std;
  };
  EXPECT_TRUE(close(in.tiles, normalised(file_.tensor("output.pixel_values_u8")), 1e-5));
  EXPECT_TRUE(close(in.sam_images, normalised(file_.tensor("output.sam_image_u8")), 1e-5));
  text::EncodeOptions options;
  options.tiles = in.tiles.size(0);
  const std::vector<int64_t> prompt = text::encode_prompt(tokenizer_, text::chat_template(config_.template_name),
                                                          "<image>\nPlease segment the blood vessels in this image.",
                                                          options);
  EXPECT_EQ(prompt, ids_of(file_.tensor("input.prompt_ids")));
}

TEST_F(PredictParity, EveryStageFromTheImageToTheMasksMatchesTheReference) {
  torch::NoGradGuard no_grad;
  const data::ModelImages in = images();
  EXPECT_TRUE(close(model_->image_features(in.tiles), file_.tensor("output.image_features")));

  std::vector<at::Tensor> seg;
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    Sa2VAInputs inputs;
    inputs.pixel_values = in.tiles;
    inputs.input_ids = file_.tensor("input.forced_ids_" + std::to_string(i)).unsqueeze(0);
    const Sa2VAOutputs out = model_->Sa2VAVisionLanguageImpl::forward(inputs, /*return_logits=*/true);
    EXPECT_TRUE(close(out.hidden[0], file_.tensor("output.hidden_" + std::to_string(i))));
    const at::Tensor tail = file_.tensor("output.logits_tail_" + std::to_string(i));
    EXPECT_TRUE(close(out.logits[0].slice(0, out.logits.size(1) - tail.size(0)), tail));
    seg.push_back(out.prompt_embeddings);
  }
  const at::Tensor prompts = at::cat(seg);
  EXPECT_TRUE(close(prompts, file_.tensor("output.seg_embedding")));

  sam2::Sam2Model sam = model_->grounding_encoder->sam2_model();
  const std::vector<at::Tensor> fpn = sam->backbone_fpn(in.sam_images);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(close(fpn[i], file_.tensor("output.fpn." + std::to_string(i)))) << i;
  const sam2::ImageFeatures features = sam->encode_image(in.sam_images);
  EXPECT_TRUE(close(features.feat_s0, file_.tensor("output.feat_s0")));
  EXPECT_TRUE(close(features.feat_s1, file_.tensor("output.feat_s1")));

  const sam2::LanguagePromptedMasks masks = model_->grounding_encoder->forward(in.sam_images, prompts, {2});
  EXPECT_TRUE(close(masks.multimask_logits, file_.tensor("output.multimask_logits")));
  EXPECT_TRUE(close(masks.iou_predictions, file_.tensor("output.iou")));
  EXPECT_TRUE(close(masks.object_score_logits, file_.tensor("output.object_score")));
  EXPECT_TRUE(close(masks.best_mask_logits, file_.tensor("output.best_logits")));
  const at::Tensor scores = file_.tensor("output.object_score").flatten();
  EXPECT_LT((scores[0] * scores[1]).item<float>(), 0.0f) << "the fixture needs one prompt scored 'no object'";

  const at::Tensor image = file_.tensor("input.image");
  const at::Tensor probabilities =
      sam2::probabilities_from_logits(masks.best_mask_logits, in.sam_images.size(-1), image.size(0), image.size(1));
  EXPECT_TRUE(close(probabilities, file_.tensor("output.probabilities")));
  const at::Tensor agree = (probabilities > 0.5) == file_.tensor("output.masks").to(at::kBool);
  EXPECT_GE(agree.to(at::kDouble).mean().item<double>(), 0.999);
  for (int i = 0; i < 2; ++i) EXPECT_GT(file_.tensor("output.masks")[i].sum().item<int64_t>(), 0) << i;

  // The trained model's road (teacher-forced [SEG]) gives the same masks.
  Sa2VAInputs forced;
  forced.pixel_values = at::cat({in.tiles, in.tiles});
  const at::Tensor a = file_.tensor("input.forced_ids_0"), b = file_.tensor("input.forced_ids_1");
  const int64_t length = std::max(a.size(0), b.size(0));
  forced.input_ids = at::stack({at::constant_pad_nd(a, {0, length - a.size(0)}), at::constant_pad_nd(b, {0, length - b.size(0)})});
  forced.attention_mask = at::stack({at::constant_pad_nd(at::ones_like(a), {0, length - a.size(0)}),
                                     at::constant_pad_nd(at::ones_like(b), {0, length - b.size(0)})});
  const SegMasks predicted = model_->predict(forced, at::cat({in.sam_images, in.sam_images}));
  EXPECT_EQ(predicted.per_sample, (std::vector<int64_t>{1, 1}));
  EXPECT_TRUE(close(predicted.logits, file_.tensor("output.best_logits")));
}

TEST_F(PredictParity, GreedyTokensMatchTransformersGenerateWithAndWithoutTheCache) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> expected = ids_of(file_.tensor("output.generated_ids"));
  for (const bool cache : {true, false}) {
    SCOPED_TRACE(cache ? "KV cache" : "no cache");
    const GreedyOutput out = greedy(cache);
    ASSERT_EQ(out.tokens.size(), 1u);
    EXPECT_EQ(out.tokens[0], expected);
    EXPECT_TRUE(close(out.step_hidden[0], file_.tensor("output.generated_hidden")));
  }
}

TEST_F(PredictParity, StopTokensAndStopWordsEndGenerationKeepingTheStoppingToken) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> expected = ids_of(file_.tensor("output.generated_ids"));
  const size_t k = 5;
  const size_t first = std::find(expected.begin(), expected.end(), expected[k]) - expected.begin();
  GreedyOptions by_id;
  by_id.stop_token_ids = {expected[k]};
  EXPECT_EQ(greedy(true, by_id).tokens[0], std::vector<int64_t>(expected.begin(), expected.begin() + first + 1));
  GreedyOptions by_text;
  by_text.stop = [](const std::vector<int64_t>& tokens) { return tokens.size() == 7; };
  EXPECT_EQ(greedy(true, by_text).tokens[0], std::vector<int64_t>(expected.begin(), expected.begin() + 7));
  GreedyOptions short_run;
  short_run.max_new_tokens = 3;
  EXPECT_EQ(greedy(false, short_run).tokens[0], std::vector<int64_t>(expected.begin(), expected.begin() + 3));
}

TEST_F(PredictParity, ALeftPaddedBatchGeneratesWhatEachPromptGeneratesAlone) {
  torch::NoGradGuard no_grad;
  const data::ModelImages in = images();
  text::EncodeOptions options;
  options.tiles = in.tiles.size(0);
  const std::vector<int64_t> other = text::encode_prompt(tokenizer_, text::chat_template(config_.template_name),
                                                         "<image>\nVessels?", options);
  const std::vector<int64_t> prompt = ids_of(file_.tensor("input.prompt_ids"));
  ASSERT_LT(other.size(), prompt.size());
  const int64_t pad = static_cast<int64_t>(prompt.size() - other.size());
  const at::Tensor short_ids = at::tensor(other, at::kLong);
  const at::Tensor ids = at::stack({at::tensor(prompt, at::kLong), at::constant_pad_nd(short_ids, {pad, 0}, 7)});
  const at::Tensor valid = at::stack({at::ones({static_cast<int64_t>(prompt.size())}, at::kBool),
                                      at::constant_pad_nd(at::ones_like(short_ids), {pad, 0}).to(at::kBool)});
  GreedyOptions batch_options;
  batch_options.max_new_tokens = 12;
  const at::Tensor tiles = at::cat({in.tiles, in.tiles});
  const GreedyOutput batch = greedy_generate(*model_->language_model, model_->embed_inputs(ids, tiles), valid, batch_options);
  const GreedyOutput alone = greedy_generate(*model_->language_model,
                                             model_->embed_inputs(short_ids.unsqueeze(0), in.tiles), {}, batch_options);
  const std::vector<int64_t> expected = ids_of(file_.tensor("output.generated_ids"));
  EXPECT_EQ(batch.tokens[0], std::vector<int64_t>(expected.begin(), expected.begin() + 12));
  EXPECT_EQ(batch.tokens[1], alone.tokens[0]);
  EXPECT_TRUE(close(batch.step_hidden[1], alone.step_hidden[0]));
}

TEST_F(PredictParity, GeneratedSegTokensGetTheMasksOfTheirTeacherForcedPositions) {
  // Call a token the random model generates "[SEG]" (by its id in a second model with the same weights): generate()
  // must prompt SAM2 with the states at those positions, i.e. what predict() finds for the same sequence forced.
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> generated = ids_of(file_.tensor("output.generated_ids"));
  const int64_t seg = generated[3];
  config_.seg_token_id = seg;
  Sa2VAModel model(config_, model_->grounding_encoder->sam2_model()->config());
  {
    torch::NoGradGuard guard;
    auto source = model_->named_parameters(), target = model->named_parameters();
    for (auto& item : target) item.value().copy_(source[item.key()]);
    auto source_buffers = model_->named_buffers();
    for (auto& item : model->named_buffers()) item.value().copy_(source_buffers[item.key()]);
  }
  model->eval();
  const data::ModelImages in = images();
  Sa2VAPrompts prompts{in.tiles, file_.tensor("input.prompt_ids").unsqueeze(0), {}, in.sam_images};
  GreedyOptions options;
  options.max_new_tokens = 32;
  const Sa2VAAnswers answers = model->generate(prompts, options);
  EXPECT_EQ(answers.tokens[0], generated);
  const int64_t fed = std::count(generated.begin(), generated.end() - 1, seg);
  ASSERT_GT(fed, 0);
  EXPECT_EQ(answers.masks.per_sample, std::vector<int64_t>{fed});
  EXPECT_EQ(answers.unfed_seg, std::vector<int64_t>{generated.back() == seg ? 1 : 0});

  Sa2VAInputs forced;
  forced.pixel_values = in.tiles;
  forced.input_ids = at::cat({prompts.input_ids[0], at::tensor(std::vector<int64_t>(generated.begin(), generated.end() - 1), at::kLong)}).unsqueeze(0);
  const SegMasks expected = model->predict(forced, in.sam_images);
  EXPECT_TRUE(close(answers.masks.logits, expected.logits));
}

}  // namespace
}  // namespace vesseltune::model
