// bench_predict: vesseltune-predict's path for one image at a time (or --batch images), against the same work as
// bench/peer/predict_peer.py: Sa2VA with the run config's random weights (bf16 on a GPU), a 448² uint8 image (one
// InternVL tile, SAM2 at 1024²), the vessel prompt, exactly --new-tokens greedy tokens with the KV cache, then the
// "first mask": the last generated position's state → text_hidden_fcs → SAM2 → the mask at the image's size on the
// host. Random weights generate no [SEG] of their own, so the last position stands in for it (as the peer does).
// Prints images/s and the median time from the raw image to its mask; the last line is BENCH_RESULT {json}.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "../bench_support.h"
#include "vesseltune/eval/predictor.h"
#include "vesseltune/metrics/vessel_metrics.h"
#include "vesseltune/model/sam2/grounding_encoder.h"
#include "vesseltune/setup/trained_model.h"

using namespace vesseltune;
using Clock = std::chrono::steady_clock;

namespace {

data::SampleRecord random_image(int side, uint64_t seed) {
  data::SampleRecord record;
  record.image = data::Image(side, side, 3);
  at::Tensor pixels = at::randint(0, 256, {side * side * 3}, at::TensorOptions().dtype(at::kByte));
  std::copy_n(pixels.data_ptr<uint8_t>(), pixels.numel(), record.image.pixels.data());
  record.mask = data::Image(side, side, 1);
  record.fov = data::Image(side, side, 1, 1);
  record.texts = {"blood vessels"};
  record.source = "random_" + std::to_string(seed);
  return record;
}

// One call of the predict path on RECORDS; returns when the masks are on the host.
void predict_once(const setup::TrainedModel& trained, const eval::Predictor& predictor,
                  const std::vector<data::SampleRecord>& records, int64_t new_tokens) {
  torch::NoGradGuard no_grad;
  model::Sa2VAModel net = trained.model;
  const model::Sa2VAPrompts prompts = predictor.prompts(records);
  model::GreedyOptions options;
  options.max_new_tokens = new_tokens;
  const at::Tensor embeds = net->embed_inputs(prompts.input_ids, prompts.pixel_values);
  const model::GreedyOutput out = model::greedy_generate(*net->language_model, embeds, prompts.attention_mask, options);
  const at::Tensor language = net->text_hidden_fcs->forward(out.step_hidden.select(1, -1));
  const std::vector<int64_t> one_each(records.size(), 1);
  const model::sam2::LanguagePromptedMasks masks = net->grounding_encoder->forward(prompts.sam_images, language, one_each);
  const int64_t size = prompts.sam_images.size(-1);
  const at::Tensor mask = metrics::vessel_mask(model::sam2::probabilities_from_logits(masks.best_mask_logits, size,
                                                                                     records[0].image.height,
                                                                                     records[0].image.width),
                                               metrics::kDefaultThreshold)
                               .to(at::kCPU);
  (void)mask;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-predict's path (preprocessing, greedy generation with the KV cache, SAM2 mask) timed"};
  std::string config_file = "configs/sa2va_4b_vessel_lora.yaml";
  std::vector<std::string> overrides;
  int images = 20, warmup = 3, batch = 1, side = 448;
  int64_t new_tokens = 16;
  app.add_option("--config", config_file, "training config whose model is built (random weights)")->capture_default_str();
  app.add_option("--set", overrides, "config overrides, e.g. model.tokenizer=configs/tiny/tokenizer.json");
  app.add_option("--images", images, "measured images")->capture_default_str();
  app.add_option("--warmup", warmup, "calls before the measured ones")->capture_default_str();
  app.add_option("--batch", batch, "images per call")->capture_default_str();
  app.add_option("--new-tokens", new_tokens, "tokens generated per image (exactly)")->capture_default_str();
  app.add_option("--side", side, "image side in pixels")->capture_default_str();
  bool cpu = false;
  app.add_flag("--cpu", cpu, "run on the CPU in fp32 (a smoke run)");
  CLI11_PARSE(app, argc, argv);

  const at::Device device = cpu ? at::Device(at::kCPU) : at::Device(at::kCUDA, 0);
  setup::TrainConfig config = setup::TrainConfig::load(config_file, overrides);
  const setup::TrainedModel trained = setup::build_untrained_model(config, device);
  const eval::Predictor predictor(trained, {});
  std::vector<data::SampleRecord> records;
  for (int i = 0; i < batch; ++i) records.push_back(random_image(side, i));

  for (int i = 0; i < warmup; ++i) predict_once(trained, predictor, records, new_tokens);
  std::vector<double> seconds;
  const int calls = std::max(1, images / batch);
  for (int i = 0; i < calls; ++i) {
    const auto start = Clock::now();
    predict_once(trained, predictor, records, new_tokens);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  double total = 0;
  for (double s : seconds) total += s;
  const double per_s = calls * batch / total, first_ms = bench::median(seconds) * 1e3;
  std::printf("bench_predict: %s, %s, batch %d, %lld new tokens: %.2f images/s, first mask %.1f ms (median)\n",
              config_file.c_str(), device.str().c_str(), batch, static_cast<long long>(new_tokens), per_s, first_ms);
  std::printf("BENCH_RESULT {\"images_per_s\": %.4f, \"first_mask_ms_median\": %.3f, \"batch\": %d, \"new_tokens\": %lld}\n",
              per_s, first_ms, batch, static_cast<long long>(new_tokens));
  return 0;
}
