#include "vesseltune/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>

#include "vesseltune/comm/watchdog.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"

namespace vesseltune::comm {
namespace {

void check_cuda(cudaError_t code, const std::string& what) {
  VT_CHECK(code == cudaSuccess, what, " failed: ", cudaGetErrorString(code));
}

void check_nccl(ncclResult_t code, const std::string& what) {
  VT_CHECK(code == ncclSuccess, what, " failed: ", ncclGetErrorString(code));
}

ncclDataType_t nccl_type(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16: return ncclBfloat16;
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    default: VT_FAIL("no NCCL type for ", dtype);
  }
}

cudaEvent_t make_event(bool timing = false) {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  return event;
}

cudaStream_t compute_stream() { return static_cast<cudaStream_t>(compat::current_cuda_stream()); }

// One operation on a stream, between two events: made after the stream was ordered and before the operation is
// enqueued (start), finished right after it (done).
class StreamWork final : public Work {
 public:
  explicit StreamWork(cudaStream_t stream) : stream_(stream), start_(make_event(true)), done_(make_event(true)) {
    check_cuda(cudaEventRecord(start_, stream_), "cudaEventRecord");
  }
  ~StreamWork() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(done_);
  }
  void finish() { check_cuda(cudaEventRecord(done_, stream_), "cudaEventRecord"); }
  void wait() override { check_cuda(cudaStreamWaitEvent(compute_stream(), done_, 0), "cudaStreamWaitEvent"); }
  void synchronize() override { check_cuda(cudaEventSynchronize(done_), "cudaEventSynchronize"); }
  bool is_completed() override { return cudaEventQuery(done_) == cudaSuccess; }
  double duration_ms() override {
    synchronize();
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start_, done_), "cudaEventElapsedTime");
    return ms;
  }
  cudaEvent_t event() const { return done_; }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_;
  cudaEvent_t done_;
};

}  // namespace

struct NcclCommunicator::State {
  int device = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t comm_stream = nullptr;
  // One copy stream per direction: a GPU's two copy engines then move gradients out and parameters in at once.
  cudaStream_t copy_to_host_stream = nullptr;
  cudaStream_t copy_to_device_stream = nullptr;

  // Orders `stream` after the caller's compute stream and after `after`. The event is per call because
  // autograd's device thread and the main thread both launch operations.
  void order(cudaStream_t stream, const Work* after) {
    cudaEvent_t ready = make_event();
    check_cuda(cudaEventRecord(ready, compute_stream()), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);  // released once the wait has been satisfied
    if (after) {
      const auto* previous = dynamic_cast<const StreamWork*>(after);
      VT_CHECK(previous != nullptr, "NCCL operations can only wait for work of the same communicator");
      check_cuda(cudaStreamWaitEvent(stream, previous->event(), 0), "cudaStreamWaitEvent");
    }
  }
};

int NcclCommunicator::visible_devices() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

NcclCommunicator::NcclCommunicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog)
    : Communicator(std::move(world), std::move(watchdog)), state_(std::make_unique<State>()) {
  const int devices = visible_devices();
  VT_CHECK(world_.local_rank < devices, world_.describe(world_.rank), " is local rank ", world_.local_rank, " but ",
           devices, " GPU(s) are visible on ", world_.host, ": launch one rank per GPU");
  state_->device = world_.local_rank;
  check_cuda(cudaSetDevice(state_->device), "cudaSetDevice");
  compat::set_cuda_device(state_->device);

  ncclUniqueId id;
  if (world_.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  VT_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, world_.comm) == MPI_SUCCESS, "MPI_Bcast of the NCCL id failed");
  check_nccl(ncclCommInitRank(&state_->comm, world_.size, id, world_.rank),
             "ncclCommInitRank on " + world_.describe(world_.rank));
  check_cuda(cudaStreamCreateWithFlags(&state_->comm_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_cuda(cudaStreamCreateWithFlags(&state_->copy_to_host_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_cuda(cudaStreamCreateWithFlags(&state_->copy_to_device_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (watchdog_) {
    watchdog_->add_before_abort([comm = state_->comm] { ncclCommAbort(comm); });
  }
}

NcclCommunicator::~NcclCommunicator() {
  cudaStreamSynchronize(state_->comm_stream);
  cudaStreamSynchronize(state_->copy_to_host_stream);
  cudaStreamSynchronize(state_->copy_to_device_stream);
  ncclCommDestroy(state_->comm);
  cudaStreamDestroy(state_->comm_stream);
  cudaStreamDestroy(state_->copy_to_host_stream);
  cudaStreamDestroy(state_->copy_to_device_stream);
}

at::Device NcclCommunicator::device() const { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(state_->device)); }

static void check_cuda_tensor(const at::Tensor& tensor, const std::string& label) {
  check_collective_dtype(tensor, label);
  VT_CHECK(tensor.is_cuda(), label, ": the NCCL backend takes CUDA tensors, got ", tensor.device());
}

WorkPtr NcclCommunicator::all_reduce(at::Tensor& tensor, const std::string& label, const Work* after) {
  check_cuda_tensor(tensor, label);
  state_->order(state_->comm_stream, after);
  auto work = std::make_shared<StreamWork>(state_->comm_stream);
  check_nccl(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()),
                           ncclSum, state_->comm, state_->comm_stream),
             label);
  work->finish();
  if (watchdog_) watchdog_->watch(work, watch_label(label));
  return work;
}

WorkPtr NcclCommunicator::reduce_scatter(const at::Tensor& input, at::Tensor& output, const std::string& label,
                                         const Work* after) {
  check_cuda_tensor(input, label);
  check_cuda_tensor(output, label);
  VT_CHECK(input.scalar_type() == output.scalar_type(), label, ": input and output dtypes differ");
  VT_CHECK(input.numel() == output.numel() * size(), label, ": input has ", input.numel(), " elements, expected ",
           size(), " x ", output.numel());
  state_->order(state_->comm_stream, after);
  auto work = std::make_shared<StreamWork>(state_->comm_stream);
  check_nccl(ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(), nccl_type(input.scalar_type()),
                               ncclSum, state_->comm, state_->comm_stream),
             label);
  work->finish();
  if (watchdog_) watchdog_->watch(work, watch_label(label));
  return work;
}

WorkPtr NcclCommunicator::all_gather(const at::Tensor& input, at::Tensor& output, const std::string& label,
                                     const Work* after) {
  check_cuda_tensor(input, label);
  check_cuda_tensor(output, label);
  VT_CHECK(input.scalar_type() == output.scalar_type(), label, ": input and output dtypes differ");
  VT_CHECK(output.numel() == input.numel() * size(), label, ": output has ", output.numel(), " elements, expected ",
           size(), " x ", input.numel());
  state_->order(state_->comm_stream, after);
  auto work = std::make_shared<StreamWork>(state_->comm_stream);
  check_nccl(ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input.scalar_type()),
                           state_->comm, state_->comm_stream),
             label);
  work->finish();
  if (watchdog_) watchdog_->watch(work, watch_label(label));
  return work;
}

WorkPtr NcclCommunicator::broadcast(at::Tensor& tensor, int root, const std::string& label, const Work* after) {
  check_cuda_tensor(tensor, label);
  state_->order(state_->comm_stream, after);
  auto work = std::make_shared<StreamWork>(state_->comm_stream);
  check_nccl(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), root,
                           state_->comm, state_->comm_stream),
             label);
  work->finish();
  if (watchdog_) watchdog_->watch(work, watch_label(label));
  return work;
}

WorkPtr NcclCommunicator::copy(at::Tensor& destination, const at::Tensor& source, const Work* after) {
  VT_CHECK(destination.nbytes() == source.nbytes() && destination.scalar_type() == source.scalar_type(),
           "copy: destination and source differ in size or dtype");
  VT_CHECK(destination.is_contiguous() && source.is_contiguous(), "copy: tensors must be contiguous");
  const cudaStream_t stream = destination.is_cuda() ? state_->copy_to_device_stream : state_->copy_to_host_stream;
  state_->order(stream, after);
  auto work = std::make_shared<StreamWork>(stream);
  check_cuda(cudaMemcpyAsync(destination.data_ptr(), source.data_ptr(), source.nbytes(), cudaMemcpyDefault, stream),
             "cudaMemcpyAsync");
  work->finish();
  return work;
}

at::Tensor NcclCommunicator::empty_host(int64_t numel, at::ScalarType dtype, bool pinned) {
  const auto options = at::TensorOptions().dtype(dtype);
  if (!pinned) return at::zeros({numel}, options);
  void* data = nullptr;
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  check_cuda(cudaHostAlloc(&data, std::max<size_t>(bytes, 1), cudaHostAllocDefault),
             "cudaHostAlloc of " + std::to_string(bytes >> 20) + " MiB pinned host memory");
  std::memset(data, 0, bytes);
  return at::from_blob(data, {numel}, [](void* pointer) { cudaFreeHost(pointer); }, options);
}

}  // namespace vesseltune::comm
