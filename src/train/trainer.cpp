#include "vesseltune/train/trainer.h"

#include <ATen/record_function.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>

#include "trainer_impl.h"
#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/perf/benchmark_observer.h"
#include "vesseltune/perf/memory_use.h"
#include "vesseltune/train/stop_request.h"

namespace vesseltune::train {
namespace detail {
namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

TrainingSummary Trainer::run() {
  TrainingSummary summary;
  summary.first_step = state_.step;
  if (val_loader_ && state_.step == 0) {
    const ValidationResult initial = run_validation();
    summary.initial_dice = initial.dice_fov;
    record_validation(initial);
  }
  train_loader_->start(state_.sampler);
  while (state_.step < state_.schedule.total_steps) {
    const StepOutcome step = train_step();
    record_step(step);
    const bool stop = step.signalled || step.by_file || state_.step == options_.stop_at_step;
    const bool observed_all = observer_->ends_run(state_.step);
    const bool last = state_.step == state_.schedule.total_steps || stop || observed_all;
    log_progress(step, last);
    // A stop saves at once (preemption leaves little time); validation waits for the resumed run.
    state_.val_dice = -1;
    if (observed_all) break;
    const int64_t val_interval = config_.train.val_interval;
    if (val_loader_ && ((val_interval > 0 && state_.step % val_interval == 0) ||
                        state_.step == state_.schedule.total_steps)) {
      record_validation(run_validation());
    }
    if (!benchmark() && (state_.step % config_.train.save_steps == 0 || last)) save();
    if (stop) {
      summary.stopped = true;
      report_stop(step);
      break;
    }
  }
  return benchmark() ? finish_benchmark(summary) : finish(summary);
}

// Every generator reseeded, ACCUMULATION micro-batches forward and backward, the optimizer step, and one
// all-reduce of the statistics.
StepOutcome Trainer::train_step() {
  observer_->step_begins(state_.step);
  const auto step_start = Clock::now();
  comm_->set_phase("step " + std::to_string(state_.step + 1));
  fault::point("step", world_.rank);
  seed_step(config_.train.seed, state_.step, world_.rank);
  StepOutcome step;
  step.lr = state_.schedule.lr_at(state_.step);

  MicroStepSums sums;
  sums.losses = at::zeros({4}, at::TensorOptions(device_).dtype(at::kDouble));
  for (int64_t micro = 0; micro < config_.train.accumulation; ++micro) {
    forward_backward(micro == config_.train.accumulation - 1, sums);
  }
  const auto optimizer_start = Clock::now();
  step.result = [&] {
    RECORD_USER_SCOPE("vesseltune::optimizer");
    return optimizer_->step(step.lr);
  }();
  step.optimizer_seconds = seconds_since(optimizer_start);
  ++state_.step;

  share_step_statistics(sums, step);
  step.times = {sums.data_seconds, seconds_since(step_start), sums.samples, sums.tokens};
  step.compute_seconds = sums.compute_seconds;
  observer_->step_ends(state_.step, step.times, step.result, *optimizer_);
  return step;
}

// The next micro-batch of this rank, starting the next epoch when this rank's part of the current one is done
// (at the same step on every rank).
data::Batch Trainer::next_batch() {
  std::optional<data::Batch> batch = train_loader_->next();
  while (!batch) {
    state_.sampler = {state_.sampler.epoch + 1, 0};
    train_loader_->start(state_.sampler);
    batch = train_loader_->next();
  }
  return std::move(*batch);
}

// Host wall-clock phases: on a GPU, compute is the time to issue the work, unless something waits on it.
void Trainer::forward_backward(bool last_micro_step, MicroStepSums& sums) {
  const auto wait_start = Clock::now();
  const data::Batch batch = next_batch();
  const auto compute_start = Clock::now();
  sums.data_seconds += std::chrono::duration<double>(compute_start - wait_start).count();
  optimizer_->begin_micro_step(last_micro_step);
  observer_->micro_step_begins();
  const setup::EncodedBatch encoded = [&] {
    RECORD_USER_SCOPE("vesseltune::inputs");
    return encoder_->encode(batch, device_, dtype_, true);
  }();
  const model::Sa2VAStepOutput out = model_->forward(encoded.inputs);
  observer_->forward_done();
  {
    RECORD_USER_SCOPE("vesseltune::backward");  // named in profiles (--profile)
    (out.total / static_cast<double>(config_.train.accumulation)).backward();
  }
  observer_->backward_done(batch, encoded);
  sums.losses += at::stack({out.loss_mask, out.loss_dice, out.loss_cldice, out.llm_loss}).detach().to(at::kDouble);
  state_.sampler = batch.position;
  sums.samples += batch.size();
  sums.tokens += encoded.tokens;
  sums.compute_seconds += seconds_since(compute_start);
}

// One all-reduce per step: the losses for the log, and whether any rank was asked to stop (a signal, or the stop
// file that rank 0 looks for: launchers differ in which signals they forward, a file works everywhere).
void Trainer::share_step_statistics(const MicroStepSums& sums, StepOutcome& step) {
  const bool stop_file = world_.rank == 0 && fs::exists(stop_file_);
  const at::Tensor requests = at::tensor({static_cast<double>(stop_signal()), stop_file ? 1.0 : 0.0}, at::kDouble);
  at::Tensor shared = at::cat({sums.losses / static_cast<double>(config_.train.accumulation), requests.to(device_)});
  comm_->all_reduce(shared, "step statistics")->synchronize();
  const at::Tensor totals = shared.cpu() / static_cast<double>(world_.size);
  const double* v = totals.data_ptr<double>();
  for (size_t i = 0; i < step.losses.size(); ++i) step.losses[i] = v[i];
  step.signalled = v[4] > 0;
  step.by_file = v[5] > 0;
}

// The non-finite counter, the metrics row, and the end of a run whose gradients stay non-finite.
void Trainer::record_step(const StepOutcome& step) {
  state_.consecutive_nonfinite = step.result.applied ? 0 : state_.consecutive_nonfinite + 1;
  if (!step.result.applied) {
    VT_LOG(warning) << "iter " << state_.step << ": non-finite gradient (loss " << step.total()
                    << "), step skipped; " << state_.consecutive_nonfinite << " in a row";
  }
  if (metrics_) {
    const double seconds = step.times.step_seconds;
    const double epoch = static_cast<double>(state_.sampler.epoch) +
                         static_cast<double>(state_.sampler.consumed) /
                             static_cast<double>(train_loader_->sampler().epoch_length());
    metrics_->append("train", {{"step", static_cast<double>(state_.step)},
                               {"epoch", epoch},
                               {"loss_mask", step.losses[0]},
                               {"loss_dice", step.losses[1]},
                               {"loss_cldice", step.losses[2]},
                               {"llm_loss", step.losses[3]},
                               {"total", step.total()},
                               {"lr", step.lr},
                               {"grad_norm", step.result.grad_norm},
                               {"step_time_s", seconds},
                               {"data_wait_s", step.times.data_seconds},
                               {"compute_s", step.compute_seconds},
                               {"optimizer_s", step.optimizer_seconds},
                               {"samples_per_s", static_cast<double>(step.times.samples * world_.size) / seconds},
                               {"tokens_per_s", static_cast<double>(step.times.tokens * world_.size) / seconds},
                               {"gpu_mem_gib", perf::device_peak_allocated_gib(device_)},
                               {"host_mem_gib", perf::resident_host_gib()},
                               {"skipped_steps", static_cast<double>(optimizer_->skipped_steps())}});
  }
  // After the metrics row, so that the file shows the steps that ended the run.
  VT_CHECK(state_.consecutive_nonfinite < config_.train.max_nonfinite_steps, state_.consecutive_nonfinite,
           " optimizer steps in a row had non-finite gradients (train.max_nonfinite_steps = ",
           config_.train.max_nonfinite_steps, "); the last good checkpoint is ", last_checkpoint_.string());
}

// Every log_interval steps, and at the last step of the run (FORCE).
void Trainer::log_progress(const StepOutcome& step, bool force) {
  progress_.add({step.losses, step.result.grad_norm, step.times.step_seconds, step.times.data_seconds,
                 step.compute_seconds, step.optimizer_seconds, step.times.samples * world_.size,
                 step.times.tokens * world_.size});
  if (state_.step % config_.train.log_interval != 0 && !force) return;
  RunPosition at;
  at.step = state_.step;
  at.total_steps = state_.schedule.total_steps;
  at.epoch = state_.sampler.epoch;
  at.lr = step.lr;
  at.device_gib = device_.is_cuda() ? perf::device_peak_allocated_gib(device_) : -1;
  at.host_gib = perf::resident_host_gib();
  at.cldice = config_.loss.cldice_weight > 0;
  VT_LOG(info) << progress_.line(at);
}

void Trainer::report_stop(const StepOutcome& step) const {
  const std::string cause = stop_signal()    ? "signal " + std::to_string(stop_signal())
                            : step.signalled ? "a signal on another rank"
                            : step.by_file   ? "file " + stop_file_.string()
                                             : "stop_at_step";
  if (step.by_file && world_.rank == 0) std::remove(stop_file_.c_str());  // so that the resumed run goes on
  VT_LOG(info) << "stop requested (" << cause << ") at iter " << state_.step
               << ": checkpoint saved; continue with --resume auto";
}

ValidationResult Trainer::run_validation() {
  const auto start = Clock::now();
  optimizer_->finish_delayed_update();  // validate the model of every step taken
  seed_step(config_.train.seed, state_.step, world_.rank);
  const ValidationResult v = validate(model_, *val_loader_, *encoder_, device_, dtype_, *comm_);
  last_validated_step_ = state_.step;
  VT_LOG(info) << "val: iter: " << state_.step << ", dice_fov: " << v.dice_fov << ", dice_full: " << v.dice_full
               << ", loss_mask: " << v.loss_mask << ", loss_dice: " << v.loss_dice << ", images: " << v.samples
               << ", time: " << std::chrono::duration<double>(Clock::now() - start).count() << " s";
  return v;
}

void Trainer::record_validation(const ValidationResult& v) {
  state_.val_dice = v.dice_fov;
  if (v.dice_fov > state_.best_dice) {
    state_.best_dice = v.dice_fov;
    state_.best_step = state_.step;
  }
  VT_LOG(info) << "val: best dice_fov " << state_.best_dice << " at iter " << state_.best_step;
  if (metrics_) {
    metrics_->append("validation", {{"step", static_cast<double>(state_.step)},
                                    {"dice_fov", v.dice_fov},
                                    {"dice_full", v.dice_full},
                                    {"best_dice_fov", state_.best_dice},
                                    {"loss_mask", v.loss_mask},
                                    {"loss_dice", v.loss_dice},
                                    {"samples", static_cast<double>(v.samples)}});
  }
}

// WORK_DIR/run_status.json, for job scripts (requeue a stopped run, not a finished one) and users.
void Trainer::write_run_status(bool stopped) const {
  if (world_.rank != 0) return;
  const fs::path path = fs::path(config_.runtime.work_dir) / "run_status.json";
  const nlohmann::json status = {{"state", stopped ? "stopped" : "finished"},
                                 {"step", state_.step},
                                 {"total_steps", state_.schedule.total_steps},
                                 {"checkpoint", last_checkpoint_.string()}};
  write_text_file_atomically(path.string(), status.dump(2) + "\n");
}

fs::path Trainer::save() {
  const auto start = Clock::now();
  optimizer_->finish_delayed_update();  // the checkpoint holds every step taken
  last_checkpoint_ = store_->save(state_, config_.to_yaml(), *optimizer_);
  last_saved_step_ = state_.step;
  VT_LOG(info) << "saved checkpoint " << last_checkpoint_.string() << " ("
               << std::chrono::duration<double>(Clock::now() - start).count() << " s)";
  return last_checkpoint_;
}

TrainingSummary Trainer::finish(TrainingSummary summary) {
  optimizer_->finish_delayed_update();
  // A run resumed from its last step has nothing left to do but what it may have missed.
  if (!summary.stopped && val_loader_ && last_validated_step_ != state_.step) record_validation(run_validation());
  if (last_saved_step_ != state_.step) save();

  write_run_status(summary.stopped);
  summary.last_step = state_.step;
  summary.final_dice = state_.val_dice;
  summary.last_checkpoint = last_checkpoint_;
  summary.metrics_file = work_dir_ / "metrics.h5";
  VT_LOG(info) << "done: iter " << state_.step << " of " << state_.schedule.total_steps << ", "
               << optimizer_->skipped_steps() << " skipped; best dice_fov " << state_.best_dice << " at iter "
               << state_.best_step;
  VT_LOG(info) << "checkpoints: " << store_->directory().string();
  VT_LOG(info) << "metrics: " << summary.metrics_file.string() << " (plots: vesseltune-report "
               << summary.metrics_file.string() << ")";
  VT_LOG(info) << "log: " << (work_dir_ / "train.log").string();
  return summary;
}

TrainingSummary Trainer::finish_benchmark(TrainingSummary summary) {
  perf::BenchmarkSetup setup;
  setup.model = config_.model.config_json.empty() ? config_.model.preset : config_.model.config_json;
  setup.offload = optim::to_string(config_.zero_config().offload);
  setup.micro_batch = config_.train.micro_batch;
  setup.accumulation = config_.train.accumulation;
  setup.warmup_steps = options_.benchmark_warmup;
  setup.peak_tflops = options_.peak_tflops;
  auto& benchmark = static_cast<perf::BenchmarkObserver&>(*observer_);
  const perf::BenchmarkResult result =
      benchmark.finish(setup, shapes_, *comm_, (work_dir_ / "profile_rank0.json").string());
  VT_LOG(info) << result.table;
  summary.benchmark_json = result.json;
  summary.last_step = state_.step;
  return summary;
}

}  // namespace detail

TrainingSummary run_training(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world) {
  detail::Trainer trainer(config, options, world);
  return trainer.run();
}

}  // namespace vesseltune::train
