// What to change so that a run fits a GPU: the safety margin, the advice (one setting at a time) and the least
// optimizer offload that fits.
#include <functional>

#include "memory_plan_parts.h"
#include "vesseltune/core/check.h"

namespace vesseltune::perf {

using plan::gib;
using plan::kGiB;

double safety_margin_gib(double gpu_mem_gib) {
  // ~0.5 GiB CUDA context and library handles, a few hundred MiB of NCCL buffers (neither is in the caching
  // allocator), and 5 % for the allocator's fragmentation (reserved above allocated).
  return 1.0 + 0.05 * gpu_mem_gib;
}

namespace {

bool fits(const PlanInputs& in, double gpu_mem_gib) {
  return static_cast<double>(plan_memory(in).device_total_bytes) / kGiB <= gpu_mem_gib - safety_margin_gib(gpu_mem_gib);
}

// The first candidate (in the order given) that fits, else the last one.
int64_t first_fitting(const std::vector<int64_t>& candidates, const std::function<bool(int64_t)>& fit) {
  for (int64_t candidate : candidates) {
    if (fit(candidate)) return candidate;
  }
  return candidates.back();
}

}  // namespace

FitAdvice advise(const PlanInputs& in, double gpu_mem_gib) {
  FitAdvice advice;
  advice.fits = fits(in, gpu_mem_gib);
  if (advice.fits) return advice;

  // Each step changes one setting of `current` (the earlier suggestions applied); kept when it saves memory.
  PlanInputs current = in;
  auto suggest = [&](const std::string& setting, const std::function<void(PlanInputs&)>& change) {
    if (advice.fits) return;
    PlanInputs next = current;
    change(next);
    const int64_t saved = plan_memory(current).device_total_bytes - plan_memory(next).device_total_bytes;
    if (saved <= 0) return;
    advice.suggestions.push_back(setting + " (saves " + gib(saved) + ")");
    current = next;
    advice.fits = fits(current, gpu_mem_gib);
  };

  if (!current.model.activation_checkpointing) {
    suggest("model.activation_checkpointing: true", [](PlanInputs& p) { p.model.activation_checkpointing = true; });
  }
  if (current.cuda_graphs) suggest("model.cuda_graphs: false", [](PlanInputs& p) { p.cuda_graphs = false; });
  if (current.zero.offload == optim::OffloadDevice::none) {
    suggest("zero.offload_optimizer: cpu", [](PlanInputs& p) { p.zero.offload = optim::OffloadDevice::cpu; });
  }
  if (current.zero.stage < 2) suggest("zero.stage: 2", [](PlanInputs& p) { p.zero.stage = 2; });
  if (current.micro_batch > 1) suggest("train.micro_batch: 1", [](PlanInputs& p) { p.micro_batch = 1; });

  // data.max_tiles N gives N + 1 tiles with the thumbnail (InternVL adds none to a single tile).
  const bool thumbnail = current.model.use_thumbnail;
  auto tiles_of = [thumbnail](int64_t max_tiles) { return max_tiles + (thumbnail && max_tiles > 1 ? 1 : 0); };
  std::vector<int64_t> max_tiles;
  for (int64_t n = current.model.max_dynamic_patch - 1; n >= 1; --n) {
    if (tiles_of(n) < current.tiles_per_sample) max_tiles.push_back(n);
  }
  if (!advice.fits && !max_tiles.empty()) {
    const int64_t n = first_fitting(max_tiles, [&](int64_t c) {
      PlanInputs p = current;
      p.tiles_per_sample = tiles_of(c);
      return fits(p, gpu_mem_gib);
    });
    suggest("data.max_tiles: " + std::to_string(n), [&, n](PlanInputs& p) {
      p.model.max_dynamic_patch = n;
      p.tiles_per_sample = tiles_of(n);
    });
  }

  std::vector<int64_t> ranks;
  for (int64_t r = current.model.lora.r / 2; r >= 8; r /= 2) ranks.push_back(r);
  if (!advice.fits && current.model.use_llm_lora && !ranks.empty()) {
    const int64_t r = first_fitting(ranks, [&](int64_t c) {
      PlanInputs p = current;
      p.model.lora.r = c;
      return fits(p, gpu_mem_gib);
    });
    suggest("model.lora.r: " + std::to_string(r), [r](PlanInputs& p) { p.model.lora.r = r; });
  }

  // With ZeRO stage <= 2 every GPU holds all weights and gradients; more GPUs shrink only the optimizer shard.
  // So they cannot help once the state is offloaded: they are the alternative to offloading it, offered when
  // the other changes made it fit and the user had the state on the GPU.
  if (advice.fits && in.zero.offload == optim::OffloadDevice::none && current.zero.offload == optim::OffloadDevice::cpu) {
    PlanInputs on_device = current;
    on_device.zero.offload = optim::OffloadDevice::none;
    on_device.zero.stage = 2;
    for (int w = std::max(2, current.world_size * 2); w <= 64; w *= 2) {
      PlanInputs more = on_device;
      more.world_size = w;
      if (!fits(more, gpu_mem_gib)) continue;
      const int64_t saved = plan_memory(on_device).device_total_bytes - plan_memory(more).device_total_bytes;
      advice.suggestions.push_back("more GPUs (world size " + std::to_string(w) + ", zero.stage: 2) instead of "
                                   "zero.offload_optimizer: cpu (saves " + gib(saved) + " without offload)");
      break;
    }
  }
  return advice;
}

std::string OffloadChoice::yaml() const {
  std::string text = std::string("zero.offload_optimizer: ") + optim::to_string(device);
  if (device == optim::OffloadDevice::cpu) {
    char ratio_text[48];
    std::snprintf(ratio_text, sizeof ratio_text, ", zero.offload_ratio: %.2f", ratio);
    text += ratio_text;
  }
  return text;
}

OffloadChoice choose_offload(const PlanInputs& in, double gpu_mem_gib) {
  PlanInputs trial = in;
  trial.zero.offload = optim::OffloadDevice::none;
  if (fits(trial, gpu_mem_gib)) return {};
  // Device memory falls as the ratio grows: the first step that fits is the least offload.
  trial.zero.offload = optim::OffloadDevice::cpu;
  for (int twentieths = 1; twentieths < 20; ++twentieths) {
    trial.zero.offload_ratio = twentieths / 20.0;
    if (fits(trial, gpu_mem_gib)) return {optim::OffloadDevice::cpu, trial.zero.offload_ratio};
  }
  return {optim::OffloadDevice::cpu, 1.0};
}

}  // namespace vesseltune::perf
