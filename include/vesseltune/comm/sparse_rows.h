#pragma once
// The all-reduce of a gradient that is zero outside a few rows: an embedding's, whose rows are the tokens a rank
// looked up (sa2va-4b: a few hundred of 151,677 rows, 1 MB of a 620 MB gradient). Every rank names the rows it
// wrote; the ranks exchange those indices, sum the named rows of everybody, and write the sums back. The result is
// what an all-reduce of the whole tensor gives (rows nobody named are zero everywhere), for the cost of the rows.

#include <ATen/ATen.h>

#include <string>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

// Collective. GRAD: [rows, columns], contiguous, on the communicator's device; ROWS: int64 indices into its first
// dimension on the same device, any number per rank (none included), repeats allowed. Rows outside the listed ones
// must be zero on every rank. Afterwards GRAD holds the sum over ranks on every rank, and the caller's stream is
// ordered after the exchange. `label` names it for the watchdog. Returns every rank's rows (on GRAD's device, -1
// where a rank listed fewer than the busiest one); empty when no rank listed any.
at::Tensor all_reduce_rows(Communicator& comm, at::Tensor& grad, const at::Tensor& rows, const std::string& label);

}  // namespace vesseltune::comm
