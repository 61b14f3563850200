#pragma once
// DeepSpeed JSON configs as users have them (e.g. xtuner's deepspeed_zero2_offload.json), read into ZeroConfig
// and the batch settings. "auto" values are resolved from the training config. Every key is either used,
// accepted with a logged note when it has no meaning here, or refused by name: nothing is silently ignored.

#include <optional>
#include <string>
#include <vector>

#include "vesseltune/optim/zero_config.h"

namespace vesseltune::optim {

// Values the training config provides, used wherever the DeepSpeed file says "auto".
struct TrainingDefaults {
  int micro_batch_per_gpu = 1;
  int gradient_accumulation_steps = 1;
  double gradient_clipping = 1.0;
  bool bf16 = true;
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int world_size = 1;
};

struct DeepSpeedSettings {
  ZeroConfig zero;
  int micro_batch_per_gpu = 1;
  int gradient_accumulation_steps = 1;
  bool bf16 = true;
  double lr = 1e-4;
  std::vector<std::string> notes;  // accepted keys without effect here, to be logged once
};

// `source` names the file in error messages. Throws vesseltune::Error naming the key path
// ("zero_optimization.offload_param") for unknown, unsupported or ill-typed entries.
DeepSpeedSettings parse_deepspeed_config(const std::string& json_text, const std::string& source,
                                         const TrainingDefaults& defaults);
DeepSpeedSettings load_deepspeed_config(const std::string& path, const TrainingDefaults& defaults);

}  // namespace vesseltune::optim
