#pragma once
// Shared helpers of the model suites: fixture paths, the fixtures' configs and closeness in the parity sense.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>

#include "vesseltune/model/config.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vesseltune::model::testing {

inline std::string fixture(const std::string& name) { return std::string(VESSELTUNE_FIXTURES_DIR) + "/" + name; }

// max |actual − expected| ≤ rel · max |expected| (+ a floor for all-zero references).
inline ::testing::AssertionResult close(const at::Tensor& actual, const at::Tensor& expected, double rel = 1e-4) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " vs " << expected.sizes();
  }
  const double scale = expected.abs().max().item<double>();
  const double err = (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
  if (err <= rel * scale + 1e-12) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max abs error " << err << " > " << rel << " x max |expected| " << scale;
}

}  // namespace vesseltune::model::testing

namespace vesseltune::model::testing {

// A small model for CPU tests: 56×56 tiles (4 image tokens each), a 300-token vocabulary, LoRA r 4.
inline Sa2VAConfig small_config() {
  Sa2VAConfig c = Sa2VAConfig::preset("tiny");
  c.vision.image_size = 56;
  c.llm.vocab_size = 300;
  c.llm.hidden_size = 32;
  c.llm.intermediate_size = 64;
  c.llm.num_heads = 4;
  c.llm.num_kv_heads = 2;
  c.image_context_token_id = 290;
  c.seg_token_id = 291;
  c.lora.r = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.0;
  return c;
}

// One sample with 1 tile (4 image tokens at 1..4), one [SEG] at 8 and labels on 6..10; a second, padded
// sample with 1 tile and two [SEG].
struct SmallBatch {
  at::Tensor pixel_values, input_ids, attention_mask, labels;
};
inline SmallBatch small_batch() {
  SmallBatch b;
  b.pixel_values = at::randn({2, 3, 56, 56});
  b.input_ids = at::randint(0, 280, {2, 12}, at::kLong);
  b.input_ids.index_put_({0, at::indexing::Slice(1, 5)}, 290);
  b.input_ids.index_put_({0, 8}, 291);
  b.input_ids.index_put_({1, at::indexing::Slice(2, 6)}, 290);
  b.input_ids.index_put_({1, 7}, 291);
  b.input_ids.index_put_({1, 9}, 291);
  b.labels = at::full({2, 12}, -100, at::kLong);
  b.labels.index_put_({0, at::indexing::Slice(6, 11)}, b.input_ids.index({0, at::indexing::Slice(6, 11)}));
  b.labels.index_put_({1, at::indexing::Slice(6, 10)}, b.input_ids.index({1, at::indexing::Slice(6, 10)}));
  b.attention_mask = at::ones({2, 12}, at::kLong);
  b.attention_mask.index_put_({1, at::indexing::Slice(10, 12)}, 0);
  return b;
}

inline Sa2VAInputs inputs_of(const SmallBatch& b) {
  Sa2VAInputs in;
  in.pixel_values = b.pixel_values;
  in.input_ids = b.input_ids;
  in.attention_mask = b.attention_mask;
  in.labels = b.labels;
  return in;
}

// B is zero after add_lora; give it values so the adapters do something.
inline void randomize_lora_b(torch::nn::Module& model) {
  at::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.1);
  }
}

}  // namespace vesseltune::model::testing
