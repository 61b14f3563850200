// vesseltune-train's loop on the tiny model and a small synthetic set, under mpirun -np 2: the logged losses are
// the model's, the loss goes down, a stopped and resumed run logs exactly the losses of one that never stopped,
// resuming at another world size continues where the data stood, and a damaged newest checkpoint is skipped.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "error_message.h"
#include "hdf5_damage.h"
#include "vesseltune/comm/world.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/data/packer.h"
#include "vesseltune/data/synth.h"
#include "vesseltune/io/metrics_file.h"
#include "vesseltune/text/tokenizer.h"
#include "vesseltune/setup/batch_encoder.h"
#include "vesseltune/checkpoint/checkpoint_store.h"
#include "vesseltune/train/trainer.h"

namespace vesseltune::train {
namespace {

namespace fs = std::filesystem;

comm::World world() { return comm::World::of(MPI_COMM_WORLD); }

class TrainerTest : public ::testing::Test {
 protected:
  // One small synthetic set and one uninterrupted 6-step run (checkpoints at 3 and 6) for every test.
  static void SetUpTestSuite() {
    int pid = ::getpid();
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    root_ = fs::temp_directory_path() / ("vt_trainer_" + std::to_string(pid));
    if (world().rank == 0) {
      remove_tree(root_.string());
      data::PackOptions pack;
      pack.threads = 1;
      pack.val_fraction = 0.2;
      data::SynthOptions synth;
      synth.count = 40;  // 32 for training: 8 steps per epoch at 2 ranks × 2 micro-batches
      synth.size = 64;
      data::pack_synthetic(synth, root_ / "data", pack);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    reference_ = run(config(root_ / "reference", 6), {});
    reference_rows_ = io::read_metrics((root_ / "reference" / "metrics.h5").string()).at("train");
  }
  static void TearDownTestSuite() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world().rank == 0) remove_tree(root_.string());
  }

  static setup::TrainConfig config(const fs::path& work_dir, int64_t steps, std::vector<std::string> extra = {}) {
    std::vector<std::string> overrides = {"data.path=" + (root_ / "data").string(),
                                          "runtime.work_dir=" + work_dir.string(),
                                          "model.tokenizer=" + std::string(VESSELTUNE_SOURCE_DIR) +
                                              "/configs/tiny/tokenizer.json",
                                          "model.sam2_image_size=128",
                                          "train.max_steps=" + std::to_string(steps),
                                          "train.micro_batch=1",
                                          "train.accumulation=2",
                                          "train.save_steps=3",
                                          "train.save_total_limit=3",
                                          "train.val_interval=0",
                                          "train.log_interval=1",
                                          "train.warmup_ratio=0",
                                          "loss.num_points=1024",
                                          "data.workers=1"};
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    return setup::TrainConfig::load(std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny_vessel.yaml", overrides);
  }
  static TrainingSummary run(const setup::TrainConfig& c, const RunOptions& options, const comm::World& w = world()) {
    return run_training(c, options, w);
  }
  static io::MetricsTable rows(const fs::path& work_dir) {
    return io::read_metrics((work_dir / "metrics.h5").string()).at("train");
  }
  // Rank 0 copies the reference run's checkpoints into a new work dir.
  static fs::path copy_reference(const std::string& name) {
    const fs::path dir = root_ / name;
    if (world().rank == 0) {
      fs::create_directories(dir / "checkpoints");
      for (const auto& entry : fs::directory_iterator(root_ / "reference" / "checkpoints")) {
        fs::copy_file(entry.path(), dir / "checkpoints" / entry.path().filename());
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return dir;
  }

  // The question-and-answer tokens (image tokens left out) of the first BATCHES micro-batches (one sample each)
  // that rank RANK of WORLD_SIZE ranks encodes for training from FROM on.
  static std::vector<std::vector<int64_t>> drawn_prompts(int rank, int world_size, data::SamplerPosition from,
                                                         int batches) {
    const setup::TrainConfig c = config(root_ / "prompts", 6);
    text::Tokenizer tokenizer = setup::run_tokenizer(c);
    const setup::ModelShapes shapes = setup::model_shapes(c, tokenizer);
    const setup::BatchEncoder encoder(std::move(tokenizer), shapes.sa2va,
                               setup::model_input_options(c, shapes), false);
    comm::World ranks;
    ranks.rank = rank;
    ranks.size = world_size;
    data::DataLoader loader(std::make_shared<const data::PackedDataset>(c.data.path, c.data.train_split),
                            train_loader_options(c, shapes, ranks));
    loader.start(from);
    std::vector<std::vector<int64_t>> prompts;
    for (int b = 0; b < batches; ++b) {
      const model::Sa2VAInputs inputs = encoder.encode(*loader.next(), at::kCPU, at::kFloat, true).inputs.inputs;
      const at::Tensor ids = inputs.input_ids[0];
      const at::Tensor text = ids.masked_select(inputs.attention_mask[0].to(at::kBool) &
                                                ids.ne(shapes.sa2va.image_context_token_id));
      prompts.emplace_back(text.data_ptr<int64_t>(), text.data_ptr<int64_t>() + text.numel());
    }
    return prompts;
  }

  static inline fs::path root_;
  static inline TrainingSummary reference_;
  static inline io::MetricsTable reference_rows_;
};

constexpr const char* kLosses[] = {"loss_mask", "loss_dice", "llm_loss", "total"};

TEST_F(TrainerTest, LoggedLossesAreTheModelsOnTheSameBatchesAveragedOverRanks) {
  // Rebuild step 1 by hand: same weights (from the seed), this rank's first two micro-batches, the step's seed.
  const setup::TrainConfig c = config(root_ / "reference", 6);
  text::Tokenizer tokenizer = setup::run_tokenizer(c);
  const setup::ModelShapes shapes = setup::model_shapes(c, tokenizer);
  setup::BatchEncoder encoder(std::move(tokenizer), shapes.sa2va, setup::model_input_options(c, shapes),
                       false);
  model::Sa2VAModel net = setup::build_model(shapes, c, at::kCPU, at::kFloat);
  data::DataLoader loader(std::make_shared<const data::PackedDataset>(c.data.path, c.data.train_split),
                          train_loader_options(c, shapes, world()));
  loader.start({0, 0});
  seed_step(c.train.seed, 0, world().rank);
  double sums[4] = {0, 0, 0, 0};
  for (int micro = 0; micro < 2; ++micro) {
    const model::Sa2VAStepOutput out = net->forward(encoder.encode(*loader.next(), at::kCPU, at::kFloat, true).inputs);
    const double values[4] = {out.loss_mask.item<double>(), out.loss_dice.item<double>(), out.llm_loss.item<double>(),
                              out.total.item<double>()};
    for (int i = 0; i < 4; ++i) sums[i] += values[i] / 2;  // the mean over the step's micro-batches
  }
  MPI_Allreduce(MPI_IN_PLACE, sums, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  for (int i = 0; i < 4; ++i) {
    const double expected = sums[i] / world().size;
    EXPECT_NEAR(reference_rows_.column(kLosses[i])[0], expected, 1e-5 * std::abs(expected)) << kLosses[i];
  }
  EXPECT_EQ(reference_rows_.column("step")[0], 1);
}

TEST_F(TrainerTest, RanksDrawTheirOwnPromptsAndAResumeDrawsTheSameOnes) {
  // 5 questions × 4 answers: eight equal draws on two ranks by chance is 20^-8; the same seed on every rank made it 1.
  const auto rank0 = drawn_prompts(0, 2, {0, 0}, 8), rank1 = drawn_prompts(1, 2, {0, 0}, 8);
  EXPECT_NE(rank0, rank1) << "both ranks drew the same prompt for every sample";
  // Resumed after 4 batches per rank (8 positions consumed by both ranks): the prompts of the run that went on.
  const auto resumed = drawn_prompts(0, 2, {0, 8}, 4);
  EXPECT_EQ(resumed, std::vector<std::vector<int64_t>>(rank0.begin() + 4, rank0.end()));
  // A sample's prompt follows its global position, whatever the world size: rank r's batch k holds position r + 2k.
  const auto alone = drawn_prompts(0, 1, {0, 0}, 8);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(alone[2 * k], rank0[k]) << "position " << 2 * k;
    EXPECT_EQ(alone[2 * k + 1], rank1[k]) << "position " << 2 * k + 1;
  }
}

TEST_F(TrainerTest, LossGoesDown) {
  const fs::path dir = root_ / "longer";
  const TrainingSummary summary = run(config(dir, 24, {"train.lr=3e-3"}), {});
  EXPECT_EQ(summary.last_step, 24);
  const io::MetricsTable t = rows(dir);
  ASSERT_EQ(t.rows(), 24);
  auto mean = [&](const char* column, int from, int to) {
    const auto& v = t.column(column);
    return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / (to - from);
  };
  EXPECT_LT(mean("total", 18, 24), 0.8 * mean("total", 0, 6));
  EXPECT_LT(mean("loss_mask", 18, 24), mean("loss_mask", 0, 6));
}

TEST_F(TrainerTest, ResumeAfterAStopLogsTheSameLossesAsTheRunThatNeverStopped) {
  const fs::path dir = root_ / "stopped";
  const TrainingSummary first = run(config(dir, 6), {"", 3});
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.last_step, 3);
  const TrainingSummary second = run(config(dir, 6), {"auto", 0});
  EXPECT_EQ(second.first_step, 3);
  EXPECT_EQ(second.last_step, 6);
  const io::MetricsTable t = rows(dir);
  ASSERT_EQ(t.rows(), 6);
  for (const char* column : {"loss_mask", "loss_dice", "llm_loss", "total", "grad_norm", "lr"}) {
    for (int64_t step = 0; step < 6; ++step) {
      EXPECT_EQ(t.column(column)[step], reference_rows_.column(column)[step]) << column << " at step " << step + 1;
    }
  }
}

TEST_F(TrainerTest, ResumeOnOneRankContinuesWhereTheDataStood) {
  const fs::path dir = copy_reference("one_rank");
  if (world().rank == 0) std::remove((dir / "checkpoints" / "step_00000006.h5").c_str());
  MPI_Barrier(MPI_COMM_WORLD);
  const comm::World one = world().subset(world().rank == 0);
  if (one.comm != MPI_COMM_NULL) {
    const TrainingSummary summary = run(config(dir, 6), {"auto", 0}, one);
    EXPECT_EQ(summary.first_step, 3);
    EXPECT_EQ(summary.last_step, 6);
    const checkpoint::TrainerState state = checkpoint::CheckpointStore::read_state(summary.last_checkpoint);
    // 3 steps × 2 ranks × 2 micro-batches, then 3 steps × 1 rank × 2.
    EXPECT_EQ(state.sampler.consumed, 3 * 2 * 2 + 3 * 1 * 2);
    EXPECT_EQ(state.world_size, 1);
    for (double v : rows(dir).column("total")) EXPECT_TRUE(std::isfinite(v));
    MPI_Comm comm = one.comm;  // subset() made it; the test frees it
    MPI_Comm_free(&comm);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_F(TrainerTest, DamagedNewestCheckpointsAreSkippedWithAWarning) {
  const fs::path dir = copy_reference("damaged");
  if (world().rank == 0) {
    // step 6: bytes flipped inside the checksummed optimizer state; step 9: a file cut short by a crash.
    std::fstream f(dir / "checkpoints" / "step_00000006.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir / "checkpoints" / "step_00000006.h5") / 2));
    const std::string garbage(64, '\x5a');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    f.close();
    std::ofstream(dir / "checkpoints" / "step_00000009.h5") << "HDF";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const TrainingSummary summary = run(config(dir, 6), {"auto", 0});
  EXPECT_EQ(summary.first_step, 3);
  EXPECT_EQ(summary.last_step, 6);
  // Steps 4..6 again, from the good checkpoint: the reference run's losses.
  const io::MetricsTable t = rows(dir);
  ASSERT_EQ(t.rows(), 3);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(t.column("total")[i], reference_rows_.column("total")[3 + i]);
  if (world().rank == 0) {
    std::ifstream log(dir / "train.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("skipping checkpoint " + (dir / "checkpoints" / "step_00000009.h5").string()), std::string::npos);
    EXPECT_NE(text.find("skipping checkpoint " + (dir / "checkpoints" / "step_00000006.h5").string()), std::string::npos);
  }
}

TEST_F(TrainerTest, EveryCheckpointDamagedStopsResumeAutoUnlessARestartIsAllowed) {
  const fs::path dir = copy_reference("all_damaged");
  const std::vector<std::string> names = {"step_00000003.h5", "step_00000006.h5"};
  if (world().rank == 0) {
    // step 3: cut short; step 6: a NaN in its last field, found after the other fields were read into the optimizer.
    std::ofstream(dir / "checkpoints" / names[0], std::ios::trunc) << "HDF";
    EXPECT_TRUE(testing_support::overwrite_value<float>((dir / "checkpoints" / names[1]).string(), "optimizer/exp_avg_sq", 0,
                                                 std::numeric_limits<float>::quiet_NaN()));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string message = testing_support::error_message([&] { run(config(dir, 6), {"auto", 0}); });
  EXPECT_NE(message.find("every checkpoint in " + (dir / "checkpoints").string() + " is damaged"), std::string::npos)
      << message;
  for (const std::string& name : names) {
    EXPECT_NE(message.find((dir / "checkpoints" / name).string() + ": "), std::string::npos) << name << ": " << message;
    EXPECT_TRUE(fs::exists(dir / "checkpoints" / name)) << "the refused resume changed " << name;
  }
  // Allowed: set aside, never pruned, and a run from step 0 (the reference run's losses).
  RunOptions restart{"auto", 0};
  restart.allow_restart = true;
  const TrainingSummary summary = run(config(dir, 6), restart);
  EXPECT_EQ(summary.first_step, 0);
  EXPECT_EQ(summary.last_step, 6);
  const io::MetricsTable t = rows(dir);  // every step: the optimizer started afresh, not from the half-read state
  ASSERT_EQ(t.rows(), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(t.column("total")[i], reference_rows_.column("total")[i]) << "step " << i + 1;
  for (const std::string& name : names) EXPECT_TRUE(fs::exists(dir / "checkpoints" / (name + ".damaged"))) << name;
}

TEST_F(TrainerTest, NonFiniteStepsAreSkippedAndEndTheRunAfterTheLimit) {
  // lr 1e30 blows the trainable weights up at step 1; from step 2 on the loss and gradients are not finite, every
  // rank skips the step (the weights stay as they are), and the second skip in a row ends the run on all ranks.
  const fs::path dir = root_ / "diverged";
  const std::string message = testing_support::error_message(
      [&] { run(config(dir, 10, {"train.lr=1e30", "train.max_nonfinite_steps=2"}), {}); });
  EXPECT_NE(message.find("2 optimizer steps in a row had non-finite gradients"), std::string::npos) << message;
  if (world().rank == 0) {
    const io::MetricsTable t = rows(dir);
    ASSERT_EQ(t.rows(), 3);
    EXPECT_EQ(t.column("skipped_steps")[0], 0);
    EXPECT_EQ(t.column("skipped_steps")[2], 2);
    EXPECT_FALSE(std::isfinite(t.column("grad_norm")[2]));
  }
}

TEST_F(TrainerTest, CheckpointsKeepTheNewestAndAreWorldSizeIndependent) {
  const checkpoint::CheckpointStore store(root_ / "reference" / "checkpoints", 3);
  ASSERT_EQ(store.list().size(), 2u);
  const checkpoint::TrainerState state = checkpoint::CheckpointStore::read_state(store.list().front());
  EXPECT_EQ(state.step, 6);
  EXPECT_EQ(state.sampler.consumed, 6 * 2 * 2);
  EXPECT_EQ(state.world_size, world().size);
  EXPECT_EQ(reference_.last_step, 6);
}

}  // namespace
}  // namespace vesseltune::train
