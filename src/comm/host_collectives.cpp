// Communicator's host collectives: small vectors in host memory over MPI on the world's communicator, each call
// watched for the collective timeout under its label, with MPI's return code turned into an error that names it.

#include <mpi.h>

#include <cstdint>
#include <numeric>

#include "mpi_check.h"
#include "vesseltune/comm/communicator.h"
#include "vesseltune/comm/watchdog.h"
#include "vesseltune/core/check.h"

namespace vesseltune::comm {
namespace {

template <typename T>
MPI_Datatype host_type();
template <>
MPI_Datatype host_type<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype host_type<int64_t>() { return MPI_INT64_T; }
template <>
MPI_Datatype host_type<uint64_t>() { return MPI_UINT64_T; }
template <>
MPI_Datatype host_type<uint8_t>() { return MPI_UINT8_T; }
template <>
MPI_Datatype host_type<char>() { return MPI_CHAR; }

MPI_Op host_op(Communicator::Reduction reduction) {
  switch (reduction) {
    case Communicator::Reduction::sum: return MPI_SUM;
    case Communicator::Reduction::max: return MPI_MAX;
    case Communicator::Reduction::min: return MPI_MIN;
  }
  VT_FAIL("unknown reduction");
}

}  // namespace

void Communicator::barrier(const std::string& label) {
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Barrier(world_.comm), label);
}

template <typename T>
void Communicator::all_reduce_host(std::vector<T>& values, Reduction reduction, const std::string& label) {
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), mpi_count(static_cast<int64_t>(values.size()), label),
                          host_type<T>(), host_op(reduction), world_.comm),
            label);
}

double Communicator::all_reduce_host(double value, Reduction reduction, const std::string& label) {
  std::vector<double> values{value};
  all_reduce_host(values, reduction, label);
  return values[0];
}

template <typename T>
std::vector<T> Communicator::all_gather_host(const std::vector<T>& values, const std::string& label) {
  // The counts first: a rank that disagrees would otherwise make MPI read past its buffer.
  std::vector<int64_t> counts(static_cast<size_t>(size()));
  const int64_t count = static_cast<int64_t>(values.size());
  {
    CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
    check_mpi(MPI_Allgather(&count, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, world_.comm), label);
  }
  for (int r = 0; r < size(); ++r) {
    VT_CHECK(counts[r] == count, label, ": ", world_.describe(r), " contributes ", counts[r], " values, ",
             world_.describe(rank()), " ", count);
  }
  std::vector<T> all(values.size() * static_cast<size_t>(size()));
  const int n = mpi_count(count, label);
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Allgather(values.data(), n, host_type<T>(), all.data(), n, host_type<T>(), world_.comm), label);
  return all;
}

template <typename T>
std::vector<T> Communicator::gather_host(const std::vector<T>& values, int root, const std::string& label) {
  // Every rank learns every count, so that all of them refuse a total beyond MPI's int alike.
  std::vector<int64_t> counts64(static_cast<size_t>(size()));
  const int64_t count = static_cast<int64_t>(values.size());
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Allgather(&count, 1, MPI_INT64_T, counts64.data(), 1, MPI_INT64_T, world_.comm), label);
  mpi_count(std::accumulate(counts64.begin(), counts64.end(), int64_t{0}), label);
  const std::vector<int> counts(counts64.begin(), counts64.end());
  std::vector<int> offsets(counts.size());
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), 0);
  std::vector<T> all(rank() == root ? static_cast<size_t>(offsets.back() + counts.back()) : 0);
  check_mpi(MPI_Gatherv(values.data(), counts[rank()], host_type<T>(), all.data(), counts.data(), offsets.data(),
                        host_type<T>(), root, world_.comm),
            label);
  return all;
}

template <typename T>
void Communicator::broadcast_host(std::vector<T>& values, int root, const std::string& label) {
  int64_t count = static_cast<int64_t>(values.size());
  CollectiveWatchdog::Scope watch(watchdog_.get(), watch_label(label));
  check_mpi(MPI_Bcast(&count, 1, MPI_INT64_T, root, world_.comm), label);
  values.resize(static_cast<size_t>(count));
  check_mpi(MPI_Bcast(values.data(), mpi_count(count, label), host_type<T>(), root, world_.comm), label);
}

int Communicator::first_failed_rank(bool failed, const std::string& label) {
  std::vector<int64_t> rank_or_size{failed ? rank() : size()};
  all_reduce_host(rank_or_size, Reduction::min, label);
  return rank_or_size[0] < size() ? static_cast<int>(rank_or_size[0]) : -1;
}

#define VT_HOST_COLLECTIVES(T)                                                                          \
  template void Communicator::all_reduce_host<T>(std::vector<T>&, Reduction, const std::string&);      \
  template std::vector<T> Communicator::all_gather_host<T>(const std::vector<T>&, const std::string&); \
  template std::vector<T> Communicator::gather_host<T>(const std::vector<T>&, int, const std::string&); \
  template void Communicator::broadcast_host<T>(std::vector<T>&, int, const std::string&);
VT_HOST_COLLECTIVES(double)
VT_HOST_COLLECTIVES(int64_t)
VT_HOST_COLLECTIVES(uint64_t)
VT_HOST_COLLECTIVES(uint8_t)
VT_HOST_COLLECTIVES(char)
#undef VT_HOST_COLLECTIVES

}  // namespace vesseltune::comm
