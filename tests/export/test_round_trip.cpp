// vesseltune-export on a real checkpoint: the tiny model trained for 3 steps in-process (on a base checkpoint that
// stores the LLM in bf16, the rest in fp32, plus a SAM2 memory-module tensor the model lacks), exported both ways.
//   merged (fp32, sharded) → load_merged_model gives the checkpoint model's mask logits and losses, which differ
//     clearly from the untrained model's; one merged weight is W + alpha/r · B·A of the checkpoint's adapter;
//   merged (default dtypes) → every base tensor under its name and in its dtype, the memory module copied;
//   merged with the run's model.config_json → that config.json verbatim, with the Python code beside it;
//   peft → the base + load_peft_adapter + trained_modules.safetensors gives the checkpoint model's outputs;
//   bad input (another LoRA rank, a truncated or missing checkpoint, an existing output) → an error naming the file
//     and tensor, and the output folder as it was.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>

#include "error_message.h"
#include "test_support.h"
#include "vesseltune/comm/world.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/data/packer.h"
#include "vesseltune/data/synth.h"
#include "vesseltune/export/export_checkpoint.h"
#include "vesseltune/export/merged_weights.h"
#include "vesseltune/export/trained_modules.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/peft_adapter.h"
#include "vesseltune/setup/trained_model.h"
#include "vesseltune/train/trainer.h"

namespace vesseltune::exporting {
namespace {

namespace fs = std::filesystem;
using model::testing::close;
using testing_support::error_message;

struct Outputs {
  at::Tensor mask_logits;
  double losses[4];  // loss_mask, loss_dice, llm_loss, total
};

class ExportRoundTrip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const comm::World world = comm::World::of(MPI_COMM_WORLD);
    ASSERT_EQ(world.size, 1) << "one process: the export is not collective";
    root_ = fs::temp_directory_path() / ("vt_export_" + std::to_string(::getpid()));
    remove_tree(root_.string());
    data::PackOptions pack;
    pack.threads = 1;
    pack.val_fraction = 0.3;
    data::SynthOptions synth;
    synth.count = 10;
    synth.size = 64;
    data::pack_synthetic(synth, root_ / "data", pack);

    base_ = (root_ / "base.safetensors").string();
    {
      const setup::TrainedModel seed_model = setup::build_untrained_model(config(root_ / "seed", false), at::kCPU, at::kFloat);
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      auto add = [&](const std::string& name, const at::Tensor& tensor) {
        if (is_adapter_tensor(name)) return;
        tensors.emplace_back(name, name.rfind("language_model.", 0) == 0 ? tensor.to(at::kBFloat16) : tensor);
      };
      for (const auto& item : seed_model.model->named_parameters()) add(item.key(), item.value());
      for (const auto& item : seed_model.model->named_buffers()) add(item.key(), item.value());
      tensors.emplace_back(kMemoryTensor, torch::randn({7, 1, 1, 32}));
      io::save_safetensors(base_, tensors);
    }
    checkpoint_ = train::run_training(config(root_ / "run", true), {}, world).last_checkpoint.string();

    setup::TrainedModel trained = setup::load_trained_model(checkpoint_, {}, at::kCPU, at::kFloat);
    setup::TrainConfig two = trained.config;
    two.train.micro_batch = 2;
    data::DataLoader loader(std::make_shared<const data::PackedDataset>(two.data.path, two.data.val_split),
                            train::val_loader_options(two, trained.shapes, world));
    loader.start({0, 0});
    batch_ = loader.next();
    ASSERT_TRUE(batch_.has_value());
    ASSERT_EQ(batch_->size(), 2);
    reference_ = forward(trained);
    for (const char* part : {".weight", ".lora_A.weight", ".lora_B.weight"}) {
      adapted_[part] = trained.model->named_parameters()[std::string(kAdapted) + part].detach().clone();
    }
  }
  static void TearDownTestSuite() { remove_tree(root_.string()); }

  // The tiny run: 3 steps of 2 micro-batches of one sample, on the base (or without it: the seed's weights).
  static setup::TrainConfig config(const fs::path& work_dir, bool on_base) {
    std::vector<std::string> overrides = {
        "data.path=" + (root_ / "data").string(), "runtime.work_dir=" + work_dir.string(),
        "model.tokenizer=" + std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny/tokenizer.json",
        "model.sam2_image_size=128", "train.max_steps=3", "train.micro_batch=1", "train.accumulation=2",
        "train.save_steps=3", "train.val_interval=0", "train.log_interval=1", "train.warmup_ratio=0",
        "data.workers=1"};
    if (on_base) overrides.push_back("model.weights=" + base_);
    return setup::TrainConfig::load(std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny_vessel.yaml", overrides);
  }

  // The model's outputs on the suite's batch, encoded by the model's own encoder (its own tokenizer file).
  static Outputs forward(const setup::TrainedModel& trained) {
    torch::NoGradGuard no_grad;
    model::Sa2VAModel net = trained.model;  // the same module; its holder lets forward() change state
    net->eval();
    torch::manual_seed(0);
    const model::Sa2VAStepOutput out = net->forward(trained.encoder->encode(*batch_, at::kCPU, at::kFloat, false).inputs);
    return {out.mask_logits, {out.loss_mask.item<double>(), out.loss_dice.item<double>(), out.llm_loss.item<double>(),
                              out.total.item<double>()}};
  }

  static void expect_reference_outputs(const Outputs& actual, double rel) {
    EXPECT_TRUE(close(actual.mask_logits, reference_.mask_logits, rel));
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(actual.losses[i], reference_.losses[i], rel * std::max(1.0, std::abs(reference_.losses[i]))) << i;
    }
  }

  static ExportOptions options(const std::string& out) {
    ExportOptions o;
    o.checkpoint = checkpoint_;
    o.out = (root_ / out).string();
    return o;
  }

  static std::vector<std::string> listing(const fs::path& folder) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  static constexpr const char* kMemoryTensor = "grounding_encoder.sam2_model.maskmem_tpos_enc";
  static constexpr const char* kAdapted = "language_model.model.layers.0.self_attn.q_proj";
  static inline fs::path root_;
  static inline std::string base_;
  static inline std::string checkpoint_;
  static inline std::optional<data::Batch> batch_;
  static inline Outputs reference_;
  static inline std::map<std::string, at::Tensor> adapted_;  // the checkpoint model's W, A, B of kAdapted
};

TEST_F(ExportRoundTrip, MergedWeightsGiveTheCheckpointModelsOutputs) {
  ExportOptions o = options("merged_fp32");
  o.dtype = at::kFloat;
  o.max_shard_bytes = 1'000'000;
  const ExportSummary summary = export_checkpoint(o);
  EXPECT_EQ(summary.checkpoint, checkpoint_);
  EXPECT_EQ(summary.step, 3);
  EXPECT_EQ(summary.files, listing(o.out));
  EXPECT_FALSE(fs::exists(o.out + ".tmp"));
  for (const char* file : {"config.json", "tokenizer.json", "vesseltune_config.yaml", "model.safetensors.index.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(o.out) / file)) << file;
  }
  const auto shards = std::count_if(summary.files.begin(), summary.files.end(),
                                    [](const std::string& f) { return f.rfind("model-", 0) == 0; });
  EXPECT_GE(shards, 2);
  EXPECT_EQ(summary.files.size(), 4u + shards);

  // The merge itself: W + 16/8 · B·A of the checkpoint's adapter, in double.
  const at::Tensor delta = 2.0 * adapted_[".lora_B.weight"].to(at::kDouble).mm(adapted_[".lora_A.weight"].to(at::kDouble));
  ASSERT_GT(delta.abs().max().item<double>(), 1e-4) << "training left the adapter at zero: nothing to merge";
  const io::Checkpoint written(o.out);
  EXPECT_TRUE(close(written.tensor(std::string(kAdapted) + ".weight"), adapted_[".weight"].to(at::kDouble) + delta, 1e-6));
  EXPECT_FALSE(written.contains(std::string(kAdapted) + ".lora_A.weight"));
  EXPECT_EQ(summary.tensors, static_cast<int64_t>(written.tensors().size()));

  const setup::TrainedModel merged = setup::load_merged_model(o.out, {}, at::kCPU, at::kFloat);
  expect_reference_outputs(forward(merged), 1e-4);
  // ... and those are not the untrained model's.
  const Outputs untrained = forward(setup::build_untrained_model(config(root_ / "run", true), at::kCPU, at::kFloat));
  EXPECT_FALSE(close(untrained.mask_logits, reference_.mask_logits, 1e-2));
}

TEST_F(ExportRoundTrip, MergedWeightsKeepTheBaseDtypesAndWhatTheModelLacks) {
  const ExportOptions o = options("merged_base_dtypes");
  export_checkpoint(o);
  const io::Checkpoint base(base_), written(o.out);
  ASSERT_EQ(written.tensors().size(), base.tensors().size());
  for (const io::TensorInfo& info : base.tensors()) {
    ASSERT_TRUE(written.contains(info.name)) << info.name;
    EXPECT_EQ(written.view(info.name).scalar_type(), info.dtype) << info.name;
    EXPECT_EQ(written.view(info.name).sizes().vec(), info.shape) << info.name;
  }
  EXPECT_TRUE(torch::equal(written.tensor(kMemoryTensor), base.tensor(kMemoryTensor)));
  EXPECT_EQ(written.view("language_model.lm_head.weight").scalar_type(), at::kBFloat16);
  EXPECT_EQ(written.view("mlp1.1.weight").scalar_type(), at::kFloat);
  const model::Sa2VAConfig config = model::Sa2VAConfig::from_json_file(o.out);
  EXPECT_EQ(config.llm.vocab_size, 2048);
  EXPECT_EQ(config.llm.hidden_size, 256);
  EXPECT_EQ(config.vision.hidden_size, 64);
  EXPECT_EQ(config.max_dynamic_patch, 1);  // the run's data.max_tiles
  EXPECT_NO_THROW(setup::load_merged_model(o.out, {}, at::kCPU, at::kFloat));
}

TEST_F(ExportRoundTrip, ARealCheckpointsConfigJsonIsCopiedVerbatimWithItsRemoteCode) {
  // The run's model.config_json now names a released model's folder: config.json (with a key vesseltune does not
  // know) and Sa2VA's Python code.
  const fs::path released = root_ / "released";
  fs::create_directories(released);
  const std::string config_text =
      "{\"use_vesseltune\": false, " + model::Sa2VAConfig::preset("tiny").to_json("bfloat16").substr(1);
  std::ofstream(released / "config.json") << config_text;
  std::ofstream(released / "modeling_sa2va_chat.py") << "class Sa2VAChatModel: pass\n";
  ExportOptions o = options("merged_config_json");
  o.overrides = {"model.config_json=" + released.string()};
  const ExportSummary summary = export_checkpoint(o);
  std::ifstream in(fs::path(o.out) / "config.json");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), config_text);
  EXPECT_TRUE(std::count(summary.files.begin(), summary.files.end(), "modeling_sa2va_chat.py"));
  EXPECT_NO_THROW(setup::load_merged_model(o.out, {}, at::kCPU, at::kFloat));
}

TEST_F(ExportRoundTrip, PeftAdapterAndTrainedModulesOnTheBaseGiveTheCheckpointModelsOutputs) {
  ExportOptions o = options("peft");
  o.format = ExportFormat::peft;
  o.dtype = at::kFloat;
  const ExportSummary summary = export_checkpoint(o);
  EXPECT_EQ(summary.files, (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors",
                                                      "trained_modules.safetensors", "vesseltune_config.yaml"}));
  std::ifstream in(fs::path(o.out) / "adapter_config.json");
  EXPECT_EQ(nlohmann::json::parse(in).at("base_model_name_or_path"), base_);

  // Sa2VA's fully trained modules plus the run's model.extra_trainable, and nothing else.
  const io::SafetensorsFile modules((fs::path(o.out) / kTrainedModulesFile).string());
  const std::vector<std::string> prefixes = {"language_model.model.embed_tokens.", "language_model.lm_head.", "mlp1.",
                                             "text_hidden_fcs.", "grounding_encoder.sam2_model.sam_mask_decoder.",
                                             "grounding_encoder.sam2_model.image_encoder."};
  for (const io::TensorInfo& info : modules.tensors()) {
    EXPECT_TRUE(std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return info.name.rfind(p, 0) == 0; }))
        << info.name;
  }

  setup::TrainedModel rebuilt =
      setup::build_untrained_model(setup::TrainConfig::load((fs::path(o.out) / "vesseltune_config.yaml").string()),
                                   at::kCPU, at::kFloat);
  size_t expected_modules = 0;
  for (const auto& item : rebuilt.model->named_parameters()) {
    expected_modules += std::any_of(prefixes.begin(), prefixes.end(),
                                    [&](const std::string& p) { return item.key().rfind(p, 0) == 0; });
  }
  EXPECT_EQ(modules.tensors().size(), expected_modules);
  model::load_peft_adapter(*rebuilt.model, o.out);
  io::LoadOptions partial;
  partial.strict = false;  // the trained modules only, as Python's load_state_dict(strict=False)
  const io::LoadReport report = io::load_into(*rebuilt.model, io::Checkpoint(modules.path()), partial);
  EXPECT_TRUE(report.unexpected.empty() && report.mismatched.empty()) << report.describe();
  EXPECT_EQ(report.loaded.size(), expected_modules);
  expect_reference_outputs(forward(rebuilt), 1e-6);
}

TEST_F(ExportRoundTrip, AnotherLoraRankOrTrainableSetIsRefusedNamingTheCheckpointAndATensor) {
  ExportOptions o = options("rank4");
  o.overrides = {"model.lora.r=4"};
  const std::string message = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(message.find(checkpoint_ + ": trained tensor 'language_model."), std::string::npos) << message;
  EXPECT_NE(message.find(".lora_A.weight' is [8, 256] in the checkpoint but [4, 256] in this model"), std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(o.out));
  EXPECT_FALSE(fs::exists(o.out + ".tmp"));

  // A module trained now that the run did not train: its weights are not in the checkpoint.
  o.overrides = {"model.extra_trainable=grounding_encoder.sam2_model.image_encoder,grounding_encoder.sam2_model.sam_prompt_encoder"};
  const std::string untrained = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(untrained.find(checkpoint_ + ": trainable parameter 'grounding_encoder.sam2_model.sam_prompt_encoder."),
            std::string::npos) << untrained;
  EXPECT_NE(untrained.find("' of this model is not in the checkpoint"), std::string::npos) << untrained;
}

TEST_F(ExportRoundTrip, NonFiniteWeightsAreRefusedNamingTheTensor) {
  // The base with one NaN in a frozen tensor: training never touched it, the export must not ship it.
  const std::string damaged = (root_ / "base_with_nan.safetensors").string();
  const char* frozen = "vision_model.embeddings.class_embedding";
  {
    const io::Checkpoint base(base_);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& info : base.tensors()) tensors.emplace_back(info.name, base.tensor(info.name));
    for (auto& named : tensors) {
      if (named.first == frozen) named.second.view({-1})[3] = std::numeric_limits<float>::quiet_NaN();
    }
    io::save_safetensors(damaged, tensors);
  }
  ExportOptions o = options("from_nan");
  o.overrides = {"model.weights=" + damaged};
  const std::string message = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(message.find(checkpoint_ + ": tensor '" + std::string(frozen) + "' holds 1 non-finite value(s); nothing exported"),
            std::string::npos) << message;
  EXPECT_FALSE(fs::exists(o.out));
}

TEST_F(ExportRoundTrip, ATruncatedOrMissingCheckpointIsRefusedNamingIt) {
  const fs::path cut = root_ / "cut" / "step_00000003.h5";
  fs::create_directories(cut.parent_path());
  {
    std::ifstream in(checkpoint_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  ExportOptions o = options("from_cut");
  o.checkpoint = cut.string();
  std::string message = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(message.find(cut.string()), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(o.out));

  o.checkpoint = (root_ / "nowhere" / "step_00000003.h5").string();
  message = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(message.find("no checkpoint at '" + o.checkpoint + "'"), std::string::npos) << message;
}

TEST_F(ExportRoundTrip, AnExistingOutputIsRefusedUnlessOverwrittenAndALeftoverIsReplaced) {
  ExportOptions o = options("existing");
  fs::create_directories(o.out);
  std::ofstream(fs::path(o.out) / "mine.txt") << "keep me";
  const std::string message = error_message([&] { export_checkpoint(o); });
  EXPECT_NE(message.find("output folder '" + o.out + "' exists already"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(fs::path(o.out) / "mine.txt"));

  // A crashed export's OUT.tmp, then --overwrite: the new folder alone.
  fs::create_directories(o.out + ".tmp");
  std::ofstream(fs::path(o.out + ".tmp") / "model.safetensors") << "half a file";
  o.overwrite = true;
  o.format = ExportFormat::peft;
  export_checkpoint(o);
  EXPECT_EQ(listing(o.out), (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors",
                                                      "trained_modules.safetensors", "vesseltune_config.yaml"}));
  EXPECT_FALSE(fs::exists(o.out + ".tmp"));
}

}  // namespace
}  // namespace vesseltune::exporting
