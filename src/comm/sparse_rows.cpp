#include "vesseltune/comm/sparse_rows.h"

#include <mpi.h>

#include "vesseltune/core/check.h"

namespace vesseltune::comm {

SummedRows all_reduce_rows(Communicator& comm, const at::Tensor& indices, const at::Tensor& values, int64_t columns,
                           const std::string& label) {
  VT_CHECK(indices.dim() == 1 && indices.scalar_type() == at::kLong && indices.device() == comm.device(), label,
           ": row indices must be a 1-D int64 tensor on ", comm.device(), ", got ", indices.sizes(), " ",
           indices.scalar_type(), " on ", indices.device());
  VT_CHECK(values.dim() == 2 && values.size(0) == indices.size(0) && values.size(1) == columns &&
               values.device() == comm.device(),
           label, ": row values must be [", indices.size(0), ", ", columns, "] on ", comm.device(), ", got ",
           values.sizes(), " on ", values.device());
  // How many indices the busiest rank lists: every rank sends that many (an all-gather has one size). The count
  // is known on the host, so agreeing on it costs no device synchronisation.
  int64_t count = indices.numel(), most = 0;
  VT_CHECK(MPI_Allreduce(&count, &most, 1, MPI_INT64_T, MPI_MAX, comm.world().comm) == MPI_SUCCESS, label,
           ": MPI_Allreduce of the row counts failed on rank ", comm.rank());
  if (most == 0) return {at::empty({0}, at::kLong), at::empty({0, columns}, values.options())};
  at::Tensor mine = at::full({most}, -1, indices.options());
  mine.narrow(0, 0, count).copy_(indices);
  at::Tensor listed = at::empty({most * comm.size()}, indices.options());
  comm.all_gather(mine, listed, label + " (row indices)")->wait();
  // Every rank gets the same sorted rows from the same list; -1 pads the ranks that listed fewer.
  at::Tensor rows = std::get<0>(at::_unique(listed.cpu(), /*sorted=*/true));
  if (rows[0].item<int64_t>() < 0) rows = rows.narrow(0, 1, rows.numel() - 1);
  at::Tensor sums = at::zeros({rows.numel(), columns}, values.options());
  sums.index_add_(0, at::searchsorted(rows.to(comm.device()), indices), values);
  comm.all_reduce(sums, label)->wait();
  return {rows, sums};
}

}  // namespace vesseltune::comm
