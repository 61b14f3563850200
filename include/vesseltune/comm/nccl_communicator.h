#pragma once
// Collectives on CUDA tensors through NCCL. Bootstrap: rank 0 creates the ncclUniqueId, MPI_Bcast carries it,
// every rank calls ncclCommInitRank on its local GPU. Operations run on the communicator's own stream after an
// event recorded on the caller's compute stream; copies run on a separate copy stream. Nothing blocks the host
// unless Work::synchronize() is called. Depends only on the CUDA runtime and NCCL (no CUDA LibTorch needed
// to compile).

#include <memory>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `world`; uses GPU `world.local_rank`, which must exist.
  NcclCommunicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog);
  ~NcclCommunicator() override;

  const char* backend() const override { return "nccl"; }
  WorkPtr all_reduce(at::Tensor& tensor, const std::string& label, const Work* after) override;
  WorkPtr reduce_scatter(const at::Tensor& input, at::Tensor& output, const std::string& label,
                         const Work* after) override;
  WorkPtr all_gather(const at::Tensor& input, at::Tensor& output, const std::string& label, const Work* after) override;
  WorkPtr broadcast(at::Tensor& tensor, int root, const std::string& label, const Work* after) override;
  WorkPtr copy(at::Tensor& destination, const at::Tensor& source, const Work* after) override;
  at::Tensor empty_host(int64_t numel, at::ScalarType dtype, bool pinned) override;
  at::Device device() const override;

  // Number of CUDA devices visible to this process (0 without a driver).
  static int visible_devices();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vesseltune::comm
