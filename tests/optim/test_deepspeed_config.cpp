// DeepSpeed JSON as users have it: xtuner's zero2 offload file, "auto" values, unknown and unsupported keys.
#include <gtest/gtest.h>

#include "vesseltune/core/check.h"
#include "vesseltune/optim/deepspeed_config.h"

using namespace vesseltune;
using namespace vesseltune::optim;

namespace {

// xtuner/configs/deepspeed/deepspeed_zero2_offload.json, as Sa2VA users run it.
const char* kXtunerZero2Offload = R"({
  "gradient_accumulation_steps": "auto",
  "train_micro_batch_size_per_gpu": "auto",
  "gradient_clipping": "auto",
  "zero_allow_untested_optimizer": true,
  "zero_force_ds_cpu_optimizer": false,
  "zero_optimization": {
    "stage": 2,
    "overlap_comm": true,
    "offload_optimizer": {"device": "cpu", "pin_memory": true}
  },
  "fp16": {"enabled": "auto", "initial_scale_power": 16},
  "bf16": {"enabled": "auto"}
})";

TrainingDefaults defaults_for_world(int world_size) {
  TrainingDefaults defaults;
  defaults.world_size = world_size;
  return defaults;
}

std::string error_of(const std::string& json, const TrainingDefaults& defaults = {}) {
  try {
    parse_deepspeed_config(json, "ds.json", defaults);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(DeepSpeedConfig, XtunerZero2OffloadResolvesAutoFromTrainingConfig) {
  TrainingDefaults defaults;
  defaults.micro_batch_per_gpu = 1;
  defaults.gradient_accumulation_steps = 2;
  defaults.gradient_clipping = 1.0;
  defaults.bf16 = true;
  defaults.world_size = 4;
  const auto settings = parse_deepspeed_config(kXtunerZero2Offload, "ds.json", defaults);
  EXPECT_EQ(settings.zero.stage, 2);
  EXPECT_EQ(settings.zero.offload, OffloadDevice::cpu);
  EXPECT_TRUE(settings.zero.pin_memory);
  EXPECT_TRUE(settings.zero.overlap_comm);
  EXPECT_EQ(settings.gradient_accumulation_steps, 2);
  EXPECT_EQ(settings.micro_batch_per_gpu, 1);
  EXPECT_DOUBLE_EQ(settings.zero.gradient_clipping, 1.0);
  EXPECT_TRUE(settings.bf16);
  // fp16.initial_scale_power and the zero_* flags are accepted but reported, by name.
  std::string notes;
  for (const auto& note : settings.notes) notes += note + "\n";
  EXPECT_NE(notes.find("'fp16.initial_scale_power'"), std::string::npos) << notes;
  EXPECT_NE(notes.find("'zero_force_ds_cpu_optimizer'"), std::string::npos) << notes;
}

TEST(DeepSpeedConfig, ExplicitValuesAndOptimizer) {
  const auto settings = parse_deepspeed_config(R"({
    "train_batch_size": 16, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 4,
    "gradient_clipping": 0.5,
    "zero_optimization": {"stage": 1, "reduce_bucket_size": 5e7, "contiguous_gradients": true},
    "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.05}}
  })", "ds.json", defaults_for_world(2));
  EXPECT_EQ(settings.zero.stage, 1);
  EXPECT_EQ(settings.zero.reduce_bucket_numel, 50'000'000);
  EXPECT_EQ(settings.zero.offload, OffloadDevice::none);
  EXPECT_DOUBLE_EQ(settings.lr, 3e-4);
  EXPECT_DOUBLE_EQ(settings.zero.beta2, 0.95);
  EXPECT_DOUBLE_EQ(settings.zero.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(settings.zero.gradient_clipping, 0.5);
}

TEST(DeepSpeedConfig, OffloadRatioKeepsPartOfTheStateOnTheDevice) {
  const auto settings = parse_deepspeed_config(R"({
    "zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "ratio": 0.3}}
  })", "ds.json", defaults_for_world(2));
  EXPECT_EQ(settings.zero.offload, OffloadDevice::cpu);
  EXPECT_DOUBLE_EQ(settings.zero.offload_ratio, 0.3);
  EXPECT_NE(settings.zero.describe().find("ratio 0.3"), std::string::npos) << settings.zero.describe();
  EXPECT_NE(error_of(R"({"zero_optimization": {"offload_optimizer": {"device": "cpu", "ratio": 0}}})").find("ratio"),
            std::string::npos);
}

TEST(DeepSpeedConfig, UnknownKeysAreNamedWithTheirPath) {
  const std::string message = error_of(R"({"zero_optimization": {"stage": 2, "reduce_bucket_sise": 5e8}, "gradient_clip": 1})");
  EXPECT_NE(message.find("'zero_optimization.reduce_bucket_sise'"), std::string::npos) << message;
  EXPECT_NE(message.find("ds.json"), std::string::npos) << message;
}

TEST(DeepSpeedConfig, UnsupportedFeaturesAreRefusedByName) {
  EXPECT_NE(error_of(R"({"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}})")
                .find("'zero_optimization.offload_param' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"zero_optimization": {"stage": 3}})").find("stage 3"), std::string::npos);
  EXPECT_NE(error_of(R"({"fp16": {"enabled": true}})").find("'fp16.enabled'"), std::string::npos);
  EXPECT_NE(error_of(R"({"zero_optimization": {"offload_optimizer": {"device": "nvme"}}})").find("nvme"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"optimizer": {"type": "Lamb"}})").find("AdamW only"), std::string::npos);
  EXPECT_NE(error_of(R"({"scheduler": {"type": "WarmupLR"}})").find("'scheduler'"), std::string::npos);
}

TEST(DeepSpeedConfig, BadValuesNameTheKey) {
  EXPECT_NE(error_of(R"({"gradient_clipping": "one"})").find("'gradient_clipping'"), std::string::npos);
  EXPECT_NE(error_of(R"({"train_batch_size": 7, "train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 2})",
                     defaults_for_world(4))
                .find("'train_batch_size' = 7"),
            std::string::npos);
  EXPECT_NE(error_of("{not json").find("not valid JSON"), std::string::npos);
}

}  // namespace
