#pragma once
// The rows in use of a sparse-rows tensor's host part, packed for the crossing between device and host. With
// offload, a shard's share of sa2va-4b's embed_tokens (311M elements over the ranks, of which the prompts use ~10^3
// rows) would otherwise go out as gradients and come back as parameters whole, every step, though only its rows in
// use carry a gradient or change.
//
//   out: device gradients --index_select--> packed on the device --copy--> packed, pinned --unpack--> host gradients
//   in:  host parameters --pack--> packed, pinned --copy--> packed on the device --index_copy_--> device parameters
//
// Both directions share the two packed buffers: a step's copy out has been read by its host update before its
// parameters are packed for the copy in, and the next copy out is queued on the device after they were put in place.

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::optim {

// Runs of shard elements: (first element, count), increasing and disjoint.
using ElementRuns = std::vector<std::pair<int64_t, int64_t>>;

// Every element of RUNS, counted from FIRST, as an int64 index on DEVICE. Built in pinned memory on a GPU, so that
// its copy does not wait for the device's queue (the caching host allocator keeps it until the copy has read it).
at::Tensor element_index(const ElementRuns& runs, int64_t first, const at::Device& device);

class PackedRows {
 public:
  // From now on, the RUNS of the range that starts at shard element FIRST; VERSION names the rows in use they came
  // from. The buffers only grow (rows only come into use); when they do, the last copies are waited for first.
  void set_runs(ElementRuns runs, int64_t first, int64_t version, comm::Communicator& comm, at::ScalarType dtype,
                bool pinned);
  int64_t version() const { return version_; }
  const ElementRuns& runs() const { return runs_; }

  // The runs of DEVICE_PART (the range's gradients on the device, from FIRST) to the pinned buffer, after the
  // caller's compute stream; null when there are none.
  comm::WorkPtr copy_out(comm::Communicator& comm, const at::Tensor& device_part);
  // Once that copy is complete: the runs into HOST_PART (the range's host gradients, from FIRST).
  void unpack(at::Tensor host_part) const;
  // The runs of HOST_PART (the range's updated parameters on the host) to the device buffer; null when there are
  // none. put_in_place() then writes them into the parameters.
  comm::WorkPtr copy_in(comm::Communicator& comm, const at::Tensor& host_part);
  // The caller's compute stream waits for the last copy in and writes its runs into DEVICE_PART (the range's
  // parameters on the device, from FIRST); a no-op when none is pending. Called as late as the parameters allow: the
  // wait holds up everything the compute stream does next, and with it any host synchronisation on it.
  void put_in_place(at::Tensor device_part);

 private:
  ElementRuns runs_;
  int64_t first_ = 0;
  int64_t numel_ = 0;  // elements in runs_
  int64_t version_ = -1;
  at::Tensor index_;      // on the device, numel_ elements
  at::Tensor on_device_;  // capacity >= numel_
  at::Tensor on_host_;    // pinned on a GPU, same capacity
  comm::WorkPtr last_out_, last_in_;
  bool arrived_ = false;  // a copy in not yet put in place
};

}  // namespace vesseltune::optim
