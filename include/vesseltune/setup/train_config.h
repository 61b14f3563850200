#pragma once
// The training job's configuration: one YAML file (configs/*.yaml) with five sections, overridden on the
// command line by `--set section.key=value` (the value is YAML: 2e-4, true, "text"). Every key is named
// by exactly one line of visit_fields (train_config.cpp), which serves reading, writing (the resolved config
// that is logged and stored in every checkpoint) and the check that refuses unknown keys by their path.
//
//   model:   which Sa2VA (preset or a checkpoint's config.json), base weights, tokenizer, SAM2, LoRA, precision
//   loss:    Sa2VA's mask loss weights and options
//   data:    packed shards, repeats per epoch, tiling, augmentation, loader threads
//   train:   epochs/steps, batch, accumulation, schedule, clipping, logging, validation, checkpoints
//   zero:    ZeRO stage, optimizer offload, buckets (or train.deepspeed: a DeepSpeed JSON that sets them)
//   runtime: backend, collective timeout, work directory
//
// Paths (model.config_json, model.weights, model.tokenizer, data.path, train.deepspeed, runtime.work_dir): a relative
// one in a config file is relative to that file's folder, one given with --set to the working directory. The
// loaded config holds them absolute, so the resolved config in a checkpoint works from any directory.

#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/data/augment.h"
#include "vesseltune/optim/zero_config.h"

namespace vesseltune::setup {

struct ModelSettings {
  std::string preset = "tiny";    // tiny | sa2va-1b | sa2va-4b (dimensions of the released models)
  std::string config_json;        // a checkpoint's config.json (file or folder); replaces the preset's dimensions
  std::string weights;            // base weights: a safetensors file or a folder of shards; empty: random from seed
  std::string tokenizer = "configs/tiny/tokenizer.json";
  std::string sam2_preset = "tiny";  // hiera-large for the released Sa2VA
  int64_t sam2_image_size = 0;       // 0: the preset's (1024 for Sa2VA)
  int64_t lora_r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0.05;
  bool activation_checkpointing = false;
  // On GPUs, the frozen image encoders (InternViT, SAM2's) and, with activation checkpointing, the decoder layers
  // replay as CUDA graphs, one per input shape: far fewer host launches per step; their working memory stays
  // reserved (the memory plan counts it).
  bool cuda_graphs = true;
  // Key prefixes trained in full besides Sa2VA's set (comma-separated), e.g. the SAM2 image encoder when
  // SAM2's weights are random: grounding_encoder.sam2_model.image_encoder
  std::string extra_trainable;
  // SAM2's own "no object" gate (object score <= 0 -> mask logits -1024). Off as in Sa2VA, which leaves it out;
  // opt-in, and a gated prompt trains nothing in the mask decoder.
  bool object_score_gate = false;
  std::string dtype = "auto";     // auto (bf16 on GPUs, fp32 on CPUs) | bf16 | fp32
};

struct LossSettings {
  double mask_weight = 2.0;
  double dice_weight = 0.5;
  int64_t num_points = 12544;
  bool dense = false;             // every pixel instead of Sa2VA's sampled points
  double cldice_weight = 0.0;
  bool inside_fov = false;        // zero the mask loss outside the field of view
};

struct DataSettings {
  std::string path = "data/synthetic";  // a vesseltune-pack output folder (manifest.json + shards)
  std::string train_split = "train";
  std::string val_split = "val";
  int64_t repeats = 5;            // the training split repeated per epoch (1,220 × 5 in the reference run)
  int64_t min_tiles = 1;
  int64_t max_tiles = 12;         // Sa2VA's max_dynamic_patch
  int workers = 2;                // loader threads per rank
  int prefetch_batches = 4;
  data::AugmentOptions augment;
};

struct TrainSettings {
  int64_t epochs = 10;
  int64_t max_steps = 0;          // > 0: stop after this many optimizer steps (the schedule spans them)
  int64_t micro_batch = 1;        // samples per rank and micro-step
  int64_t accumulation = 2;       // micro-steps per optimizer step
  double lr = 1e-4;
  double warmup_ratio = 0.05;     // linear warm-up over this share of the steps, then cosine to min_lr
  double min_lr = 0.0;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double clip_grad = 1.0;         // max global gradient norm; 0 disables
  uint64_t seed = 42;
  int64_t log_interval = 10;
  int64_t val_interval = 500;     // optimizer steps between validations (and at the end); 0: only at the end
  int64_t save_steps = 500;
  int64_t save_total_limit = 3;   // newest checkpoints kept, besides the best by validation Dice
  int64_t max_nonfinite_steps = 5;  // consecutive skipped (non-finite) steps before the run stops with an error
  std::string deepspeed;          // a DeepSpeed JSON (xtuner's zero2 offload): sets zero.* and batch values
};

struct ZeroSettings {
  int stage = 2;
  std::string offload_optimizer = "cpu";  // none | cpu
  double offload_ratio = 1.0;     // cpu: share of the optimizer state on the host, the rest on the GPU (0, 1]
  bool delayed_update = false;    // cpu: the host part's update overlaps the next step (one step late)
  int64_t delayed_update_warmup = 40;  // exact steps before the delayed update starts
  int64_t bucket_numel = 50'000'000;
  int optimizer_threads = 0;      // 0: the rank's share of the cores (¼ with delayed_update, ½ alone on a node)
};

struct RuntimeSettings {
  std::string backend = "auto";   // auto | mpi | nccl
  double collective_timeout_s = 600;
  std::string work_dir = "work_dirs/run";
};

struct TrainConfig {
  ModelSettings model;
  LossSettings loss;
  DataSettings data;
  TrainSettings train;
  ZeroSettings zero;
  RuntimeSettings runtime;

  // Reads FILE, applies OVERRIDES ("train.lr=2e-4") and validates. Errors name the file and the key.
  static TrainConfig load(const std::string& file, const std::vector<std::string>& overrides = {});
  // TEXT as if read from ORIGIN (named in errors); its relative paths are relative to TEXT_FOLDER (empty: the
  // working directory, as for a checkpoint's stored config written before paths were stored absolute).
  static TrainConfig from_yaml_text(const std::string& text, const std::string& origin,
                                    const std::vector<std::string>& overrides = {},
                                    const std::string& text_folder = "");
  // The resolved configuration as YAML (every key, loadable again).
  std::string to_yaml() const;
  // Throws naming the key when a value is out of range.
  void validate() const;

  // With train.deepspeed set: a copy with the DeepSpeed JSON's ZeRO and batch values ("auto" keeps the config's;
  // its notes are logged). Otherwise a plain copy.
  TrainConfig with_deepspeed(int world_size) const;
  // The optimizer settings of zero.* and train.* (betas, eps, weight decay, clipping).
  optim::ZeroConfig zero_config() const;
};

}  // namespace vesseltune::setup
