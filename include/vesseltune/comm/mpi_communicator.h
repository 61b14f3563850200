#pragma once
// Collectives on CPU tensors through MPI. Every call blocks until done (watched by the watchdog), so the
// returned Work is already complete. bf16 sums use a user-defined MPI operation (MPI has no bf16 type).

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog);
  ~MpiCommunicator() override;

  const char* backend() const override { return "mpi"; }
  WorkPtr all_reduce(at::Tensor& tensor, const std::string& label, const Work* after) override;
  WorkPtr reduce_scatter(const at::Tensor& input, at::Tensor& output, const std::string& label,
                         const Work* after) override;
  WorkPtr all_gather(const at::Tensor& input, at::Tensor& output, const std::string& label, const Work* after) override;
  WorkPtr broadcast(at::Tensor& tensor, int root, const std::string& label, const Work* after) override;
  WorkPtr copy(at::Tensor& destination, const at::Tensor& source, const Work* after) override;
  at::Tensor empty_host(int64_t numel, at::ScalarType dtype, bool pinned) override;
  at::Device device() const override { return at::kCPU; }

 private:
  void check_cpu(const at::Tensor& tensor, const std::string& label) const;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
};

}  // namespace vesseltune::comm
