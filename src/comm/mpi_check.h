#pragma once
// MPI return codes and counts, checked with the operation's label (comm/ internal: the world's communicators
// return errors instead of aborting, MPI_ERRORS_RETURN).

#include <cstdint>
#include <string>

namespace vesseltune::comm {

// Throws "LABEL failed: <MPI's error text>" unless CODE is MPI_SUCCESS.
void check_mpi(int code, const std::string& label);

// MPI counts are int; our buckets and gathers can be larger.
int mpi_count(int64_t numel, const std::string& label);

}  // namespace vesseltune::comm
