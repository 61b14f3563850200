#include "vesseltune/optim/packed_rows.h"

#include <algorithm>
#include <cstring>

#include "vesseltune/core/check.h"

namespace vesseltune::optim {
namespace {

// Between a range's buffer (RANGE, from shard element FIRST) and the packed one: the runs, one after the other in
// PACKED; into PACKED when PACK, out of it otherwise.
void move_runs(const ElementRuns& runs, int64_t first, char* range, char* packed, size_t element, bool pack) {
  for (const auto& [begin, count] : runs) {
    char* spread = range + (begin - first) * element;
    std::memcpy(pack ? packed : spread, pack ? spread : packed, count * element);
    packed += count * element;
  }
}

}  // namespace

at::Tensor element_index(const ElementRuns& runs, int64_t first, const at::Device& device) {
  int64_t total = 0;
  for (const auto& run : runs) total += run.second;
  const bool gpu = !device.is_cpu();
  at::Tensor host = at::empty({total}, at::TensorOptions().dtype(at::kLong).pinned_memory(gpu));
  int64_t* out = host.data_ptr<int64_t>();
  for (const auto& [begin, count] : runs) {
    for (int64_t i = 0; i < count; ++i) *out++ = begin - first + i;
  }
  return host.to(device, /*non_blocking=*/gpu);
}

void PackedRows::set_runs(ElementRuns runs, int64_t first, int64_t version, comm::Communicator& comm,
                          at::ScalarType dtype, bool pinned) {
  VT_CHECK(!arrived_, "packed rows re-laid out before their last copy in was put in place");
  runs_ = std::move(runs);
  first_ = first;
  version_ = version;
  numel_ = 0;
  for (const auto& run : runs_) numel_ += run.second;
  index_ = element_index(runs_, first_, comm.device());
  if (on_host_.defined() && on_host_.numel() >= numel_) return;
  // The old buffers may still be in a copy's hands.
  for (const comm::WorkPtr& copy : {last_out_, last_in_}) {
    if (copy) copy->synchronize();
  }
  const int64_t capacity = std::max<int64_t>(numel_, on_host_.defined() ? 2 * on_host_.numel() : 0);
  on_device_ = at::empty({capacity}, at::TensorOptions().dtype(dtype).device(comm.device()));
  on_host_ = comm.empty_host(capacity, dtype, pinned);
}

comm::WorkPtr PackedRows::copy_out(comm::Communicator& comm, const at::Tensor& device_part) {
  VT_CHECK(version_ >= 0, "packed rows copied out before their runs were set");
  if (numel_ == 0) return nullptr;
  at::Tensor packed = on_device_.narrow(0, 0, numel_);
  at::index_select_out(packed, device_part, 0, index_);
  at::Tensor host = on_host_.narrow(0, 0, numel_);
  last_out_ = comm.copy(host, packed);
  return last_out_;
}

void PackedRows::unpack(at::Tensor host_part) const {
  move_runs(runs_, first_, static_cast<char*>(host_part.data_ptr()), static_cast<char*>(on_host_.data_ptr()),
            host_part.element_size(), /*pack=*/false);
}

comm::WorkPtr PackedRows::copy_in(comm::Communicator& comm, const at::Tensor& host_part) {
  if (numel_ == 0) return nullptr;
  move_runs(runs_, first_, static_cast<char*>(host_part.data_ptr()), static_cast<char*>(on_host_.data_ptr()),
            host_part.element_size(), /*pack=*/true);
  at::Tensor packed = on_device_.narrow(0, 0, numel_);
  last_in_ = comm.copy(packed, on_host_.narrow(0, 0, numel_));
  arrived_ = true;
  return last_in_;
}

void PackedRows::put_in_place(at::Tensor device_part) {
  if (!arrived_) return;
  arrived_ = false;
  last_in_->wait();
  device_part.index_copy_(0, index_, on_device_.narrow(0, 0, numel_));
}

}  // namespace vesseltune::optim
