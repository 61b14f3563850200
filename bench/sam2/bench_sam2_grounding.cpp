// The SAM2 half of a Sa2VA training step on one GPU: frozen image encoder on I images, features repeated for
// P prompts each, mask decoder trained through the Sa2VA losses (12,544 sampled points), language embeddings
// requiring grad as they do when they come from the LLM. Random weights. Prints median times and peak memory.
//   bench_sam2_grounding --preset hiera-large --images 2 --prompts 5 --dtype bf16
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "../bench_support.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/model/sa2va_losses.h"
#include "vesseltune/model/sam2/grounding_encoder.h"

using namespace vesseltune;

using vesseltune::bench::median;

int main(int argc, char** argv) {
  CLI::App app{"SAM2 grounding encoder: forward + backward of one Sa2VA step"};
  std::string preset = "hiera-large", dtype_name = "bf16";
  int images = 2, prompts = 5, iterations = 10;
  app.add_option("--preset", preset);
  app.add_option("--images", images);
  app.add_option("--prompts", prompts, "prompts ([SEG] embeddings) per image");
  app.add_option("--dtype", dtype_name, "bf16 or fp32");
  app.add_option("--iterations", iterations);
  CLI11_PARSE(app, argc, argv);
  try {
    VT_CHECK(compat::torch_has_cuda(), "bench_sam2_grounding needs LibTorch with CUDA");
    const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
    const at::Device device(at::kCUDA, 0);
    model::sam2::Sam2Config config = model::sam2::sam2_preset(preset);
    model::sam2::GroundingEncoder encoder(config);
    encoder->to(device, dtype);
    encoder->sam2_model()->train_mask_decoder_only();
    int64_t trainable = 0, total = 0;
    for (const auto& p : encoder->parameters()) {
      total += p.numel();
      if (p.requires_grad()) trainable += p.numel();
    }
    const auto options = at::TensorOptions().device(device).dtype(dtype);
    at::Tensor pixels = at::randn({images, 3, config.image_size, config.image_size}, options);
    const int64_t n = static_cast<int64_t>(images) * prompts;
    at::Tensor language = at::randn({n, config.d_model}, options).requires_grad_(true);
    const int64_t m = config.low_res_mask_size();
    at::Tensor targets = (at::rand({n, m, m}, options.dtype(at::kFloat)) > 0.5).to(at::kFloat);
    std::vector<int64_t> counts(images, prompts);

    std::vector<double> step_ms, forward_ms, encoder_ms;
    int64_t peak = 0;
    for (int it = 0; it < iterations + 2; ++it) {
      compat::cuda_synchronize(0);
      compat::cuda_reset_peak_stats(0);
      auto t0 = std::chrono::steady_clock::now();
      {
        c10::NoGradGuard no_grad;  // the image encoder alone (frozen: autograd records nothing anyway)
        encoder->sam2_model()->backbone_fpn(pixels);
      }
      compat::cuda_synchronize(0);
      auto t1 = std::chrono::steady_clock::now();
      model::sam2::LanguagePromptedMasks out = encoder->forward(pixels, language, counts);
      model::MaskLosses losses = model::sa2va_mask_losses(out.best_mask_logits, targets, model::MaskLossOptions{});
      compat::cuda_synchronize(0);
      auto t2 = std::chrono::steady_clock::now();
      losses.total().backward();
      compat::cuda_synchronize(0);
      auto t3 = std::chrono::steady_clock::now();
      for (const auto& p : encoder->parameters()) p.mutable_grad() = at::Tensor();
      language.mutable_grad() = at::Tensor();
      if (it < 2) continue;  // warm-up: cuDNN/cuBLAS plans, allocator
      encoder_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      forward_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      step_ms.push_back(std::chrono::duration<double, std::milli>(t3 - t1).count());
      peak = std::max(peak, compat::cuda_peak_allocated_bytes(0));
    }
    std::printf("preset %s, %s, %d images x %d prompts, params %.1fM (trainable %.2fM)\n", preset.c_str(),
                dtype_name.c_str(), images, prompts, total / 1e6, trainable / 1e6);
    std::printf("image encoder alone (no grad)     %8.2f ms\n", median(encoder_ms));
    std::printf("forward (encoder + decoder + loss) %8.2f ms\n", median(forward_ms));
    std::printf("forward + backward                 %8.2f ms\n", median(step_ms));
    std::printf("peak allocated                     %8.2f GiB\n", peak / double(1ull << 30));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sam2_grounding: %s\n", e.what());
    return 1;
  }
}
