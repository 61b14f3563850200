#pragma once
// The training job's state and pieces on one rank (trainer.h's run_training). Private to src/train: built in
// trainer_setup.cpp, run in trainer.cpp.

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>

#include "vesseltune/checkpoint/checkpoint_store.h"
#include "vesseltune/comm/communicator.h"
#include "vesseltune/io/metrics_file.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/perf/step_observer.h"
#include "vesseltune/setup/batch_encoder.h"
#include "vesseltune/train/progress_log.h"
#include "vesseltune/train/trainer.h"
#include "vesseltune/train/validation.h"

namespace vesseltune::train::detail {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// What one optimizer step gave: the losses and stop requests averaged over ranks, the rest this rank's.
struct StepOutcome {
  std::array<double, 4> losses{};  // loss_mask, loss_dice, loss_cldice, llm_loss
  double lr = 0;
  optim::StepResult result;
  perf::StepTimes times;
  double compute_seconds = 0, optimizer_seconds = 0;
  bool signalled = false;  // a stop signal on some rank
  bool by_file = false;    // rank 0 found the stop file

  double total() const { return losses[0] + losses[1] + losses[2] + losses[3]; }
};

// The micro-steps of one optimizer step, summed on this rank.
struct MicroStepSums {
  at::Tensor losses;  // [4] double on the device, each micro-step's loss / accumulation
  int64_t samples = 0, tokens = 0;
  double data_seconds = 0, compute_seconds = 0;
};

// The training job's state and pieces on one rank.
class Trainer {
 public:
  Trainer(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world);
  TrainingSummary run();

 private:
  // Setting up (the constructor, in this order).
  void refuse_an_existing_run() const;
  void keep_tokenizer_copy();
  void build_model_and_data();
  void build_optimizer();
  void start_or_resume();
  void log_start() const;
  // One optimizer step and what follows it.
  StepOutcome train_step();
  data::Batch next_batch();
  void forward_backward(bool last_micro_step, MicroStepSums& sums);
  void share_step_statistics(const MicroStepSums& sums, StepOutcome& step);
  void record_step(const StepOutcome& step);
  void log_progress(const StepOutcome& step, bool force);
  void report_stop(const StepOutcome& step) const;
  // Validation, checkpoints and the end.
  bool benchmark() const { return options_.benchmark_steps > 0; }
  ValidationResult run_validation();
  void record_validation(const ValidationResult& v);
  fs::path save();
  void write_run_status(bool stopped) const;
  TrainingSummary finish(TrainingSummary summary);
  TrainingSummary finish_benchmark(TrainingSummary summary);

  setup::TrainConfig config_;
  RunOptions options_;
  const comm::World& world_;
  fs::path work_dir_;
  fs::path stop_file_;  // WORK_DIR/STOP: `touch` it to stop the run as a signal would
  std::unique_ptr<comm::Communicator> comm_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  setup::ModelShapes shapes_;
  std::unique_ptr<setup::BatchEncoder> encoder_;
  model::Sa2VAModel model_{nullptr};
  std::unique_ptr<data::DataLoader> train_loader_;
  std::unique_ptr<data::DataLoader> val_loader_;
  std::unique_ptr<optim::ZeroOptimizer> optimizer_;
  std::unique_ptr<checkpoint::CheckpointStore> store_;
  std::unique_ptr<io::MetricsFile> metrics_;  // rank 0
  std::unique_ptr<perf::StepObserver> observer_;
  ProgressLog progress_;
  checkpoint::TrainerState state_;
  int64_t steps_per_epoch_ = 0;
  int64_t last_validated_step_ = -1;
  int64_t last_saved_step_ = -1;
  fs::path last_checkpoint_;
};

}  // namespace vesseltune::train::detail
