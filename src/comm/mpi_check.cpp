#include "mpi_check.h"

#include <mpi.h>

#include <limits>

#include "vesseltune/core/check.h"

namespace vesseltune::comm {

void check_mpi(int code, const std::string& label) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  VT_FAIL(label, " failed: ", std::string(text, length));
}

int mpi_count(int64_t numel, const std::string& label) {
  VT_CHECK(numel <= std::numeric_limits<int>::max(), label, ": ", numel,
           " elements exceed MPI's int count; lower the bucket size");
  return static_cast<int>(numel);
}

}  // namespace vesseltune::comm
