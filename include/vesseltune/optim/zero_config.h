#pragma once
// Settings of the sharded optimizer, with DeepSpeed's names and meanings where DeepSpeed has them.

#include <cstdint>
#include <string>

namespace vesseltune::optim {

enum class OffloadDevice { none, cpu };

struct ZeroConfig {
  // 0: gradients all-reduced, every rank keeps the whole optimizer state.
  // 1: optimizer state sharded; gradients reduce-scattered after the backward pass.
  // 2: as 1, and each bucket is reduce-scattered as soon as its gradients are final, during the backward pass.
  int stage = 2;
  bool overlap_comm = true;  // stage 2 only: launch reductions from autograd hooks
  OffloadDevice offload = OffloadDevice::none;
  // offload cpu: the share of each rank's shard whose optimizer state and AdamW live on the host (DeepSpeed's
  // offload_optimizer.ratio); the rest stays on the device and updates there, at the same time. Below 1 it trades
  // device memory (12 bytes per element kept) for a shorter exposed optimizer phase.
  double offload_ratio = 1.0;
  // offload cpu: one-step delayed update of the host part (ZeRO-Offload's "delayed parameter update", Ren et al.
  // 2021, §4.3). Step t's host AdamW runs on the host's threads while the device computes step t+1, whose forward
  // therefore sees the host part's parameters of step t-1. The host update leaves the critical path; the trained
  // parameters lag one step (the device part, with offload_ratio < 1, does not). The first
  // delayed_update_warmup steps are exact (the paper delays only after the early, fast-changing steps).
  bool delayed_update = false;
  int64_t delayed_update_warmup = 40;
  bool pin_memory = true;                      // pinned host buffers for offload (CUDA)
  int64_t reduce_bucket_numel = 500'000'000;   // elements per bucket (DeepSpeed reduce_bucket_size)
  double gradient_clipping = 1.0;              // max global L2 norm; 0 disables
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;                   // for the "decay" group; the "no_decay" group uses 0
  int optimizer_threads = 0;                   // 0: the rank's cores (delayed_update: ¼, ½ alone on a node)
  bool time_phases = false;                    // synchronise between phases to report their times (benchmarks)

  // Of a rank's SHARD_NUMEL owned elements, how many keep their optimizer state on the host: the first
  // offload_ratio of them with offload cpu (rounded), none without (ZeroOptimizer and the memory plan).
  int64_t host_state_numel(int64_t shard_numel) const;
  // Whether step number STEP (counted from 1) delays its host update.
  bool delays_step(int64_t step) const { return delayed_update && step > delayed_update_warmup; }
  // "stage 2, offload cpu, bucket 500000000, clip 1, betas 0.9/0.999, eps 1e-08, wd 0": for logs and fingerprints.
  std::string describe() const;
  // Throws with the field name when a value is out of range.
  void validate() const;
};

const char* to_string(OffloadDevice device);
OffloadDevice parse_offload_device(const std::string& text);  // "none" | "cpu"

}  // namespace vesseltune::optim
