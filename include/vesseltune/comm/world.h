#pragma once
// The process world under mpirun or srun: MPI lifetime, ranks, node-local ranks, hosts.

#include <mpi.h>

#include <string>
#include <vector>

namespace vesseltune::comm {

// Owns MPI's lifetime. MPI_THREAD_MULTIPLE is requested so that the collective watchdog may abort from its
// own thread while another thread is blocked in a collective.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  bool thread_multiple() const { return thread_multiple_; }

 private:
  bool thread_multiple_ = false;
};

// A group of ranks over one MPI communicator, with each rank's place on its node: one GPU per local rank.
struct World {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the ranks on this node (MPI_COMM_TYPE_SHARED)
  int local_size = 1;
  std::string host;
  std::vector<std::string> hosts;  // host of every rank, indexed by rank

  // Describes `comm` (collective over it). The communicator is borrowed, not freed.
  static World of(MPI_Comm comm);

  // Ranks for which `keep` is true form a new world (collective over this world); others get a world
  // with comm == MPI_COMM_NULL. Used to resume on fewer ranks within one launch (tests).
  World subset(bool keep) const;

  // "rank 3 (node-b, local 1)": how errors name a rank.
  std::string describe(int of_rank) const;

  // Ends every rank of the job: what the top level calls after an error. Never returns.
  [[noreturn]] void abort(int exit_code) const;
};

}  // namespace vesseltune::comm
