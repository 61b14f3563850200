#pragma once
// ZeRO stage 0/1/2 data parallelism with AdamW, for any set of LibTorch parameters.
//
// Data flow of one optimizer step (G micro-steps of gradient accumulation):
//   begin_micro_step(false); backward   x (G-1)   gradients accumulate into the flat gradient buffer, no traffic
//   begin_micro_step(true);  backward             stage 2: each bucket is reduce-scattered from an autograd hook
//                                                 as soon as its gradients are final, overlapping the backward
//   step(lr)                                      remaining reductions -> [copy out to host] -> global norm (one
//                                                 scalar all-reduce) -> AdamW on the owned shard (fp32 master,
//                                                 clipping folded in) -> [copy in] -> all-gather of parameters
// A tensor whose gradients arrive as sparse rows (an Embedding with sparse gradients) is reduced in step(), by the
// rows the ranks' batches used (comm::all_reduce_rows) instead of whole: it is the last gradient of the backward
// pass, and as one dense reduction it could not overlap anything. Its gradient stays the sparse rows autograd
// accumulates, with no place in the flat gradient buffer (sa2va-4b's embed_tokens: 620 MB less per GPU). Where its
// state is on the host, its gradients go out and its parameters come back as the rows in use alone (PackedRows).
// With offload, the first offload_ratio of the shard (the buckets reduced first) has its state on the host and
// crosses PCIe; the rest keeps its state on the device and updates there while the host updates its part.
// With delayed_update (after its warm-up), step(t) starts the host part's AdamW on a background thread and returns;
// step(t+1) waits for it, copies its parameters in and gathers them with its own device part. Host gradients and
// updated host parameters then have two buffers each (one per step parity), so that step t+1's gradients are copied
// out while step t's update still reads its own.
// Parameters and gradients live in one flat buffer each (see FlatLayout); each parameter's data and (dense) grad
// are views into them, so autograd accumulates straight into the buffer that is reduced.

#include <ATen/ATen.h>

#include <memory>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vesseltune/comm/communicator.h"
#include "vesseltune/comm/fingerprint.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/optim/adamw_kernel.h"
#include "vesseltune/optim/flat_layout.h"
#include "vesseltune/optim/host_thread_pool.h"
#include "vesseltune/optim/packed_rows.h"
#include "vesseltune/optim/zero_config.h"

namespace torch::nn {
class Module;
}

namespace vesseltune::optim {

struct ParamGroup {
  std::string name;
  double weight_decay = 0.0;
};

struct NamedParameter {
  std::string name;
  at::Tensor tensor;
  int group = 0;             // index into the groups given to the optimizer
  bool sparse_rows = false;  // its gradients arrive as sparse rows: an Embedding with sparse gradients
};

// The two usual groups: 0 "decay" (config.weight_decay), 1 "no_decay" (biases, norms, 1-D tensors).
std::vector<ParamGroup> default_param_groups(const ZeroConfig& config);
// The module's parameters that require grad, in registration order, 1-D tensors in group 1; the weights of
// Embeddings with sparse gradients marked sparse_rows.
std::vector<NamedParameter> trainable_parameters(const torch::nn::Module& module);

// Host wall-clock milliseconds of the parts of step() that the caller waits for.
struct StepTimes {
  double reduce_wait_ms = 0;  // remaining reductions and copies out, after the backward pass
  double norm_ms = 0;         // local sum of squares and the scalar all-reduce
  double update_ms = 0;       // AdamW over the owned shard (copies in and all-gathers are issued meanwhile); with
                              // a delayed update, waiting for the previous step's host part
  double gather_wait_ms = 0;  // remaining copies in and all-gathers
  double total_ms() const { return reduce_wait_ms + norm_ms + update_ms + gather_wait_ms; }
};

// Durations of the last step's transfers, summed over buckets, each on its own stream (overlapped with
// compute or not): what they cost the copy engines and the network, as opposed to what the step waited for.
struct TransferTimes {
  double reduce_ms = 0;    // reduce-scatter (stage 2) or all-reduce (stage 0/1) of the gradients
  double copy_out_ms = 0;  // device → pinned host, reduced gradient shards (offload)
  double copy_in_ms = 0;   // pinned host → device, updated parameter shards (offload)
  double gather_ms = 0;    // all-gather of the updated parameters (stage 1/2)
};

struct StepResult {
  bool applied = false;   // false: non-finite gradient norm, step skipped on every rank
  double grad_norm = 0;   // global L2 norm of the averaged gradient, before clipping
  double clip_coef = 1;
  StepTimes times;
};

// This rank's optimizer state for one canonical span: views into its shard (host or device, fp32).
struct StateSpan {
  int64_t canonical_offset;
  int64_t numel;
  at::Tensor master;
  at::Tensor exp_avg;
  at::Tensor exp_avg_sq;
};

class ZeroOptimizer {
 public:
  // Collective. Verifies the run fingerprint (`identity` plus trainable tensors, layout and optimizer
  // settings) across ranks first. Parameters must already be on the communicator's device, all in one dtype
  // (bf16 or fp32), and must not be moved afterwards.
  ZeroOptimizer(std::vector<NamedParameter> parameters, std::vector<ParamGroup> groups, ZeroConfig config,
                comm::Communicator& comm, comm::Fingerprint identity = {});
  ~ZeroOptimizer();
  ZeroOptimizer(const ZeroOptimizer&) = delete;
  ZeroOptimizer& operator=(const ZeroOptimizer&) = delete;

  // Call before each micro-step's backward pass; `boundary` marks the last micro-step before step().
  void begin_micro_step(bool boundary);
  // After the boundary micro-step's backward: reduce, clip, update, gather; zeroes the gradients.
  StepResult step(double lr);
  // The last applied step's transfers (waits for them to complete). For benchmarks.
  TransferTimes transfer_times() const;
  // With delayed_update: waits for the host update still running and publishes its parameters on every rank
  // (collective), so that the model holds every step taken. Call before using the parameters or the state for
  // anything but the next micro-step (validation, checkpoints, the end of training); a no-op when none is pending.
  void finish_delayed_update();

  const FlatLayout& layout() const { return layout_; }
  const ZeroConfig& config() const { return config_; }
  int64_t step_count() const { return step_count_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  // The ranks this optimizer is sharded over: checkpoints of its state are collective over them.
  comm::Communicator& communicator() const { return comm_; }
  int host_threads() const { return pool_ ? pool_->threads() : 0; }
  int64_t host_state_numel() const { return host_numel_; }  // shard elements whose state is on the host
  // Rows of sparse-rows tensors in use: some rank's gradient had them since the first step (or, after a checkpoint
  // was loaded, their state is not zero). Counted only where the tensor's group has no weight decay: there AdamW
  // leaves a row with zero state and zero gradient exactly as it is, and the host or the device updates the rows in
  // use alone (sa2va-4b's embed_tokens: the prompts' vocabulary, ~10^3 of 151,677 rows, instead of 311M elements).
  int64_t sparse_rows_in_use() const;

  // Checkpoint interface. Spans are in canonical order, world-size independent. With stage 0 the state is
  // replicated (every rank returns all of it; one rank should write it). No delayed update may be pending.
  std::vector<StateSpan> state_spans();
  bool state_replicated() const { return config_.stage == 0; }
  void set_step_count(int64_t step) { step_count_ = step; }
  // After the spans were filled from a checkpoint: writes the master weights into the model's parameters on
  // every rank (collective).
  void publish_master_weights();
  // After spans were filled from a checkpoint that then failed its checks: the state of a new optimizer again
  // (master weights from the model's parameters, which only publish_master_weights changes; zero moments; step 0).
  void reset_state();

  // Memory this rank holds for training state, in bytes (for the memory plan).
  struct Footprint {
    int64_t device_bytes;
    int64_t host_bytes;
  };
  Footprint footprint() const;

 private:
  void on_gradient_accumulated(int slot, const at::Tensor& added);
  // End of a boundary backward pass: which tensors got no gradient (without_gradient_); logs them once.
  void note_tensors_without_gradient();
  // The sum over ranks of a sparse-rows bucket's gradients, into its owned shard and copied out like the others.
  void reduce_rows(int bucket);
  // The host part of BUCKET's reduced gradients to pinned memory (staging only), after AFTER and the compute stream.
  void copy_out(int bucket, const comm::Work* after);
  // After a step: the flat gradients are zeroed and the sparse rows dropped for the next one.
  void zero_gradients();
  void launch_reduction(int bucket);
  void launch_ready_reductions();
  void check_grads_alias() const;
  void copy_parameters_to_master();
  // Where the state of shard range [offset, offset + numel) lives: a host piece, then a device piece.
  struct StatePiece {
    bool host;
    int64_t shard_offset;
    int64_t local_offset;  // in the host or device state tensors
    int64_t numel;
  };
  std::vector<StatePiece> state_pieces(int64_t offset, int64_t numel) const;
  struct ShardState {
    at::Tensor master, exp_avg, exp_avg_sq;  // fp32
  };
  const ShardState& state_of(const StatePiece& piece) const { return piece.host ? host_state_ : device_state_; }
  int64_t host_prefix(int bucket) const;  // elements of the bucket's owned range whose state is on the host
  // Runs of shard elements (offset, count) that AdamW updates in shard range [first, end) of BUCKET: all of it, or
  // the rows in use of a sparse-rows bucket.
  using Runs = ElementRuns;
  Runs runs_to_update(int bucket, int64_t first, int64_t end) const;
  // Those of every bucket's host part.
  std::vector<Runs> host_runs() const;
  // The device part of a sparse-rows bucket with rows in use: its elements to update, as indices from the part's
  // start on the device (built when the rows in use change; undefined when the whole part updates).
  const at::Tensor& device_rows_index(int bucket);
  // The tensor of a sparse-rows bucket and where its rows lie in this rank's shard.
  struct RowLayout {
    const TensorSlot& slot;
    int64_t columns;
    int64_t shift;  // shard offset x holds element x + shift of the tensor
  };
  RowLayout row_layout(int bucket) const;
  // Whether BUCKET's host part crosses PCIe as its rows in use alone (packed_rows_).
  bool packs_rows(int bucket) const;
  // After a checkpoint was loaded: the rows in use are those with state, on any rank.
  void find_rows_in_use();
  // The host part's staging buffers hold every parameter of it (rows left out of an update keep theirs).
  void fill_param_staging();
  // AdamW with hyper-parameters BASE (weight decay by group) on the bucket's device part, or on the RUNS of its host
  // part reading and writing the buffers of step parity PARITY.
  void update_bucket(int bucket, const AdamWStep& base, const Runs* runs, int parity);
  // Delayed update: the host part of every bucket on a background thread, after the copies out it reads.
  void start_host_update(const AdamWStep& base);
  // Waits for it (rethrows its error); returns the parity of the buffers it wrote, or -1 when none was pending.
  int join_host_update();
  // Copies the host part's new parameters of BUCKET in from the buffers of PARITY (staging only; else null); then
  // puts packed rows in place and all-gathers the bucket after AFTER (stage >= 1). The works join copy_in_work_ and
  // gather_work_.
  comm::WorkPtr copy_in(int bucket, int parity);
  void gather(int bucket, const comm::WorkPtr& after);
  // Orders the current stream after those works (and, HOST_TOO, waits for them on the host).
  void wait_published(bool host_too);
  at::Tensor owned_params(int bucket);
  at::Tensor bucket_params(int bucket);

  std::vector<NamedParameter> parameters_;
  std::vector<ParamGroup> groups_;
  ZeroConfig config_;
  comm::Communicator& comm_;
  FlatLayout layout_;
  at::ScalarType model_dtype_;
  bool sharded_;        // stage >= 1
  int64_t host_numel_;  // offload: shard elements [0, host_numel_) update on the host with the SIMD kernel
  bool staging_;        // offload from a GPU: their reduced gradients and new parameters cross PCIe

  at::Tensor flat_params_;   // device, model dtype, padded flat order
  at::Tensor flat_grads_;    // device, model dtype, FlatLayout::gradient_numel() elements
  at::Tensor grad_shard_;    // device, reduced gradients of the owned shard (aliases flat_grads_ at stage 0)
  // By step parity (one buffer without delayed_update): the host part's reduced gradients (a view of grad_shard_,
  // or their pinned host copy), and its updated parameters in model dtype (staging only).
  std::vector<at::Tensor> host_grads_;
  std::vector<at::Tensor> param_staging_;
  int parity_ = 0;           // the buffers this step's host part uses
  ShardState host_state_;    // shard elements [0, host_numel_)
  ShardState device_state_;  // shard elements [host_numel_, shard)

  std::unique_ptr<HostThreadPool> pool_;
  std::vector<std::unique_ptr<compat::GradAccumulatedHook>> hooks_;

  // Reduction bookkeeping of the current boundary backward pass (hooks may run on autograd's threads).
  std::mutex mutex_;
  bool boundary_ = false;
  bool overlap_ = false;  // stage 2 with overlap_comm: dense buckets go out from the hooks, during the backward
  std::vector<char> slot_ready_;
  std::vector<int> bucket_pending_;
  int next_bucket_ = 0;
  // Tensors that got no gradient in the last boundary backward pass (Sa2VA: SAM2's IoU and object-score heads, which
  // its loss does not use) count as ready from the start of the next one, so that their bucket does not wait for the
  // end of it. One that gets a gradient after its bucket went out has that bucket reduced again in step().
  std::vector<char> without_gradient_;
  std::vector<char> got_gradient_;            // in this boundary backward pass
  std::vector<unsigned char> reduce_again_;   // by bucket
  bool reported_without_gradient_ = false;
  int dense_buckets_ = 0;  // the buckets before the sparse-rows ones (FlatLayout puts those last)
  // By bucket, for sparse-rows tensors without weight decay (else empty): 1 for each row in use.
  std::vector<std::vector<uint8_t>> rows_in_use_;
  // By bucket: how many times rows came into use. What is built from the rows in use (the device index, the
  // packings) remembers the version it was built from, and is rebuilt when that is out of date.
  std::vector<int64_t> rows_version_;
  struct VersionedIndex {
    int64_t version = -1;
    at::Tensor index;
  };
  std::vector<VersionedIndex> device_rows_index_;  // by bucket, see device_rows_index()
  // [parity][bucket]: the host part's rows in use as the copy out of that parity's gradients packed them; the host
  // update and the copy in of the parameters use the same packing.
  std::vector<std::vector<PackedRows>> packed_rows_;
  std::vector<comm::WorkPtr> reduce_work_;
  std::vector<comm::WorkPtr> copy_out_work_;
  std::vector<comm::WorkPtr> copy_in_work_;
  std::vector<comm::WorkPtr> gather_work_;

  // The delayed host update running in the background, and what it needs to hand back.
  std::thread host_update_;
  std::exception_ptr host_update_error_;
  int host_update_parity_ = -1;
  std::atomic<bool> host_update_finished_{false};  // set by the thread as it ends: joining will not wait

  int64_t step_count_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace vesseltune::optim
