#include "vesseltune/optim/zero_optimizer.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <utility>

#include "vesseltune/comm/sparse_rows.h"
#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"

namespace vesseltune::optim {
namespace {

using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

std::vector<TensorSpec> tensor_specs(const std::vector<NamedParameter>& parameters) {
  std::vector<TensorSpec> specs;
  for (const auto& p : parameters) {
    VT_CHECK(p.tensor.defined(), "trainable tensor '", p.name, "' is undefined");
    specs.push_back(TensorSpec{p.name, p.tensor.sizes().vec(), p.group, p.sparse_rows});
  }
  return specs;
}

std::string describe_tensors(const std::vector<NamedParameter>& parameters) {
  std::ostringstream out;
  for (const auto& p : parameters) {
    out << p.name << ":" << p.tensor.sizes() << ":" << p.tensor.scalar_type() << (p.sparse_rows ? ":rows" : "") << ";";
  }
  return out.str();
}

// AdamW on the device's part of the state: torch's fused kernel on a GPU (one pass over the state), tensor operations
// elsewhere. Same arithmetic as the host kernel and torch::optim::AdamW.
// The device path works through a shard in chunks of this many elements: its fp32 temporaries (the converted
// gradient, AdamW's denominator) then stay at a few hundred MB instead of several times the shard (a 500M-element
// bucket of sa2va-4b made 10 GiB of them at one GPU).
constexpr int64_t kDeviceChunk = 1 << 24;

// Sum of squares of a device gradient shard: one reduction accumulating in fp32, which reads the model dtype as it
// goes (no fp32 copy of the shard, no squares written out).
double sum_of_squares_device(const at::Tensor& grad) {
  const double norm = at::linalg_vector_norm(grad, 2, c10::nullopt, false, at::kFloat).item<double>();
  return norm * norm;
}

void adamw_device(const AdamWStep& h, at::Tensor master, at::Tensor exp_avg, at::Tensor exp_avg_sq,
                  const at::Tensor& grad, at::Tensor param_out) {
  at::Tensor g = grad.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);  // the fused kernel writes into it
  const auto scalar = g.options();
  if (compat::fused_adamw(master, exp_avg, exp_avg_sq, g, at::full({}, static_cast<double>(h.step), scalar),
                          at::full({}, 1.0 / h.grad_scale, scalar), h.lr, h.beta1, h.beta2, h.weight_decay, h.eps)) {
    param_out.copy_(master);
    return;
  }
  if (h.grad_scale != 1.0) g.mul_(h.grad_scale);
  if (h.weight_decay != 0.0) master.mul_(1.0 - h.lr * h.weight_decay);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  exp_avg.mul_(h.beta1).add_(g, 1.0 - h.beta1);
  exp_avg_sq.mul_(h.beta2).addcmul_(g, g, 1.0 - h.beta2);
  const at::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(h.eps);
  master.addcdiv_(exp_avg, denom, -h.lr / bias_correction1);
  param_out.copy_(master);
}

// OWNED := the rows' sums where they fall in it, zero elsewhere. OWNED holds the elements of a [rows, COLUMNS] tensor
// from element FIRST on, which may fall anywhere in a row: whole rows go in with one index_copy_, the (at most two)
// rows that its ends cut one by one.
void write_rows(at::Tensor owned, int64_t first, int64_t columns, const comm::SummedRows& summed) {
  owned.zero_();
  const int64_t end = first + owned.numel();
  const int64_t* row = summed.rows.data_ptr<int64_t>();
  std::vector<int64_t> whole_rows, whole_sums;  // a whole row and the index of its sum
  for (int64_t i = 0; i < summed.rows.numel(); ++i) {
    const int64_t begin = std::max(first, row[i] * columns), stop = std::min(end, (row[i] + 1) * columns);
    if (stop - begin == columns) {
      whole_rows.push_back(row[i]);
      whole_sums.push_back(i);
    } else if (stop > begin) {
      owned.narrow(0, begin - first, stop - begin)
          .copy_(summed.sums[i].narrow(0, begin - row[i] * columns, stop - begin));
    }
  }
  if (whole_rows.empty()) return;
  const int64_t lowest = whole_rows.front(), span = whole_rows.back() - lowest + 1;
  const at::Tensor place = at::tensor(whole_rows, at::kLong).sub_(lowest).to(owned.device());
  const at::Tensor sums = summed.sums.index_select(0, at::tensor(whole_sums, at::kLong).to(owned.device()));
  owned.narrow(0, lowest * columns - first, span * columns).view({span, columns}).index_copy_(0, place, sums);
}

}  // namespace

std::vector<ParamGroup> default_param_groups(const ZeroConfig& config) {
  return {ParamGroup{"decay", config.weight_decay}, ParamGroup{"no_decay", 0.0}};
}

std::vector<NamedParameter> trainable_parameters(const torch::nn::Module& module) {
  std::vector<std::string> sparse_rows;  // parameter names
  const auto note = [&](const torch::nn::Module& m, const std::string& prefix) {
    const auto* embedding = dynamic_cast<const torch::nn::EmbeddingImpl*>(&m);
    if (embedding && embedding->options.sparse()) sparse_rows.push_back(prefix + "weight");
  };
  note(module, "");  // (named_modules() can name the module itself only when a shared_ptr holds it)
  for (const auto& item : module.named_modules("", /*include_self=*/false)) note(*item.value(), item.key() + ".");
  std::vector<NamedParameter> parameters;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const bool rows = std::find(sparse_rows.begin(), sparse_rows.end(), item.key()) != sparse_rows.end();
    parameters.push_back(NamedParameter{item.key(), item.value(), item.value().dim() <= 1 ? 1 : 0, rows});
  }
  return parameters;
}

ZeroOptimizer::ZeroOptimizer(std::vector<NamedParameter> parameters, std::vector<ParamGroup> groups, ZeroConfig config,
                             comm::Communicator& comm, comm::Fingerprint identity)
    : parameters_(std::move(parameters)),
      groups_(std::move(groups)),
      config_(std::move(config)),
      comm_(comm),
      layout_(tensor_specs(parameters_), config_.reduce_bucket_numel, comm.size(), comm.rank(), config_.stage >= 1) {
  config_.validate();
  const at::Device device = comm_.device();
  model_dtype_ = parameters_.front().tensor.scalar_type();
  for (const auto& p : parameters_) {
    VT_CHECK(p.tensor.device() == device, "trainable tensor '", p.name, "' is on ", p.tensor.device(), ", the ",
             comm_.backend(), " communicator works on ", device);
    VT_CHECK(p.tensor.scalar_type() == model_dtype_, "trainable tensor '", p.name, "' is ", p.tensor.scalar_type(),
             ", others are ", model_dtype_, ": one dtype for all trainable tensors");
    VT_CHECK(p.tensor.is_leaf() && p.tensor.requires_grad(), "trainable tensor '", p.name,
             "' must be a leaf that requires grad");
    VT_CHECK(p.group >= 0 && p.group < static_cast<int>(groups_.size()), "trainable tensor '", p.name, "' names group ",
             p.group, " of ", groups_.size());
  }
  VT_CHECK(model_dtype_ == at::kBFloat16 || model_dtype_ == at::kFloat, "trainable tensors must be bf16 or fp32, got ",
           model_dtype_);

  // Every rank must agree on what it is about to exchange before the first collective on these buffers.
  identity.add("trainable tensors", describe_tensors(parameters_));
  identity.add("bucket layout", layout_.describe());
  identity.add("optimizer", config_.describe());
  comm::verify_fingerprint(comm_, identity);

  sharded_ = config_.stage >= 1;
  const int64_t shard = layout_.shard_numel();
  host_numel_ = config_.host_state_numel(shard);
  staging_ = host_numel_ > 0 && (!device.is_cpu() || config_.delayed_update);
  const auto model_options = at::TensorOptions().dtype(model_dtype_).device(device);

  // Flat buffers; each parameter becomes a view of its place in them, and so does its gradient, except that of a
  // sparse-rows tensor: autograd keeps that one as the sparse rows it arrives in (a few MB instead of the table).
  flat_params_ = at::zeros({layout_.flat_numel()}, model_options);
  flat_grads_ = at::zeros({layout_.gradient_numel()}, model_options);
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const auto& slot = layout_.slots()[i];
      at::Tensor& tensor = parameters_[i].tensor;
      at::Tensor data_view = flat_params_.narrow(0, slot.flat_offset, slot.numel).view(tensor.sizes());
      data_view.copy_(tensor);
      tensor.set_data(data_view);
      tensor.mutable_grad() = parameters_[i].sparse_rows
                                  ? at::Tensor()
                                  : flat_grads_.narrow(0, slot.flat_offset, slot.numel).view(tensor.sizes());
    }
  }
  grad_shard_ = sharded_ ? at::zeros({shard}, model_options) : flat_grads_;
  for (int parity = 0; parity < (config_.delayed_update ? 2 : 1); ++parity) {
    host_grads_.push_back(staging_ ? comm_.empty_host(host_numel_, model_dtype_, config_.pin_memory)
                                   : grad_shard_.narrow(0, 0, host_numel_));
    if (staging_) param_staging_.push_back(comm_.empty_host(host_numel_, model_dtype_, config_.pin_memory));
  }

  auto make_state = [](int64_t numel, const at::Device& where) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(where);
    return ShardState{at::empty({numel}, options), at::zeros({numel}, options), at::zeros({numel}, options)};
  };
  host_state_ = make_state(host_numel_, at::Device(at::kCPU));
  device_state_ = make_state(shard - host_numel_, device);
  copy_parameters_to_master();
  if (host_numel_ > 0) {
    const int local_rank = comm_.world().local_rank, local_size = comm_.world().local_size;
    int threads = config_.optimizer_threads;
    if (threads == 0 && config_.delayed_update) {
      // In the background the update shares the host with the step's launch thread and data workers: a quarter of
      // the rank's cores, half when the rank is alone on its node (it then updates all the state with all the host's
      // memory bandwidth). Measured with sa2va-4b (bench/NOTES.md): 4 × H200, 16 cores per rank: 4 threads 8.5
      // samples/s per GPU, 8 threads 7.2, 16 6.8; one H200, 16 cores: 8 threads 8.09, 4 7.13, 12 7.08, 16 6.72.
      const int cores = static_cast<int>(HostThreadPool::share_of_cores(local_rank, local_size).size());
      threads = std::max(1, cores / (local_size > 1 ? 4 : 2));
    }
    pool_ = std::make_unique<HostThreadPool>(threads, local_rank, local_size);
  }

  reduce_work_.resize(layout_.buckets().size());
  copy_out_work_.resize(layout_.buckets().size());
  slot_ready_.assign(parameters_.size(), 0);
  bucket_pending_.assign(layout_.buckets().size(), 0);
  without_gradient_.assign(parameters_.size(), 0);
  got_gradient_.assign(parameters_.size(), 0);
  reduce_again_.assign(layout_.buckets().size(), 0);
  rows_in_use_.resize(layout_.buckets().size());
  device_rows_index_.resize(layout_.buckets().size());
  rows_version_.assign(layout_.buckets().size(), 0);
  packed_rows_.assign(host_grads_.size(), std::vector<PackedRows>(layout_.buckets().size()));
  while (dense_buckets_ < static_cast<int>(layout_.buckets().size()) && !layout_.buckets()[dense_buckets_].sparse_rows) {
    ++dense_buckets_;
  }
  for (int b = dense_buckets_; b < static_cast<int>(layout_.buckets().size()); ++b) {
    const TensorSlot& slot = row_layout(b).slot;
    if (groups_[slot.group].weight_decay == 0.0) rows_in_use_[b].assign(slot.shape[0], 0);
  }
  fill_param_staging();
  overlap_ = sharded_ && config_.stage == 2 && config_.overlap_comm;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!overlap_ && !parameters_[i].sparse_rows) continue;  // sparse rows: a dense gradient is refused as it arrives
    hooks_.push_back(std::make_unique<compat::GradAccumulatedHook>(
        parameters_[i].tensor, [this, i](const at::Tensor& added) { on_gradient_accumulated(static_cast<int>(i), added); }));
  }

  const auto print = footprint();
  VT_LOG(info) << "ZeRO optimizer: " << parameters_.size() << " tensors, " << layout_.canonical_numel()
               << " trainable elements in " << layout_.buckets().size() << " bucket(s), " << config_.describe()
               << "; this rank owns " << shard << " elements; state " << (print.device_bytes >> 20)
               << " MiB on the device, " << (print.host_bytes >> 20) << " MiB on the host"
               << (pool_ ? "; host AdamW: " + std::to_string(pool_->threads()) + " thread(s), " +
                               to_string(best_simd_level())
                         : std::string());
}

ZeroOptimizer::~ZeroOptimizer() {
  if (host_update_.joinable()) host_update_.join();  // unwinding from an error: its own error is not reported
}

std::vector<ZeroOptimizer::StatePiece> ZeroOptimizer::state_pieces(int64_t offset, int64_t numel) const {
  std::vector<StatePiece> pieces;
  const int64_t split = std::clamp(host_numel_, offset, offset + numel);
  if (split > offset) pieces.push_back({true, offset, offset, split - offset});
  if (offset + numel > split) pieces.push_back({false, split, split - host_numel_, offset + numel - split});
  return pieces;
}

int64_t ZeroOptimizer::host_prefix(int bucket) const {
  return std::clamp<int64_t>(host_numel_ - layout_.shard_offset(bucket), 0, layout_.owned_numel(bucket));
}

at::Tensor ZeroOptimizer::owned_params(int bucket) {
  return flat_params_.narrow(0, layout_.owned_begin(bucket), layout_.owned_numel(bucket));
}

at::Tensor ZeroOptimizer::bucket_params(int bucket) {
  const auto& b = layout_.buckets()[bucket];
  return flat_params_.narrow(0, b.offset, b.padded);
}

void ZeroOptimizer::begin_micro_step(bool boundary) {
  std::lock_guard<std::mutex> lock(mutex_);
  boundary_ = boundary;
  if (!boundary) return;
  slot_ready_ = without_gradient_;
  std::fill(got_gradient_.begin(), got_gradient_.end(), 0);
  std::fill(reduce_again_.begin(), reduce_again_.end(), 0);
  for (size_t b = 0; b < layout_.buckets().size(); ++b) {
    const auto& slots = layout_.buckets()[b].slots;
    bucket_pending_[b] = static_cast<int>(std::count_if(slots.begin(), slots.end(), [&](int s) { return !slot_ready_[s]; }));
  }
  next_bucket_ = 0;
  comm_.set_phase("step " + std::to_string(step_count_ + 1));
}

void ZeroOptimizer::on_gradient_accumulated(int slot, const at::Tensor& added) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (parameters_[slot].sparse_rows) {  // reduced in step(), by its rows
    VT_CHECK(added.is_sparse(), "tensor '", parameters_[slot].name, "' is reduced by sparse rows (an Embedding with "
             "sparse gradients) but received a dense gradient: is its weight also used elsewhere, e.g. tied to an "
             "output layer?");
    return;
  }
  if (!boundary_) return;  // accumulation micro-step: no communication
  const int bucket = layout_.slots()[slot].bucket;
  got_gradient_[slot] = 1;
  if (slot_ready_[slot]) {
    // A second gradient for this tensor within one backward pass (e.g. reentrant checkpointing), or a gradient for
    // one that had none last time: fine unless its bucket is already on the wire.
    if (bucket < next_bucket_ && without_gradient_[slot]) {
      reduce_again_[bucket] = 1;
      return;
    }
    VT_CHECK(bucket >= next_bucket_, "tensor '", parameters_[slot].name,
             "' received a gradient after its bucket was reduced; set zero_optimization.overlap_comm false");
    return;
  }
  slot_ready_[slot] = 1;
  --bucket_pending_[bucket];
  launch_ready_reductions();
}

void ZeroOptimizer::note_tensors_without_gradient() {
  std::string names;
  int count = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    without_gradient_[i] = !got_gradient_[i] && !parameters_[i].sparse_rows;
    if (without_gradient_[i] && ++count <= 4) names += (names.empty() ? "" : ", ") + parameters_[i].name;
  }
  if (count > 0 && !reported_without_gradient_ && comm_.rank() == 0) {
    VT_LOG(info) << "ZeRO: " << count << " trainable tensor(s) got no gradient in the backward pass (" << names
                 << (count > 4 ? ", ..." : "") << "): their buckets no longer wait for them, and AdamW updates them "
                 << "with a zero gradient, as DeepSpeed does";
  }
  reported_without_gradient_ = reported_without_gradient_ || count > 0;
}

void ZeroOptimizer::launch_ready_reductions() {
  // Buckets go on the wire in index order on every rank (collectives must match), as soon as complete; the
  // sparse-rows ones in step().
  while (next_bucket_ < dense_buckets_ && bucket_pending_[next_bucket_] == 0) {
    launch_reduction(next_bucket_++);
  }
}

void ZeroOptimizer::launch_reduction(int bucket) {
  const auto& b = layout_.buckets()[bucket];
  at::Tensor grads = flat_grads_.narrow(0, b.offset, b.padded);
  const std::string name = " bucket " + std::to_string(bucket);
  if (sharded_) {
    // The last step's copy out of this shard may still be running (a delayed update does not wait for it).
    at::Tensor shard = grad_shard_.narrow(0, layout_.shard_offset(bucket), layout_.owned_numel(bucket));
    reduce_work_[bucket] = comm_.reduce_scatter(grads, shard, "reduce-scatter" + name, copy_out_work_[bucket].get());
  } else {
    reduce_work_[bucket] = comm_.all_reduce(grads, "all-reduce" + name);
  }
  copy_out(bucket, reduce_work_[bucket].get());
}

void ZeroOptimizer::reduce_rows(int bucket) {
  const auto [slot, columns, shift] = row_layout(bucket);
  // Sparse rows, or undefined where this rank's batches looked up none (dense ones were refused as they arrived).
  const at::Tensor& grad = parameters_[layout_.buckets()[bucket].slots.front()].tensor.grad();
  const auto options = flat_params_.options();
  const comm::SummedRows summed = comm::all_reduce_rows(
      comm_, grad.defined() ? grad._indices().reshape({-1}) : at::empty({0}, options.dtype(at::kLong)),
      grad.defined() ? grad._values() : at::empty({0, columns}, options), columns,
      "all-reduce of the rows of bucket " + std::to_string(bucket) + " (" + slot.name + ")");
  const int64_t* row = summed.rows.data_ptr<int64_t>();
  std::vector<uint8_t>& used = rows_in_use_[bucket];
  if (!used.empty()) {
    bool new_rows = false;
    for (int64_t i = 0; i < summed.rows.numel(); ++i) {
      new_rows = new_rows || !used[row[i]];
      used[row[i]] = 1;
    }
    if (new_rows) ++rows_version_[bucket];
  }

  if (copy_out_work_[bucket]) copy_out_work_[bucket]->wait();  // the last step's copy out read the range
  write_rows(grad_shard_.narrow(0, layout_.shard_offset(bucket), layout_.owned_numel(bucket)),
             layout_.shard_offset(bucket) + shift, columns, summed);
  reduce_work_[bucket] = nullptr;  // done on the caller's stream
  copy_out(bucket, nullptr);
}

void ZeroOptimizer::copy_out(int bucket, const comm::Work* after) {
  const int64_t host = host_prefix(bucket);
  if (!staging_ || host == 0) return;
  // The host part's gradients go to pinned memory as soon as they are reduced.
  const int64_t offset = layout_.shard_offset(bucket);
  const at::Tensor reduced = grad_shard_.narrow(0, offset, host);
  if (packs_rows(bucket)) {  // reduced by rows on the compute stream: nothing AFTER
    PackedRows& packed = packed_rows_[parity_][bucket];
    if (packed.version() != rows_version_[bucket]) {
      packed.set_runs(runs_to_update(bucket, offset, offset + host), offset, rows_version_[bucket], comm_, model_dtype_,
                      config_.pin_memory);
    }
    copy_out_work_[bucket] = packed.copy_out(comm_, reduced);
    return;
  }
  at::Tensor target = host_grads_[parity_].narrow(0, offset, host);
  copy_out_work_[bucket] = comm_.copy(target, reduced, after);
}

void ZeroOptimizer::check_grads_alias() const {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].sparse_rows) continue;  // sparse rows of its own
    const at::Tensor& grad = parameters_[i].tensor.grad();
    const auto& slot = layout_.slots()[i];
    VT_CHECK(grad.defined() && grad.data_ptr() == static_cast<char*>(flat_grads_.data_ptr()) +
                                                      slot.flat_offset * flat_grads_.element_size(),
             "the gradient of '", parameters_[i].name,
             "' no longer points into the optimizer's buffer (was zero_grad() called on the module? the optimizer "
             "zeroes gradients itself)");
  }
}

StepResult ZeroOptimizer::step(double lr) {
  VT_CHECK(boundary_, "step() must follow the backward pass of a micro-step begun with begin_micro_step(true)");
  check_grads_alias();
  StepResult result;
  const int buckets = static_cast<int>(layout_.buckets().size());
  const bool device_sync = config_.time_phases && !comm_.device().is_cpu();
  const bool delayed = config_.delays_step(step_count_ + 1);
  copy_in_work_.clear();
  gather_work_.clear();

  // 0. A delayed update: the previous step's host part was updated during this step's forward and backward. Its
  // parameters are copied in (the copies wait for the backward's kernels) and gathered with this step's device
  // part. When that update is done already, the copies go now, beside this step's last reductions and copies out;
  // otherwise after the norm, so that the wait for it comes as late as it can (measured both ways, bench/NOTES.md).
  std::vector<comm::WorkPtr> copied_in(buckets);
  double join_ms = 0;  // counted as AdamW time: what the step waited for the host's update
  const auto join_and_copy_in = [&] {
    const auto joining = Clock::now();
    const int done = join_host_update();
    join_ms += elapsed_ms(joining);
    for (int b = 0; b < buckets && done >= 0; ++b) copied_in[b] = copy_in(b, done);
  };
  if (delayed && host_update_finished_) join_and_copy_in();

  // 1. Reduced gradients where AdamW reads them.
  auto started = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (overlap_) note_tensors_without_gradient();
    std::fill(bucket_pending_.begin(), bucket_pending_.end(), 0);  // tensors without a gradient count as ready
    launch_ready_reductions();
    boundary_ = false;
  }
  if (overlap_) {  // every rank reduces again a bucket that went out before a gradient on any rank
    comm_.all_reduce_host(reduce_again_, comm::Communicator::Reduction::max, "buckets to reduce again");
    for (int b = 0; b < dense_buckets_; ++b) {
      if (reduce_again_[b]) launch_reduction(b);
    }
  }
  for (int b = dense_buckets_; b < buckets; ++b) reduce_rows(b);
  for (int b = 0; b < buckets; ++b) {
    if (reduce_work_[b]) reduce_work_[b]->wait();
    if (device_sync && reduce_work_[b]) reduce_work_[b]->synchronize();
    if (!copy_out_work_[b]) continue;
    // A delayed host update waits for its copies out itself, and the next reductions into the shard wait for them
    // on the device. Only with stage 0, where the shard is the gradient buffer that the next backward pass
    // accumulates into, does the device wait for them.
    if (!delayed) {
      copy_out_work_[b]->synchronize();
    } else if (!sharded_) {
      copy_out_work_[b]->wait();
    }
  }
  result.times.reduce_wait_ms = elapsed_ms(started);

  // 2. Global norm of the averaged gradient: local sum of squares, one scalar all-reduce (a host collective: this is
  // host-side coordination, whatever the backend of the gradients).
  started = Clock::now();
  // From a GPU the whole shard is summed there, the host part included (its copy out came from there): the host's
  // memory bandwidth is what its part of AdamW is short of.
  const int64_t shard = layout_.shard_numel();
  const int64_t host_summed = staging_ ? 0 : host_numel_;
  double sum_of_squares = 0;
  if (host_summed > 0) {
    sum_of_squares += sum_of_squares_host(host_grads_[parity_].data_ptr(), model_dtype_, host_summed, pool_.get());
  }
  if (host_summed < shard) sum_of_squares += sum_of_squares_device(grad_shard_.narrow(0, host_summed, shard - host_summed));
  if (fault::point("norm", comm_.rank())) sum_of_squares = std::nan("");
  if (sharded_) {
    sum_of_squares = comm_.all_reduce_host(sum_of_squares, comm::Communicator::Reduction::sum, "gradient norm");
  }
  const double world = comm_.size();
  result.grad_norm = std::sqrt(sum_of_squares) / world;
  result.times.norm_ms = elapsed_ms(started);

  if (!std::isfinite(result.grad_norm)) {
    ++skipped_steps_;
    if (comm_.rank() == 0) {
      VT_LOG(warning) << "step " << step_count_ + 1 << " skipped: gradient norm is " << result.grad_norm << " ("
                      << skipped_steps_ << " skipped so far)";
    }
    if (delayed) {  // the previous step's update was taken: publish it
      join_and_copy_in();
      for (int b = 0; b < buckets; ++b) gather(b, copied_in[b]);
      wait_published(/*host_too=*/false);
    }
    zero_gradients();
    return result;
  }
  if (config_.gradient_clipping > 0) {
    result.clip_coef = std::min(1.0, config_.gradient_clipping / (result.grad_norm + 1e-6));
  }
  ++step_count_;

  // 3. AdamW bucket by bucket; each bucket's parameters go back and are gathered while the next one updates.
  started = Clock::now();
  AdamWStep base;
  base.lr = lr;
  base.beta1 = config_.beta1;
  base.beta2 = config_.beta2;
  base.eps = config_.eps;
  base.step = step_count_;
  // Gradients are sums over ranks: averaging and clipping fold into one scale.
  base.grad_scale = result.clip_coef / world;
  // The device part first: its kernels run while the host updates its part.
  for (int b = 0; b < buckets; ++b) update_bucket(b, base, /*runs=*/nullptr, parity_);
  if (delayed) {  // this step's host part starts in the background
    join_and_copy_in();
    for (int b = 0; b < buckets; ++b) gather(b, copied_in[b]);
    start_host_update(base);
    parity_ = 1 - parity_;
  } else {
    const std::vector<Runs> runs = host_runs();
    for (int b = 0; b < buckets; ++b) {
      update_bucket(b, base, &runs[b], parity_);
      gather(b, copy_in(b, parity_));
    }
  }
  result.times.update_ms = elapsed_ms(started) + join_ms;

  // 4. The next forward pass reads the gathered parameters: order it after them.
  started = Clock::now();
  wait_published(device_sync);
  zero_gradients();
  result.times.gather_wait_ms = elapsed_ms(started);
  result.applied = true;
  return result;
}

void ZeroOptimizer::zero_gradients() {
  flat_grads_.zero_();
  for (NamedParameter& p : parameters_) {
    if (p.sparse_rows) p.tensor.mutable_grad() = at::Tensor();
  }
}

comm::WorkPtr ZeroOptimizer::copy_in(int bucket, int parity) {
  const int64_t host = host_prefix(bucket);
  if (!staging_ || host == 0) return nullptr;
  at::Tensor target = owned_params(bucket).narrow(0, 0, host);
  const at::Tensor updated = param_staging_[parity].narrow(0, layout_.shard_offset(bucket), host);
  comm::WorkPtr work = packs_rows(bucket) ? packed_rows_[parity][bucket].copy_in(comm_, updated)
                                          : comm_.copy(target, updated);
  if (work) copy_in_work_.push_back(work);
  return work;
}

void ZeroOptimizer::gather(int bucket, const comm::WorkPtr& after) {
  // Packed rows that came in go into place first, on the compute stream, which the all-gather follows. Not earlier:
  // the compute stream would wait there for every copy in queued before theirs, and so would the host where it
  // synchronises with that stream (the rows' all-reduce, the norm). Measured with the delayed update: the wait moved
  // from the copies in to the reductions.
  const int64_t host = host_prefix(bucket);
  for (auto& by_bucket : packed_rows_) {
    if (host > 0) by_bucket[bucket].put_in_place(owned_params(bucket).narrow(0, 0, host));
  }
  if (!sharded_) return;
  at::Tensor all = bucket_params(bucket);
  gather_work_.push_back(
      comm_.all_gather(owned_params(bucket), all, "all-gather bucket " + std::to_string(bucket), after.get()));
}

void ZeroOptimizer::wait_published(bool host_too) {
  for (auto* works : {&copy_in_work_, &gather_work_}) {
    for (auto& work : *works) {
      work->wait();
      if (host_too) work->synchronize();
    }
  }
}

void ZeroOptimizer::start_host_update(const AdamWStep& base) {
  VT_CHECK(!host_update_.joinable(), "a delayed host update is already running");
  host_update_parity_ = parity_;
  host_update_finished_ = false;
  // This step's copies out, as they are now: the next backward pass replaces the entries of copy_out_work_.
  // The rows in use as they are now: the next step adds to them while this update runs.
  host_update_ = std::thread([this, base, parity = parity_, copies_out = copy_out_work_, runs = host_runs()] {
    try {
      for (const comm::WorkPtr& copy : copies_out) {
        if (copy) copy->synchronize();
      }
      for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) update_bucket(b, base, &runs[b], parity);
    } catch (...) {
      host_update_error_ = std::current_exception();
    }
    host_update_finished_ = true;
  });
}

int ZeroOptimizer::join_host_update() {
  if (!host_update_.joinable()) return -1;
  host_update_.join();
  const int parity = std::exchange(host_update_parity_, -1);
  if (host_update_error_) std::rethrow_exception(std::exchange(host_update_error_, nullptr));
  return parity;
}

void ZeroOptimizer::finish_delayed_update() {
  const int done = join_host_update();
  if (done < 0) return;
  copy_in_work_.clear();
  gather_work_.clear();
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) gather(b, copy_in(b, done));
  wait_published(/*host_too=*/false);
}

TransferTimes ZeroOptimizer::transfer_times() const {
  const auto total = [](const std::vector<comm::WorkPtr>& works) {
    double ms = 0;
    for (const auto& work : works) ms += work ? work->duration_ms() : 0.0;
    return ms;
  };
  return {total(reduce_work_), total(copy_out_work_), total(copy_in_work_), total(gather_work_)};
}

ZeroOptimizer::RowLayout ZeroOptimizer::row_layout(int bucket) const {
  const TensorSlot& slot = layout_.slots()[layout_.buckets()[bucket].slots.front()];
  return {slot, slot.shape[1], layout_.owned_begin(bucket) - layout_.shard_offset(bucket) - slot.flat_offset};
}

bool ZeroOptimizer::packs_rows(int bucket) const {
  return staging_ && !rows_in_use_[bucket].empty() && host_prefix(bucket) > 0;
}

ZeroOptimizer::Runs ZeroOptimizer::runs_to_update(int bucket, int64_t first, int64_t end) const {
  Runs runs;
  if (end == first) return runs;
  if (rows_in_use_[bucket].empty()) return {{first, end - first}};
  const auto [slot, columns, shift] = row_layout(bucket);
  for (int64_t row = (first + shift) / columns; row < slot.shape[0] && row * columns - shift < end; ++row) {
    if (!rows_in_use_[bucket][row]) continue;
    const int64_t begin = std::max(first, row * columns - shift), stop = std::min(end, (row + 1) * columns - shift);
    if (!runs.empty() && runs.back().first + runs.back().second == begin) {
      runs.back().second += stop - begin;
    } else {
      runs.emplace_back(begin, stop - begin);
    }
  }
  return runs;
}

std::vector<ZeroOptimizer::Runs> ZeroOptimizer::host_runs() const {
  std::vector<Runs> runs(layout_.buckets().size());
  for (int b = 0; b < static_cast<int>(runs.size()); ++b) {
    runs[b] = runs_to_update(b, layout_.shard_offset(b), layout_.shard_offset(b) + host_prefix(b));
  }
  return runs;
}

const at::Tensor& ZeroOptimizer::device_rows_index(int bucket) {
  VersionedIndex& built = device_rows_index_[bucket];
  if (rows_in_use_[bucket].empty() || built.version == rows_version_[bucket]) return built.index;
  const int64_t first = layout_.shard_offset(bucket) + host_prefix(bucket);
  built.index = element_index(runs_to_update(bucket, first, layout_.shard_offset(bucket) + layout_.owned_numel(bucket)),
                              first, comm_.device());
  built.version = rows_version_[bucket];
  return built.index;
}

void ZeroOptimizer::find_rows_in_use() {
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
    std::vector<uint8_t>& used = rows_in_use_[b];
    if (used.empty()) continue;
    std::fill(used.begin(), used.end(), 0);
    ++rows_version_[b];
    const auto [slot, columns, shift] = row_layout(b);
    for (const StatePiece& piece : state_pieces(layout_.shard_offset(b), layout_.owned_numel(b))) {
      const ShardState& state = state_of(piece);
      const at::Tensor m = state.exp_avg.narrow(0, piece.local_offset, piece.numel).cpu();
      const at::Tensor v = state.exp_avg_sq.narrow(0, piece.local_offset, piece.numel).cpu();
      const float* mp = m.data_ptr<float>();
      const float* vp = v.data_ptr<float>();
      for (int64_t i = 0; i < piece.numel; ++i) {
        const int64_t element = piece.shard_offset + i + shift;
        if ((mp[i] != 0.0f || vp[i] != 0.0f) && element < slot.numel) used[element / columns] = 1;
      }
    }
    comm_.all_reduce_host(used, comm::Communicator::Reduction::max, "rows in use of '" + slot.name + "'");
  }
}

void ZeroOptimizer::fill_param_staging() {
  if (!staging_) return;
  for (at::Tensor& staging : param_staging_) {
    for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
      const int64_t host = host_prefix(b);
      if (host == 0) continue;
      at::Tensor target = staging.narrow(0, layout_.shard_offset(b), host);
      comm_.copy(target, owned_params(b).narrow(0, 0, host))->synchronize();
    }
  }
}

int64_t ZeroOptimizer::sparse_rows_in_use() const {
  int64_t count = 0;
  for (const auto& used : rows_in_use_) count += std::count(used.begin(), used.end(), uint8_t{1});
  return count;
}

void ZeroOptimizer::update_bucket(int bucket, const AdamWStep& base, const Runs* runs, int parity) {
  const bool host_part = runs != nullptr;
  if (host_part && packs_rows(bucket)) {
    const PackedRows& packed = packed_rows_[parity][bucket];
    VT_CHECK(packed.runs() == *runs, "bucket ", bucket, ": the rows its gradients were copied out by are not the rows "
             "in use to update");
    packed.unpack(host_grads_[parity].narrow(0, layout_.shard_offset(bucket), host_prefix(bucket)));
  }
  AdamWStep hyper = base;
  for (const auto& segment : layout_.owned_segments()) {
    if (segment.bucket != bucket) continue;
    hyper.weight_decay = groups_[segment.group].weight_decay;
    for (const StatePiece& piece : state_pieces(segment.shard_offset, segment.numel)) {
      if (piece.host != host_part) continue;
      const int64_t offset = piece.shard_offset, n = piece.numel;
      const ShardState& state = state_of(piece);
      at::Tensor master = state.master.narrow(0, piece.local_offset, n);
      at::Tensor exp_avg = state.exp_avg.narrow(0, piece.local_offset, n);
      at::Tensor exp_avg_sq = state.exp_avg_sq.narrow(0, piece.local_offset, n);
      at::Tensor params = flat_params_.narrow(0, segment.flat_offset + (offset - segment.shard_offset), n);
      if (piece.host) {
        Runs parts;  // the runs inside this piece, from its start
        for (const auto& [begin, count] : *runs) {
          const int64_t lo = std::max(begin, offset), hi = std::min(begin + count, offset + n);
          if (lo < hi) parts.emplace_back(lo - offset, hi - lo);
        }
        char* grad = static_cast<char*>(host_grads_[parity].narrow(0, offset, n).data_ptr());
        char* out = static_cast<char*>((staging_ ? param_staging_[parity].narrow(0, offset, n) : params).data_ptr());
        const int64_t element = static_cast<int64_t>(c10::elementSize(model_dtype_));
        const auto update = [&](const std::pair<int64_t, int64_t>& part, HostThreadPool* pool) {
          const auto [begin, count] = part;
          adamw_host(hyper, master.data_ptr<float>() + begin, exp_avg.data_ptr<float>() + begin,
                     exp_avg_sq.data_ptr<float>() + begin, grad + begin * element, model_dtype_,
                     out + begin * element, model_dtype_, count, pool);
        };
        if (parts.size() == 1) {
          update(parts.front(), pool_.get());  // one long run: split over the threads
        } else if (!parts.empty()) {           // rows in use: whole runs to each thread
          pool_->parallel_for(static_cast<int64_t>(parts.size()), 1, [&](int, int64_t first, int64_t last) {
            for (int64_t i = first; i < last; ++i) update(parts[i], nullptr);
          });
        }
        continue;
      }
      const at::Tensor grad = grad_shard_.narrow(0, offset, n);
      const at::Tensor& rows = device_rows_index(bucket);
      if (rows.defined()) {  // the rows in use: gathered, updated, written back (a few MB instead of the table)
        for (int64_t begin = 0; begin < rows.numel(); begin += kDeviceChunk) {
          const at::Tensor index = rows.narrow(0, begin, std::min(kDeviceChunk, rows.numel() - begin));
          at::Tensor m = master.index_select(0, index), a = exp_avg.index_select(0, index);
          at::Tensor v = exp_avg_sq.index_select(0, index), p = params.index_select(0, index);
          adamw_device(hyper, m, a, v, grad.index_select(0, index), p);
          master.index_copy_(0, index, m);
          exp_avg.index_copy_(0, index, a);
          exp_avg_sq.index_copy_(0, index, v);
          params.index_copy_(0, index, p);
        }
        continue;
      }
      for (int64_t begin = 0; begin < n; begin += kDeviceChunk) {
        const int64_t m = std::min(kDeviceChunk, n - begin);
        adamw_device(hyper, master.narrow(0, begin, m), exp_avg.narrow(0, begin, m), exp_avg_sq.narrow(0, begin, m),
                     grad.narrow(0, begin, m), params.narrow(0, begin, m));
      }
    }
  }
}

void ZeroOptimizer::copy_parameters_to_master() {
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
    for (const StatePiece& piece : state_pieces(layout_.shard_offset(b), layout_.owned_numel(b))) {
      state_of(piece).master.narrow(0, piece.local_offset, piece.numel)
          .copy_(owned_params(b).narrow(0, piece.shard_offset - layout_.shard_offset(b), piece.numel));
    }
  }
}

void ZeroOptimizer::reset_state() {
  VT_CHECK(!host_update_.joinable(), "optimizer state reset while a delayed update is running");
  for (ShardState* state : {&host_state_, &device_state_}) {
    state->exp_avg.zero_();
    state->exp_avg_sq.zero_();
  }
  copy_parameters_to_master();
  step_count_ = 0;
}

std::vector<StateSpan> ZeroOptimizer::state_spans() {
  VT_CHECK(!host_update_.joinable(), "optimizer state read while a delayed update is running: finish_delayed_update() first");
  std::vector<StateSpan> spans;
  for (const auto& span : layout_.canonical_spans()) {
    for (const StatePiece& piece : state_pieces(span.shard_offset, span.numel)) {
      const ShardState& state = state_of(piece);
      spans.push_back(StateSpan{span.canonical_offset + (piece.shard_offset - span.shard_offset), piece.numel,
                                state.master.narrow(0, piece.local_offset, piece.numel),
                                state.exp_avg.narrow(0, piece.local_offset, piece.numel),
                                state.exp_avg_sq.narrow(0, piece.local_offset, piece.numel)});
    }
  }
  return spans;
}

void ZeroOptimizer::publish_master_weights() {
  VT_CHECK(!host_update_.joinable(), "master weights published while a delayed update is running");
  std::vector<comm::WorkPtr> gathers;
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
    at::Tensor owned = owned_params(b);
    for (const StatePiece& piece : state_pieces(layout_.shard_offset(b), layout_.owned_numel(b))) {
      owned.narrow(0, piece.shard_offset - layout_.shard_offset(b), piece.numel)
          .copy_(state_of(piece).master.narrow(0, piece.local_offset, piece.numel));
    }
    if (sharded_) {
      at::Tensor bucket = bucket_params(b);
      gathers.push_back(comm_.all_gather(owned, bucket, "all-gather bucket " + std::to_string(b) + " (load)"));
    }
  }
  for (auto& work : gathers) work->wait();
  find_rows_in_use();
  fill_param_staging();
}

ZeroOptimizer::Footprint ZeroOptimizer::footprint() const {
  Footprint print{0, 0};
  auto count = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    (t.device().is_cpu() ? print.host_bytes : print.device_bytes) += t.nbytes();
  };
  count(flat_params_);
  count(flat_grads_);
  if (sharded_) count(grad_shard_);
  if (staging_) {
    for (const at::Tensor& t : host_grads_) count(t);
    for (const at::Tensor& t : param_staging_) count(t);
  }
  for (const ShardState* state : {&host_state_, &device_state_}) {
    count(state->master);
    count(state->exp_avg);
    count(state->exp_avg_sq);
  }
  return print;
}

}  // namespace vesseltune::optim
