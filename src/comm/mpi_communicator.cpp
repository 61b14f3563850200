#include "vesseltune/comm/mpi_communicator.h"

#include <c10/util/BFloat16.h>

#include <chrono>

#include "mpi_check.h"
#include "vesseltune/comm/watchdog.h"
#include "vesseltune/core/check.h"

namespace vesseltune::comm {
namespace {

using Clock = std::chrono::steady_clock;

// MPI calls return when done: the work is complete, and took the host time since `started`.
class CompletedWork final : public Work {
 public:
  explicit CompletedWork(Clock::time_point started)
      : duration_ms_(std::chrono::duration<double, std::milli>(Clock::now() - started).count()) {}
  void wait() override {}
  void synchronize() override {}
  bool is_completed() override { return true; }
  double duration_ms() override { return duration_ms_; }

 private:
  double duration_ms_;
};

// bf16 travels as 16-bit words; the sum is formed in fp32 and rounded back, as NCCL does.
void bf16_sum(void* in, void* inout, int* count, MPI_Datatype*) {
  const auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *count; ++i) b[i] = c10::BFloat16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

MPI_Datatype mpi_type(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return MPI_UINT16_T;
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    default: VT_FAIL("no MPI type for ", dtype);
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog)
    : Communicator(std::move(world), std::move(watchdog)) {
  check_mpi(MPI_Op_create(&bf16_sum, /*commute=*/1, &bf16_sum_), "MPI_Op_create(bf16 sum)");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && bf16_sum_ != MPI_OP_NULL) MPI_Op_free(&bf16_sum_);
}

void MpiCommunicator::check_cpu(const at::Tensor& tensor, const std::string& label) const {
  check_collective_dtype(tensor, label);
  VT_CHECK(tensor.device().is_cpu(), label, ": the MPI backend takes CPU tensors, got ", tensor.device());
}

WorkPtr MpiCommunicator::all_reduce(at::Tensor& tensor, const std::string& label, const Work*) {
  const auto started = Clock::now();
  check_cpu(tensor, label);
  const MPI_Op op = tensor.scalar_type() == at::kBFloat16 ? bf16_sum_ : MPI_SUM;
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), mpi_count(tensor.numel(), label),
                          mpi_type(tensor.scalar_type()), op, world_.comm),
            label);
  return std::make_shared<CompletedWork>(started);
}

WorkPtr MpiCommunicator::reduce_scatter(const at::Tensor& input, at::Tensor& output, const std::string& label,
                                        const Work*) {
  const auto started = Clock::now();
  check_cpu(input, label);
  check_cpu(output, label);
  VT_CHECK(input.scalar_type() == output.scalar_type(), label, ": input and output dtypes differ");
  VT_CHECK(input.numel() == output.numel() * size(), label, ": input has ", input.numel(), " elements, expected ",
           size(), " x ", output.numel());
  const auto* in_begin = static_cast<const char*>(input.data_ptr());
  const auto* out_begin = static_cast<const char*>(output.data_ptr());
  VT_CHECK(out_begin + output.nbytes() <= in_begin || out_begin >= in_begin + input.nbytes(), label,
           ": reduce-scatter output must not overlap its input on the MPI backend");
  const MPI_Op op = input.scalar_type() == at::kBFloat16 ? bf16_sum_ : MPI_SUM;
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Reduce_scatter_block(input.data_ptr(), output.data_ptr(), mpi_count(output.numel(), label),
                                     mpi_type(input.scalar_type()), op, world_.comm),
            label);
  return std::make_shared<CompletedWork>(started);
}

WorkPtr MpiCommunicator::all_gather(const at::Tensor& input, at::Tensor& output, const std::string& label,
                                    const Work*) {
  const auto started = Clock::now();
  check_cpu(input, label);
  check_cpu(output, label);
  VT_CHECK(input.scalar_type() == output.scalar_type(), label, ": input and output dtypes differ");
  VT_CHECK(output.numel() == input.numel() * size(), label, ": output has ", output.numel(), " elements, expected ",
           size(), " x ", input.numel());
  const int count = mpi_count(input.numel(), label);
  const MPI_Datatype type = mpi_type(input.scalar_type());
  const bool in_place =
      static_cast<const char*>(input.data_ptr()) == static_cast<const char*>(output.data_ptr()) + rank() * input.nbytes();
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Allgather(in_place ? MPI_IN_PLACE : input.data_ptr(), count, type, output.data_ptr(), count, type,
                          world_.comm),
            label);
  return std::make_shared<CompletedWork>(started);
}

WorkPtr MpiCommunicator::broadcast(at::Tensor& tensor, int root, const std::string& label, const Work*) {
  const auto started = Clock::now();
  check_cpu(tensor, label);
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Bcast(tensor.data_ptr(), mpi_count(tensor.numel(), label), mpi_type(tensor.scalar_type()), root,
                      world_.comm),
            label);
  return std::make_shared<CompletedWork>(started);
}

WorkPtr MpiCommunicator::copy(at::Tensor& destination, const at::Tensor& source, const Work*) {
  const auto started = Clock::now();
  if (destination.data_ptr() != source.data_ptr()) destination.copy_(source);
  return std::make_shared<CompletedWork>(started);
}

at::Tensor MpiCommunicator::empty_host(int64_t numel, at::ScalarType dtype, bool) {
  return at::zeros({numel}, at::TensorOptions().dtype(dtype));
}

}  // namespace vesseltune::comm
