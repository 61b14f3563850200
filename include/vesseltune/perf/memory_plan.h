#pragma once
// Per-GPU memory plan of a training run, computed from the configuration alone (no model is built), for
// `vesseltune-train --plan` and for choosing settings that fit a GPU. Parameter counts and the ZeRO
// optimizer's buffers are exact; activations are an estimate calibrated on H200 measurements (memory_plan.cpp
// explains the formulas and how far off they were).

#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/model/config.h"
#include "vesseltune/model/sam2/sam2_config.h"
#include "vesseltune/optim/zero_config.h"
#include "vesseltune/setup/parameter_count.h"
#include "vesseltune/setup/train_config.h"

namespace vesseltune::perf {

struct PlanInputs {
  model::Sa2VAConfig model;       // dims, lora (used when model.use_llm_lora), trainable_modules, checkpointing
  model::sam2::Sam2Config sam2;
  int world_size = 1;
  int64_t micro_batch = 1;
  int64_t tiles_per_sample = 7;   // InternVL tiles per image incl. thumbnail (1 .. max_dynamic_patch+1)
  int64_t text_tokens = 64;       // tokens other than image tokens per sample
  optim::ZeroConfig zero;         // stage, offload (none|cpu), bucket size
  bool bf16 = true;               // model weights and activations in bf16 (else fp32)
  bool cuda_graphs = false;       // model.cuda_graphs: frozen encoders and checkpointed decoder layers replay as
                                  // CUDA graphs (pools reserved)
};

// One parameter of the whole Sa2VA model as Sa2VAModel registers it (after apply_lora when
// model.use_llm_lora, then set_trainable), in named_parameters() order.
struct PlannedParameter {
  std::string name;
  std::vector<int64_t> shape;
  bool trainable = false;
  bool sparse_rows = false;  // trains with sparse row gradients (embed_tokens, model::sparse_embedding_gradient)
  int64_t numel() const;
};
std::vector<PlannedParameter> plan_parameters(const PlanInputs& in);

struct MemoryPlan {
  std::vector<setup::ParameterCount> modules;
  int64_t weights_bytes = 0;           // frozen parameters + the optimizer's flat (padded) trainable buffer
  int64_t gradient_bytes = 0;          // flat gradient buffer + reduced shard (stage >= 1)
  int64_t optimizer_device_bytes = 0;  // fp32 master + moments on the device (0 with offload cpu)
  int64_t activation_bytes = 0;        // estimated peak of one micro-step's forward + backward beyond the above
  int64_t graph_pool_bytes = 0;        // CUDA graphs' pools and static buffers (est.): the frozen encoders'
                                       // forward and a checkpointed decoder layer's recompute + backward
  int64_t buffer_bytes = 0;            // CUDA library workspaces and allocator slack (calibrated constant)
  int64_t device_total_bytes = 0;
  int64_t host_bytes = 0;              // pinned host memory per rank: offloaded optimizer state and staging
};

MemoryPlan plan_memory(const PlanInputs& in);

// What the plan needs from a training config (GPU dtype; the largest tiling the config allows, since the budget
// must hold for it).
PlanInputs memory_plan_inputs(const setup::TrainConfig& config, int world_size);
// A readable table (GiB): one line per item and per module.
std::string format_plan(const MemoryPlan& plan, const PlanInputs& in);

// GiB kept free on the GPU besides the plan: CUDA context, NCCL buffers, allocator fragmentation.
double safety_margin_gib(double gpu_mem_gib);

struct FitAdvice {
  bool fits = false;
  // When it does not fit: settings to change, in the order to try them, each "yaml.key: value (saves X GiB)",
  // each saving measured with the suggestions before it applied, until it fits: activation checkpointing, CUDA
  // graphs off, optimizer offload, stage 2, micro-batch 1, fewer tiles, a smaller LoRA rank. When offloading was needed
  // and enough, last the alternative to it: more GPUs (ZeRO <= 2 shards only the optimizer state).
  std::vector<std::string> suggestions;
};
FitAdvice advise(const PlanInputs& in, double gpu_mem_gib);
// The least optimizer offload with which the plan fits GPU_MEM_GIB: none if it fits without, else cpu with the
// smallest offload_ratio in steps of 0.05 that fits (1 when even the whole state on the host does not fit).
struct OffloadChoice {
  optim::OffloadDevice device = optim::OffloadDevice::none;
  double ratio = 1.0;
  std::string yaml() const;  // "zero.offload_optimizer: cpu, zero.offload_ratio: 0.35"
};
OffloadChoice choose_offload(const PlanInputs& in, double gpu_mem_gib);

}  // namespace vesseltune::perf
