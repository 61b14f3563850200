#pragma once
// Collectives over the ranks of a World, behind one interface with two backends:
//   MpiCommunicator  - CPU tensors, blocking MPI calls (so that `mpirun -np N` trains on a CPU-only machine);
//   NcclCommunicator - CUDA tensors, asynchronous on the backend's own streams, ordered after the caller's
//                      compute stream with CUDA events; the host never waits unless it asks to.
// Sums only (gradients, norms, counts); dtypes bf16, fp32, fp64 and int64.
// Host collectives (host_collectives.cpp): a few values in host memory for coordination (totals, flags, agreement,
// file hand-offs), through MPI whatever the backend, each watched by the watchdog under its label, with MPI's
// return code checked. Nothing outside comm/ calls MPI for a collective.

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "vesseltune/comm/world.h"

namespace vesseltune::comm {

class CollectiveWatchdog;

// A launched operation. For MPI it is complete when returned.
class Work {
 public:
  virtual ~Work() = default;
  // Makes the caller's current compute stream wait for the operation (no host synchronisation).
  virtual void wait() = 0;
  // Blocks the calling thread until the operation is complete.
  virtual void synchronize() = 0;
  virtual bool is_completed() = 0;
  // How long the operation itself ran, in milliseconds: on its stream (NCCL, copies), overlapped with other work
  // or not; on the host for MPI. Blocks until it is complete. For benchmarks.
  virtual double duration_ms() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;

  const World& world() const { return world_; }
  int rank() const { return world_.rank; }
  int size() const { return world_.size; }
  virtual const char* backend() const = 0;

  // `label` names the operation for the watchdog ("reduce-scatter bucket 3"); `after`, when given, is an
  // earlier operation of this communicator that must complete first (besides the caller's compute stream).
  virtual WorkPtr all_reduce(at::Tensor& tensor, const std::string& label, const Work* after = nullptr) = 0;
  // input has size() * output.numel() elements; output receives this rank's chunk of the sum.
  virtual WorkPtr reduce_scatter(const at::Tensor& input, at::Tensor& output, const std::string& label,
                                 const Work* after = nullptr) = 0;
  // output has size() * input.numel() elements; input may be this rank's chunk of output (in place).
  virtual WorkPtr all_gather(const at::Tensor& input, at::Tensor& output, const std::string& label,
                             const Work* after = nullptr) = 0;
  virtual WorkPtr broadcast(at::Tensor& tensor, int root, const std::string& label, const Work* after = nullptr) = 0;

  // Copies between device and host memory on the backend's copy streams, one per direction (so that copies
  // overlap collectives, compute and each other), after `after` completes. For CPU tensors it is a plain copy.
  virtual WorkPtr copy(at::Tensor& destination, const at::Tensor& source, const Work* after = nullptr) = 0;
  // Host memory suited to this backend's copies: page-locked (pinned) for CUDA when `pinned`.
  virtual at::Tensor empty_host(int64_t numel, at::ScalarType dtype, bool pinned) = 0;
  // The device this backend's tensors live on.
  virtual at::Device device() const = 0;

  // Labels that the watchdog reports next to the operation, e.g. "step 120".
  void set_phase(const std::string& phase);

  // Host collectives. T is one of double, int64_t, uint64_t, uint8_t, char.
  enum class Reduction { sum, max, min };
  // Every rank has reached this point (a rank 0 file hand-off, the end of a save).
  void barrier(const std::string& label);
  // VALUES reduced element-wise over the ranks, in place; every rank passes the same count.
  template <typename T>
  void all_reduce_host(std::vector<T>& values, Reduction reduction, const std::string& label);
  double all_reduce_host(double value, Reduction reduction, const std::string& label);
  // Every rank's VALUES in rank order; the count must be the same on every rank (checked, naming the rank).
  template <typename T>
  std::vector<T> all_gather_host(const std::vector<T>& values, const std::string& label);
  // Every rank's VALUES in rank order on ROOT, counts may differ; other ranks get an empty vector.
  template <typename T>
  std::vector<T> gather_host(const std::vector<T>& values, int root, const std::string& label);
  // ROOT's VALUES on every rank (any count: receivers are resized).
  template <typename T>
  void broadcast_host(std::vector<T>& values, int root, const std::string& label);
  // The lowest rank that passes FAILED true, or -1 when none did: ranks agree on a failure some of them saw before
  // a collective that the others would otherwise wait in forever.
  int first_failed_rank(bool failed, const std::string& label);

 protected:
  Communicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog);
  std::string watch_label(const std::string& label) const;

  World world_;
  std::shared_ptr<CollectiveWatchdog> watchdog_;
  std::string phase_;
};

// Element type of a tensor in collectives; throws for unsupported dtypes naming the operation.
void check_collective_dtype(const at::Tensor& tensor, const std::string& label);

}  // namespace vesseltune::comm
