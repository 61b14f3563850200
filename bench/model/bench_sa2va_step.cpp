// bench_sa2va_step: forward + backward of Sa2VA with random weights, LoRA on the LLM and Sa2VA's trainable
// set, in bf16 on one GPU (or fp32 on the CPU for a smoke run): the vision-language half alone, or with
// --sam2 PRESET the whole model (SAM2 grounding encoder, mask losses as in training, one mask per sample). Per configuration
// (tiles per sample × activation checkpointing) it prints the median step time and the peak memory that the
// CUDA caching allocator handed out during the steps.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "../bench_support.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/sam2_config.h"

using namespace vesseltune;
using Clock = std::chrono::steady_clock;

namespace {

// One right-padded batch: per sample 24 prompt tokens, the image tokens of `tiles` tiles, 24 question tokens
// and an 8-token answer "... [SEG] ..." that carries the labels.
model::Sa2VAInputs make_batch(const model::Sa2VAConfig& config, int64_t batch, int64_t tiles, at::Device device,
                              at::ScalarType dtype) {
  const int64_t image = tiles * config.image_tokens_per_tile();
  const int64_t tokens = 24 + image + 24 + 8;
  model::Sa2VAInputs in;
  in.pixel_values = torch::randn({batch * tiles, 3, config.vision.image_size, config.vision.image_size}).to(device, dtype);
  in.input_ids = torch::randint(0, config.llm.vocab_size - 8, {batch, tokens}, torch::kLong);
  in.input_ids.slice(1, 24, 24 + image).fill_(config.image_context_token_id);
  in.input_ids.select(1, tokens - 4).fill_(config.seg_token_id);
  in.labels = torch::full({batch, tokens}, -100, torch::kLong);
  in.labels.slice(1, tokens - 8).copy_(in.input_ids.slice(1, tokens - 8));
  in.input_ids = in.input_ids.to(device);
  in.labels = in.labels.to(device);
  in.masks_per_sample.assign(batch, 1);
  return in;
}
using vesseltune::bench::median;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sa2VA forward + backward: the vision-language half, or the whole model with --sam2"};
  std::string preset = "sa2va-1b";
  std::vector<int64_t> tiles_list = {1, 7};
  int64_t batch = 1, lora_r = 128, steps = 5;
  bool cpu = false;
  std::string sam2_preset;
  app.add_option("--preset", preset, "tiny, sa2va-1b, sa2va-4b");
  app.add_option("--tiles", tiles_list, "tiles per sample to measure (7 = 6 tiles + thumbnail)");
  app.add_option("--batch", batch, "samples per step");
  app.add_option("--lora-r", lora_r, "LoRA rank (alpha = 2r)");
  app.add_option("--steps", steps, "measured steps per configuration (after 2 warm-up steps)");
  app.add_flag("--cpu", cpu, "fp32 on the CPU instead of bf16 on GPU 0");
  app.add_option("--sam2", sam2_preset, "the whole model with this SAM2 preset (hiera-large for Sa2VA)");
  CLI11_PARSE(app, argc, argv);
  try {
    const at::Device device = cpu ? at::Device(at::kCPU) : at::Device(at::kCUDA, 0);
    const at::ScalarType dtype = cpu ? at::kFloat : at::kBFloat16;
    model::Sa2VAConfig config = model::Sa2VAConfig::preset(preset);
    config.image_context_token_id = config.llm.vocab_size - 6;
    config.seg_token_id = config.llm.vocab_size - 5;
    config.lora.r = lora_r;
    config.lora.alpha = 2.0 * static_cast<double>(lora_r);
    config.max_length = 16384;

    torch::manual_seed(0);
    auto built = Clock::now();
    // The whole model is the half plus `grounding_encoder`: one pointer to the half serves both.
    model::Sa2VAModel whole{nullptr};
    std::shared_ptr<model::Sa2VAVisionLanguageImpl> net;
    if (sam2_preset.empty()) {
      net = model::Sa2VAVisionLanguage(config).ptr();
    } else {
      whole = model::Sa2VAModel(config, model::sam2::sam2_preset(sam2_preset));
      net = whole.ptr();
    }
    net->to(device, dtype);
    model::apply_lora(*net, config.lora);
    model::set_trainable(*net, config.trainable_modules);
    int64_t total = 0, trainable = 0;
    for (const auto& p : net->parameters()) {
      total += p.numel();
      if (p.requires_grad()) trainable += p.numel();
    }
    std::printf("%s%s%s, LoRA r%lld alpha %.0f, %s %s: %.1fM parameters, %.1fM trainable (built in %.1f s)\n",
                preset.c_str(), sam2_preset.empty() ? "" : " + SAM2 ", sam2_preset.c_str(), static_cast<long long>(config.lora.r), config.lora.alpha, cpu ? "CPU" : "GPU",
                cpu ? "fp32" : "bf16", total / 1e6, trainable / 1e6,
                std::chrono::duration<double>(Clock::now() - built).count());
    std::printf("%6s %6s %8s %14s %12s %14s %12s\n", "batch", "tiles", "tokens", "checkpointing", "step ms",
                "peak GiB", "loss");
    net->train();
    for (int64_t tiles : tiles_list) {
      for (bool checkpointing : {false, true}) {
        net->set_activation_checkpointing(checkpointing);
        const model::Sa2VAInputs in = make_batch(config, batch, tiles, device, dtype);
        model::Sa2VABatch step_batch{in, at::Tensor(), at::Tensor(), at::Tensor()};
        if (whole) {
          const int64_t size = model::sam2::sam2_preset(sam2_preset).image_size;
          step_batch.sam_images = torch::randn({batch, 3, size, size}).to(device, dtype);
          step_batch.masks = (torch::rand({batch, 584, 565}) > 0.85).to(device, at::kFloat);
        }
        std::vector<double> times;
        double loss_value = 0;
        if (!cpu) compat::cuda_synchronize(0);
        if (!cpu) compat::cuda_reset_peak_stats(0);
        for (int64_t step = 0; step < steps + 2; ++step) {
          net->zero_grad();
          auto start = Clock::now();
          at::Tensor loss;
          if (whole) {
            loss = whole->forward(step_batch).total;
          } else {
            model::Sa2VAOutputs out = net->forward(in);
            loss = out.llm_loss + out.prompt_embeddings.to(at::kFloat).pow(2).mean();
          }
          loss.backward();
          if (!cpu) compat::cuda_synchronize(0);
          if (step >= 2) times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
          loss_value = loss.item<double>();
        }
        const double peak = cpu ? 0.0 : static_cast<double>(compat::cuda_peak_allocated_bytes(0)) / (1 << 30);
        std::printf("%6lld %6lld %8lld %14s %12.1f %14.2f %12.4f\n", static_cast<long long>(batch),
                    static_cast<long long>(tiles), static_cast<long long>(in.input_ids.size(1)),
                    checkpointing ? "on" : "off", median(times), peak, loss_value);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sa2va_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
