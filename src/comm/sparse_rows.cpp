#include "vesseltune/comm/sparse_rows.h"

#include <mpi.h>

#include "vesseltune/core/check.h"

namespace vesseltune::comm {

at::Tensor all_reduce_rows(Communicator& comm, at::Tensor& grad, const at::Tensor& rows, const std::string& label) {
  VT_CHECK(grad.dim() == 2 && grad.is_contiguous(), label, ": the gradient must be a contiguous matrix, got ",
           grad.sizes());
  VT_CHECK(rows.dim() == 1 && rows.scalar_type() == at::kLong && rows.device() == grad.device(), label,
           ": row indices must be a 1-D int64 tensor on ", grad.device(), ", got ", rows.sizes(), " ",
           rows.scalar_type(), " on ", rows.device());
  // How many indices the busiest rank lists: every rank sends that many (an all-gather has one size). The count
  // is known on the host, so agreeing on it costs no device synchronisation.
  int64_t count = rows.numel(), most = 0;
  VT_CHECK(MPI_Allreduce(&count, &most, 1, MPI_INT64_T, MPI_MAX, comm.world().comm) == MPI_SUCCESS, label,
           ": MPI_Allreduce of the row counts failed on rank ", comm.rank());
  if (most == 0) return at::empty({0}, rows.options());  // nobody wrote a row: the gradient is zero everywhere
  at::Tensor mine = at::full({most}, -1, rows.options());
  mine.narrow(0, 0, count).copy_(rows);
  at::Tensor listed = at::empty({most * comm.size()}, rows.options());
  comm.all_gather(mine, listed, label + " (row indices)")->wait();
  // Padding sums row 0: any row's sum is as correct as the listed ones'.
  const at::Tensor index = listed.clamp_min(0);
  at::Tensor sums = grad.index_select(0, index);
  comm.all_reduce(sums, label)->wait();
  // A row listed twice gets the same sum twice.
  grad.index_copy_(0, index, sums);
  return listed;
}

}  // namespace vesseltune::comm
