#include "vesseltune/train/trainer.h"

#include <ATen/record_function.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/data/random.h"
#include "vesseltune/io/metrics_file.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/perf/benchmark_report.h"
#include "vesseltune/perf/op_profile.h"
#include "vesseltune/text/tokenizer.h"
#include "vesseltune/text/tokenizer_files.h"
#include "vesseltune/setup/batch_encoder.h"
#include "vesseltune/checkpoint/checkpoint_store.h"
#include "vesseltune/setup/model_setup.h"
#include "vesseltune/setup/trained_model.h"
#include "vesseltune/train/stop_request.h"
#include "vesseltune/train/validation.h"

namespace vesseltune::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double resident_host_gib() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / kGiB;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds));
  char text[32];
  std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  return text;
}

// Sums over the steps since the last log line (already averaged over ranks).
struct IntervalTotals {
  double loss_mask = 0, loss_dice = 0, loss_cldice = 0, llm_loss = 0, grad_norm = 0, seconds = 0;
  double data_seconds = 0, compute_seconds = 0, optimizer_seconds = 0;
  int64_t steps = 0, samples = 0, tokens = 0;
};

// The training job's state and pieces on one rank.
class Trainer {
 public:
  Trainer(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world);
  TrainingSummary run();

 private:
  void log_start() const;
  bool benchmark() const { return options_.benchmark_steps > 0; }
  ValidationResult run_validation();
  void record_validation(const ValidationResult& v);
  fs::path save();
  void write_run_status(bool stopped) const;

  setup::TrainConfig config_;
  RunOptions options_;
  const comm::World& world_;
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
  checkpoint::TrainerState state_;
  int64_t steps_per_epoch_ = 0;
  int64_t last_validated_step_ = -1;
  int64_t last_saved_step_ = -1;
  fs::path last_checkpoint_;
  fs::path stop_file_;  // WORK_DIR/STOP: `touch` it to stop the run as a signal would
};

Trainer::Trainer(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world)
    : config_(config.with_deepspeed(world.size)), options_(options), world_(world) {
  const fs::path work_dir(config_.runtime.work_dir);
  stop_file_ = work_dir / "STOP";
  // The run keeps its own copy of the tokenizer, which its checkpoints name: evaluation and export find it there
  // wherever the original has gone.
  const fs::path tokenizer_copy = work_dir / setup::kRunTokenizerFolder;
  if (world.rank == 0) {
    fs::create_directories(tokenizer_copy);
    text::copy_tokenizer_files(config_.model.tokenizer, tokenizer_copy.string());
  }
  MPI_Barrier(world.comm);
  config_.model.tokenizer = (tokenizer_copy / "tokenizer.json").string();
  log::init({world.rank, log::Severity::info, false, (work_dir / "train.log").string()});

  comm_ = comm::make_communicator(world, comm::parse_backend(config_.runtime.backend),
                                  std::chrono::milliseconds(static_cast<int64_t>(config_.runtime.collective_timeout_s * 1000)));
  device_ = comm_->device();
  dtype_ = setup::model_dtype(config_, device_);

  text::Tokenizer tokenizer = setup::run_tokenizer(config_);
  shapes_ = setup::model_shapes(config_, tokenizer);
  encoder_ = std::make_unique<setup::BatchEncoder>(std::move(tokenizer), shapes_.sa2va,
                                            setup::model_input_options(config_, shapes_), config_.loss.inside_fov);
  model_ = setup::build_model(shapes_, config_, device_, dtype_);
  model_->train();

  train_loader_ = std::make_unique<data::DataLoader>(
      std::make_shared<const data::PackedDataset>(config_.data.path, config_.data.train_split),
      train_loader_options(config_, shapes_, world));
  steps_per_epoch_ = train_loader_->batches_per_epoch() / config_.train.accumulation;
  VT_CHECK(steps_per_epoch_ >= 1, config_.data.path, ": the '", config_.data.train_split, "' split gives ",
           train_loader_->batches_per_epoch(), " micro-batches per rank and epoch, fewer than train.accumulation = ",
           config_.train.accumulation);

  auto val_set = std::make_shared<const data::PackedDataset>(config_.data.path, config_.data.val_split);
  if (benchmark()) {
    VT_LOG(info) << "benchmark mode: " << options_.benchmark_warmup << " warm-up + " << options_.benchmark_steps
                 << " measured steps, no validation, no checkpoints";
  } else if (val_set->size() > 0) {
    val_loader_ = std::make_unique<data::DataLoader>(val_set, val_loader_options(config_, shapes_, world));
  } else {
    VT_LOG(warning) << config_.data.path << " has no '" << config_.data.val_split << "' samples: no validation";
  }

  comm::Fingerprint identity;
  identity.add("config", config_.to_yaml());
  optim::ZeroConfig zero = config_.zero_config();
  zero.time_phases = benchmark();
  optimizer_ = std::make_unique<optim::ZeroOptimizer>(optim::trainable_parameters(*model_),
                                                      optim::default_param_groups(zero), zero, *comm_, identity);

  state_.seed = config_.train.seed;
  state_.world_size = world.size;
  state_.schedule.lr = config_.train.lr;
  state_.schedule.min_lr = config_.train.min_lr;
  state_.schedule.total_steps =
      config_.train.max_steps > 0 ? config_.train.max_steps : config_.train.epochs * steps_per_epoch_;
  state_.schedule.warmup_steps =
      static_cast<int64_t>(std::llround(config_.train.warmup_ratio * static_cast<double>(state_.schedule.total_steps)));
  store_ = std::make_unique<checkpoint::CheckpointStore>(work_dir / "checkpoints", config_.train.save_total_limit);
  log_start();

  if (options_.resume.empty()) {
    const std::vector<fs::path> existing = store_->list();
    VT_CHECK(existing.empty(), config_.runtime.work_dir, " already holds checkpoints of a run (newest ",
             existing.empty() ? "" : existing.front().string(),
             "): continue it with --resume auto, or start a new run with another --work-dir");
  } else {
    if (auto resumed = store_->resume(options_.resume, *optimizer_, world)) {
      const optim::LrSchedule schedule = state_.schedule;
      state_ = resumed->state;
      state_.schedule = schedule;  // this run's config decides the schedule (e.g. more steps than before)
      state_.world_size = world.size;
      state_.val_dice = -1;
      last_checkpoint_ = resumed->path;
      last_saved_step_ = state_.step;
      last_validated_step_ = state_.step;  // validated (or not) by the run that wrote it
      VT_LOG(info) << "resumed from " << resumed->path.string() << ": step " << state_.step << ", epoch "
                   << state_.sampler.epoch << " at position " << state_.sampler.consumed << ", written by "
                   << resumed->state.world_size << " ranks, now " << world.size;
    } else {
      VT_LOG(info) << "no checkpoint in " << store_->directory().string() << ": starting from step 0";
    }
  }
  if (world.rank == 0) {
    metrics_ = std::make_unique<io::MetricsFile>((work_dir / "metrics.h5").string(), state_.step);
  }
}

void Trainer::log_start() const {
  VT_LOG(info) << "resolved config:\n" << config_.to_yaml();
  for (int r = 0; r < world_.size; ++r) VT_LOG(info) << "world: " << world_.describe(r);
  VT_LOG(info) << "backend " << comm_->backend() << ", device " << device_ << ", dtype "
               << (dtype_ == at::kBFloat16 ? "bf16" : "fp32") << ", optimizer " << optimizer_->config().describe()
               << (optimizer_->host_threads() > 0 ? ", " + std::to_string(optimizer_->host_threads()) + " host threads" : "");
  VT_LOG(info) << "parameters by module:\n" << setup::format_parameter_counts(setup::count_parameters(*model_));
  if (device_.is_cuda()) {
    const perf::PlanInputs plan = perf::memory_plan_inputs(config_, world_.size);
    VT_LOG(info) << perf::format_plan(perf::plan_memory(plan), plan);
  }
  const auto footprint = optimizer_->footprint();
  VT_LOG(info) << "optimizer state per rank: " << footprint.device_bytes / kGiB << " GiB on the device, "
               << footprint.host_bytes / kGiB << " GiB on the host";
  VT_LOG(info) << "effective batch = " << world_.size << " ranks x " << config_.train.micro_batch << " micro-batch x "
               << config_.train.accumulation << " accumulation = "
               << world_.size * config_.train.micro_batch * config_.train.accumulation << " samples per step; "
               << steps_per_epoch_ << " steps per epoch, " << state_.schedule.total_steps << " steps ("
               << state_.schedule.warmup_steps << " warm-up)";
}

ValidationResult Trainer::run_validation() {
  const auto start = Clock::now();
  optimizer_->finish_delayed_update();  // validate the model of every step taken
  seed_step(config_.train.seed, state_.step, world_.rank);
  const ValidationResult v = validate(model_, *val_loader_, *encoder_, device_, dtype_, world_);
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
  last_checkpoint_ = store_->save(state_, config_.to_yaml(), *optimizer_, world_);
  last_saved_step_ = state_.step;
  VT_LOG(info) << "saved checkpoint " << last_checkpoint_.string() << " ("
               << std::chrono::duration<double>(Clock::now() - start).count() << " s)";
  return last_checkpoint_;
}

TrainingSummary Trainer::run() {
  TrainingSummary summary;
  summary.first_step = state_.step;
  if (val_loader_ && state_.step == 0) {
    const ValidationResult initial = run_validation();
    summary.initial_dice = initial.dice_fov;
    record_validation(initial);
  }
  install_stop_handlers();

  const setup::TrainSettings& t = config_.train;
  const int64_t epoch_length = train_loader_->sampler().epoch_length();
  train_loader_->start(state_.sampler);
  IntervalTotals interval;
  compat::StreamClock clock(device_.is_cuda());
  std::vector<perf::StepPhases> measured;  // benchmark mode
  const int64_t benchmark_end = state_.step + options_.benchmark_warmup + options_.benchmark_steps;
  const bool profiling = benchmark() && options_.profile && world_.rank == 0;
  while (state_.step < state_.schedule.total_steps) {
    if (profiling && state_.step == benchmark_end - options_.benchmark_steps) {
      compat::start_op_profiler(device_.is_cuda());  // from the first measured step
    }
    const auto step_start = Clock::now();
    comm_->set_phase("step " + std::to_string(state_.step + 1));
    seed_step(t.seed, state_.step, world_.rank);
    const double lr = state_.schedule.lr_at(state_.step);

    at::Tensor losses = at::zeros({4}, at::TensorOptions(device_).dtype(at::kDouble));
    int64_t samples = 0, tokens = 0;
    // Host wall-clock phases (on a GPU, compute is the time to issue the work, unless something waits on it).
    double data_seconds = 0, compute_seconds = 0;
    perf::StepPhases phases;
    std::vector<std::array<int, 3>> marks;  // benchmark mode: start, forward done, backward done
    for (int64_t micro = 0; micro < t.accumulation; ++micro) {
      const auto wait_start = Clock::now();
      std::optional<data::Batch> batch = train_loader_->next();
      while (!batch) {  // this rank's part of the epoch is done (at the same step on every rank)
        state_.sampler = {state_.sampler.epoch + 1, 0};
        train_loader_->start(state_.sampler);
        batch = train_loader_->next();
      }
      const auto compute_start = Clock::now();
      data_seconds += std::chrono::duration<double>(compute_start - wait_start).count();
      optimizer_->begin_micro_step(micro == t.accumulation - 1);
      if (benchmark()) marks.push_back({clock.mark(), 0, 0});
      const setup::EncodedBatch encoded = [&] {
        RECORD_USER_SCOPE("vesseltune::inputs");
        return encoder_->encode(*batch, device_, dtype_, true);
      }();
      const model::Sa2VAStepOutput out = model_->forward(encoded.inputs);
      if (benchmark()) marks.back()[1] = clock.mark();
      {
        RECORD_USER_SCOPE("vesseltune::backward");  // named in profiles (--profile)
        (out.total / static_cast<double>(t.accumulation)).backward();
      }
      if (benchmark()) {
        marks.back()[2] = clock.mark();
        phases.tiles += std::accumulate(batch->tiles_per_sample.begin(), batch->tiles_per_sample.end(), int64_t{0});
        phases.labelled_tokens += encoded.labelled_tokens;
      }
      losses += at::stack({out.loss_mask, out.loss_dice, out.loss_cldice, out.llm_loss}).detach().to(at::kDouble);
      state_.sampler = batch->position;
      samples += batch->size();
      tokens += encoded.tokens;
      compute_seconds += std::chrono::duration<double>(Clock::now() - compute_start).count();
    }
    const auto optimizer_start = Clock::now();
    const optim::StepResult result = [&] {
      RECORD_USER_SCOPE("vesseltune::optimizer");
      return optimizer_->step(lr);
    }();
    const double optimizer_seconds = std::chrono::duration<double>(Clock::now() - optimizer_start).count();
    ++state_.step;

    // One all-reduce per step: the losses for the log, and whether any rank was asked to stop (a signal, or the
    // stop file that rank 0 looks for: launchers differ in which signals they forward, a file works everywhere).
    const bool stop_file = world_.rank == 0 && fs::exists(stop_file_);
    const at::Tensor requests = at::tensor({static_cast<double>(stop_signal()), stop_file ? 1.0 : 0.0}, at::kDouble);
    at::Tensor shared = at::cat({losses / static_cast<double>(t.accumulation), requests.to(device_)});
    comm_->all_reduce(shared, "step statistics")->synchronize();
    const at::Tensor totals = shared.cpu() / static_cast<double>(world_.size);
    const double* v = totals.data_ptr<double>();
    const bool signalled = v[4] > 0, by_file = v[5] > 0;
    const bool stop = signalled || by_file || state_.step == options_.stop_at_step;
    const bool benchmark_done = benchmark() && state_.step == benchmark_end;
    const double step_seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    if (benchmark() && state_.step > benchmark_end - options_.benchmark_steps) {
      phases.data_ms = 1000.0 * data_seconds;
      for (const auto& m : marks) {
        phases.forward_ms += clock.elapsed_ms(m[0], m[1]);
        phases.backward_ms += clock.elapsed_ms(m[1], m[2]);
      }
      phases.reduce_wait_ms = result.times.reduce_wait_ms;
      phases.optimizer_ms = result.times.norm_ms + result.times.update_ms;
      phases.gather_wait_ms = result.times.gather_wait_ms;
      phases.step_ms = 1000.0 * step_seconds;
      phases.transfers = optimizer_->transfer_times();
      phases.samples = samples;
      phases.tokens = tokens;
      measured.push_back(phases);
    }
    clock.clear();

    state_.consecutive_nonfinite = result.applied ? 0 : state_.consecutive_nonfinite + 1;
    if (!result.applied) {
      VT_LOG(warning) << "iter " << state_.step << ": non-finite gradient (loss " << v[0] + v[1] + v[2] + v[3]
                      << "), step skipped; " << state_.consecutive_nonfinite << " in a row";
    }

    const double gpu_gib =
        device_.is_cuda() ? static_cast<double>(compat::cuda_peak_allocated_bytes(device_.index())) / kGiB : 0.0;
    const double samples_per_s = static_cast<double>(samples * world_.size) / step_seconds;
    const double tokens_per_s = static_cast<double>(tokens * world_.size) / step_seconds;
    if (metrics_) {
      const double epoch = static_cast<double>(state_.sampler.epoch) +
                           static_cast<double>(state_.sampler.consumed) / static_cast<double>(epoch_length);
      metrics_->append("train", {{"step", static_cast<double>(state_.step)},
                                 {"epoch", epoch},
                                 {"loss_mask", v[0]},
                                 {"loss_dice", v[1]},
                                 {"loss_cldice", v[2]},
                                 {"llm_loss", v[3]},
                                 {"total", v[0] + v[1] + v[2] + v[3]},
                                 {"lr", lr},
                                 {"grad_norm", result.grad_norm},
                                 {"step_time_s", step_seconds},
                                 {"data_wait_s", data_seconds},
                                 {"compute_s", compute_seconds},
                                 {"optimizer_s", optimizer_seconds},
                                 {"samples_per_s", samples_per_s},
                                 {"tokens_per_s", tokens_per_s},
                                 {"gpu_mem_gib", gpu_gib},
                                 {"host_mem_gib", resident_host_gib()},
                                 {"skipped_steps", static_cast<double>(optimizer_->skipped_steps())}});
    }

    // After the metrics row, so that the file shows the steps that ended the run.
    VT_CHECK(state_.consecutive_nonfinite < t.max_nonfinite_steps, state_.consecutive_nonfinite,
             " optimizer steps in a row had non-finite gradients (train.max_nonfinite_steps = ",
             t.max_nonfinite_steps, "); the last good checkpoint is ", last_checkpoint_.string());

    interval.loss_mask += v[0];
    interval.loss_dice += v[1];
    interval.loss_cldice += v[2];
    interval.llm_loss += v[3];
    interval.grad_norm += result.grad_norm;
    interval.seconds += step_seconds;
    interval.data_seconds += data_seconds;
    interval.compute_seconds += compute_seconds;
    interval.optimizer_seconds += optimizer_seconds;
    interval.steps += 1;
    interval.samples += samples * world_.size;
    interval.tokens += tokens * world_.size;
    const bool last = state_.step == state_.schedule.total_steps || stop || benchmark_done;
    if (state_.step % t.log_interval == 0 || last) {
      const double n = static_cast<double>(interval.steps);
      std::ostringstream line;
      line << "iter: " << state_.step << ", loss_mask: " << interval.loss_mask / n
           << ", loss_dice: " << interval.loss_dice / n;
      if (config_.loss.cldice_weight > 0) line << ", loss_cldice: " << interval.loss_cldice / n;
      line << ", llm_loss: " << interval.llm_loss / n << ", total: "
           << (interval.loss_mask + interval.loss_dice + interval.loss_cldice + interval.llm_loss) / n
           << ", lr: " << lr << ", grad_norm: " << interval.grad_norm / n
           << ", time: " << interval.seconds / n << " s/iter (data " << interval.data_seconds / n << ", fwd+bwd "
           << interval.compute_seconds / n << ", optimizer " << interval.optimizer_seconds / n
           << "), samples/s: " << interval.samples / interval.seconds
           << ", tokens/s: " << interval.tokens / interval.seconds;
      if (device_.is_cuda()) line << ", mem: " << gpu_gib << " GiB";
      line << ", host: " << resident_host_gib() << " GiB, epoch: " << state_.sampler.epoch
           << ", eta: " << format_duration(interval.seconds / n * (state_.schedule.total_steps - state_.step));
      VT_LOG(info) << line.str();
      interval = IntervalTotals{};
    }

    // A stop saves at once (preemption leaves little time); validation waits for the resumed run.
    state_.val_dice = -1;
    const bool finished = state_.step == state_.schedule.total_steps;
    if (benchmark_done) break;
    if (val_loader_ && ((t.val_interval > 0 && state_.step % t.val_interval == 0) || finished)) {
      record_validation(run_validation());
    }
    if (!benchmark() && (state_.step % t.save_steps == 0 || last)) save();
    if (stop) {
      summary.stopped = true;
      const std::string cause = stop_signal() ? "signal " + std::to_string(stop_signal())
                                : signalled         ? "a signal on another rank"
                                : by_file           ? "file " + stop_file_.string()
                                                    : "stop_at_step";
      if (by_file && world_.rank == 0) std::remove(stop_file_.c_str());  // so that the resumed run goes on
      VT_LOG(info) << "stop requested (" << cause
                   << ") at iter " << state_.step << ": checkpoint saved; continue with --resume auto";
      break;
    }
  }
  if (benchmark()) {
    perf::BenchmarkSetup setup;
    setup.model = config_.model.config_json.empty() ? config_.model.preset : config_.model.config_json;
    setup.offload = optim::to_string(config_.zero_config().offload);
    setup.micro_batch = t.micro_batch;
    setup.accumulation = t.accumulation;
    setup.warmup_steps = options_.benchmark_warmup;
    setup.peak_tflops = options_.peak_tflops;
    const double gpu_gib =
        device_.is_cuda() ? static_cast<double>(compat::cuda_peak_allocated_bytes(device_.index())) / kGiB : 0.0;
    if (profiling) {
      const fs::path trace = fs::path(config_.runtime.work_dir) / "profile_rank0.json";
      const compat::ProfiledRun run = compat::stop_op_profiler(trace.string());
      const perf::OpProfile profile = perf::summarize_op_profile(run.events, static_cast<int>(options_.benchmark_steps));
      VT_LOG(info) << perf::format_op_profile(profile)
                   << (run.trace_error.empty() ? "  trace: " + trace.string() : "  no trace: " + run.trace_error);
    }
    const double reserved_gib =
        device_.is_cuda() ? static_cast<double>(compat::cuda_peak_reserved_bytes(device_.index())) / kGiB : 0.0;
    const perf::BenchmarkResult result =
        perf::summarize_benchmark(measured, setup, shapes_, gpu_gib, reserved_gib, resident_host_gib(), world_);
    VT_LOG(info) << result.table;
    summary.benchmark_json = result.json;
    summary.last_step = state_.step;
    return summary;
  }
  optimizer_->finish_delayed_update();
  // A run resumed from its last step has nothing left to do but what it may have missed.
  if (!summary.stopped && val_loader_ && last_validated_step_ != state_.step) record_validation(run_validation());
  if (last_saved_step_ != state_.step) save();

  write_run_status(summary.stopped);
  summary.last_step = state_.step;
  summary.final_dice = state_.val_dice;
  summary.last_checkpoint = last_checkpoint_;
  summary.metrics_file = fs::path(config_.runtime.work_dir) / "metrics.h5";
  VT_LOG(info) << "done: iter " << state_.step << " of " << state_.schedule.total_steps << ", "
               << optimizer_->skipped_steps() << " skipped; best dice_fov " << state_.best_dice << " at iter "
               << state_.best_step;
  VT_LOG(info) << "checkpoints: " << store_->directory().string();
  VT_LOG(info) << "metrics: " << summary.metrics_file.string() << " (plots: vesseltune-report "
               << summary.metrics_file.string() << ")";
  VT_LOG(info) << "log: " << (fs::path(config_.runtime.work_dir) / "train.log").string();
  return summary;
}

}  // namespace

data::LoaderOptions train_loader_options(const setup::TrainConfig& c, const setup::ModelShapes& shapes, const comm::World& world) {
  data::LoaderOptions train;
  train.batch_size = c.train.micro_batch;
  train.drop_last = true;  // equal micro-batches on every rank and step
  train.workers = c.data.workers;
  train.prefetch_batches = c.data.prefetch_batches;
  train.sampler = {c.data.repeats, c.train.seed, true, world.rank, world.size};
  train.augment = c.data.augment;
  train.inputs = setup::model_input_options(c, shapes);
  return train;
}

data::LoaderOptions val_loader_options(const setup::TrainConfig& c, const setup::ModelShapes& shapes, const comm::World& world) {
  data::LoaderOptions val = train_loader_options(c, shapes, world);
  val.drop_last = false;
  val.sampler = {1, 0, false, world.rank, world.size};
  val.sampler.drop_remainder = false;  // every validation image counts
  val.augment.enabled = false;
  val.inputs.full_resolution = true;
  return val;
}

void seed_step(uint64_t seed, int64_t step, int rank) {
  torch::manual_seed(data::mix_seed(seed, static_cast<uint64_t>(step), static_cast<uint64_t>(rank)) >> 1);
}

TrainingSummary run_training(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world) {
  Trainer trainer(config, options, world);
  return trainer.run();
}

}  // namespace vesseltune::train
