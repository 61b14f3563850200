#pragma once
// The all-reduce of a gradient that is zero outside a few rows: an embedding's, whose rows are the tokens a rank
// looked up (sa2va-4b: a few hundred of 151,677 rows, 1 MB of a 620 MB gradient). Every rank names the rows it
// wrote; the ranks exchange those indices and sum the named rows of everybody. The result is what an all-reduce of
// the whole tensor gives (rows nobody named are zero everywhere), for the cost of the rows, and without the whole
// tensor ever being held.

#include <ATen/ATen.h>

#include <string>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

struct SummedRows {
  at::Tensor rows;  // int64 on the host: every row some rank named, sorted, each once
  at::Tensor sums;  // [rows, columns] on the communicator's device: each row's sum over the ranks
};

// Collective. INDICES: int64 [k]; VALUES: [k, COLUMNS]; both on the communicator's device: this rank's rows of the
// gradient (a sparse gradient's indices and values: any number, none included; a row listed twice is summed).
// Afterwards the caller's stream is ordered after the exchange. `label` names it for the watchdog.
SummedRows all_reduce_rows(Communicator& comm, const at::Tensor& indices, const at::Tensor& values, int64_t columns,
                           const std::string& label);

}  // namespace vesseltune::comm
