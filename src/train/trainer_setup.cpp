// The training job set up on one rank: its tokenizer copy, model and data, optimizer, and where it starts.
#include <cmath>

#include "trainer_impl.h"
#include "vesseltune/comm/launch.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/data/random.h"
#include "vesseltune/perf/benchmark_observer.h"
#include "vesseltune/perf/memory_plan.h"
#include "vesseltune/setup/model_setup.h"
#include "vesseltune/setup/trained_model.h"
#include "vesseltune/text/tokenizer.h"
#include "vesseltune/text/tokenizer_files.h"
#include "vesseltune/train/stop_request.h"

namespace vesseltune::train {
namespace detail {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

}  // namespace

Trainer::Trainer(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world)
    : config_(config.with_deepspeed(world.size)),
      options_(options),
      world_(world),
      work_dir_(config_.runtime.work_dir),
      stop_file_(work_dir_ / "STOP") {
  install_stop_handlers();  // before the long set-up: a stop request then (a time limit's signal) is kept, not fatal
  refuse_an_existing_run();
  fs::create_directories(work_dir_);
  log::init({world.rank, log::Severity::info, false, (work_dir_ / "train.log").string()});
  comm_ = comm::make_communicator(world, comm::parse_backend(config_.runtime.backend),
                                  std::chrono::milliseconds(static_cast<int64_t>(config_.runtime.collective_timeout_s * 1000)));
  keep_tokenizer_copy();
  device_ = comm_->device();
  dtype_ = setup::model_dtype(config_, device_);
  build_model_and_data();
  build_optimizer();
  start_or_resume();
  if (world.rank == 0) metrics_ = std::make_unique<io::MetricsFile>((work_dir_ / "metrics.h5").string(), state_.step);
  if (benchmark()) {
    observer_ = std::make_unique<perf::BenchmarkObserver>(state_.step, options_.benchmark_warmup,
                                                          options_.benchmark_steps, options_.profile && world.rank == 0,
                                                          device_);
  } else {
    observer_ = std::make_unique<perf::StepObserver>();
  }
}

// A fresh run (no --resume) into a work dir that holds checkpoints would mix two runs: refused before anything there
// changes.
void Trainer::refuse_an_existing_run() const {
  if (!options_.resume.empty()) return;
  const std::vector<fs::path> existing = checkpoint::CheckpointStore(work_dir_ / "checkpoints", 1).list();
  VT_CHECK(existing.empty(), config_.runtime.work_dir, " already holds checkpoints of a run (newest ",
           existing.empty() ? "" : existing.front().string(),
           "): continue it with --resume auto, or start a new run with another --work-dir");
}

// The run keeps its own copy of the tokenizer, which its checkpoints name: evaluation and export find it there
// wherever the original has gone. A resumed run goes on with the copy it made.
void Trainer::keep_tokenizer_copy() {
  const fs::path copy = work_dir_ / setup::kRunTokenizerFolder;
  const bool kept = !options_.resume.empty() && fs::is_regular_file(copy / "tokenizer.json");
  if (world_.rank == 0 && !kept) {
    text::Tokenizer::from_file(config_.model.tokenizer);  // a broken file is refused under its own name, not copied
    fs::create_directories(copy);
    text::copy_tokenizer_files(config_.model.tokenizer, copy.string());
  }
  comm_->barrier("tokenizer copy of rank 0");
  config_.model.tokenizer = (copy / "tokenizer.json").string();
}

void Trainer::build_model_and_data() {
  text::Tokenizer tokenizer = setup::run_tokenizer(config_);
  shapes_ = setup::model_shapes(config_, tokenizer);
  encoder_ = std::make_unique<setup::BatchEncoder>(std::move(tokenizer), shapes_.sa2va,
                                                   setup::model_input_options(config_, shapes_), config_.loss.inside_fov);
  model_ = setup::build_model(shapes_, config_, device_, dtype_);
  model_->train();

  train_loader_ = std::make_unique<data::DataLoader>(
      std::make_shared<const data::PackedDataset>(config_.data.path, config_.data.train_split),
      train_loader_options(config_, shapes_, world_));
  steps_per_epoch_ = train_loader_->batches_per_epoch() / config_.train.accumulation;
  VT_CHECK(steps_per_epoch_ >= 1, config_.data.path, ": the '", config_.data.train_split, "' split gives ",
           train_loader_->batches_per_epoch(), " micro-batches per rank and epoch, fewer than train.accumulation = ",
           config_.train.accumulation);

  auto val_set = std::make_shared<const data::PackedDataset>(config_.data.path, config_.data.val_split);
  if (benchmark()) {
    VT_LOG(info) << "benchmark mode: " << options_.benchmark_warmup << " warm-up + " << options_.benchmark_steps
                 << " measured steps, no validation, no checkpoints";
  } else if (val_set->size() > 0) {
    val_loader_ = std::make_unique<data::DataLoader>(val_set, val_loader_options(config_, shapes_, world_));
  } else {
    VT_LOG(warning) << config_.data.path << " has no '" << config_.data.val_split << "' samples: no validation";
  }
}

void Trainer::build_optimizer() {
  comm::Fingerprint identity;
  identity.add("config", config_.to_yaml());
  optim::ZeroConfig zero = config_.zero_config();
  zero.time_phases = benchmark();
  optimizer_ = std::make_unique<optim::ZeroOptimizer>(optim::trainable_parameters(*model_),
                                                      optim::default_param_groups(zero), zero, *comm_, identity);
}

void Trainer::start_or_resume() {
  state_.seed = config_.train.seed;
  state_.world_size = world_.size;
  state_.schedule.lr = config_.train.lr;
  state_.schedule.min_lr = config_.train.min_lr;
  state_.schedule.total_steps =
      config_.train.max_steps > 0 ? config_.train.max_steps : config_.train.epochs * steps_per_epoch_;
  state_.schedule.warmup_steps =
      static_cast<int64_t>(std::llround(config_.train.warmup_ratio * static_cast<double>(state_.schedule.total_steps)));
  store_ = std::make_unique<checkpoint::CheckpointStore>(work_dir_ / "checkpoints", config_.train.save_total_limit);
  log_start();

  if (options_.resume.empty()) return;  // refuse_an_existing_run made sure there is nothing to continue
  const auto resumed = store_->resume(options_.resume, *optimizer_, options_.allow_restart);
  if (!resumed) {
    VT_LOG(info) << "no checkpoint in " << store_->directory().string() << ": starting from step 0";
    return;
  }
  const optim::LrSchedule schedule = state_.schedule;
  state_ = resumed->state;
  state_.schedule = schedule;  // this run's config decides the schedule (e.g. more steps than before)
  state_.world_size = world_.size;
  state_.val_dice = -1;
  last_checkpoint_ = resumed->path;
  last_saved_step_ = state_.step;
  last_validated_step_ = state_.step;  // validated (or not) by the run that wrote it
  VT_LOG(info) << "resumed from " << resumed->path.string() << ": step " << state_.step << ", epoch "
               << state_.sampler.epoch << " at position " << state_.sampler.consumed << ", written by "
               << resumed->state.world_size << " ranks, now " << world_.size;
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

}  // namespace detail


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

}  // namespace vesseltune::train
