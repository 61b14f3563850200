#include "vesseltune/comm/world.h"

#include <cstdlib>

#include "vesseltune/core/check.h"

namespace vesseltune::comm {

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  VT_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS, "MPI_Init_thread failed");
  thread_multiple_ = provided >= MPI_THREAD_MULTIPLE;
  // Errors come back as codes that we turn into exceptions with context, instead of MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

World World::of(MPI_Comm comm) {
  World world;
  world.comm = comm;
  MPI_Comm_rank(comm, &world.rank);
  MPI_Comm_size(comm, &world.size);

  MPI_Comm node_comm = MPI_COMM_NULL;
  VT_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &node_comm) == MPI_SUCCESS,
           "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed on rank ", world.rank);
  MPI_Comm_rank(node_comm, &world.local_rank);
  MPI_Comm_size(node_comm, &world.local_size);
  MPI_Comm_free(&node_comm);

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  world.host.assign(name, length);
  std::vector<char> all(static_cast<size_t>(world.size) * MPI_MAX_PROCESSOR_NAME, 0);
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm);
  for (int r = 0; r < world.size; ++r) world.hosts.emplace_back(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  return world;
}

World World::subset(bool keep) const {
  MPI_Comm sub = MPI_COMM_NULL;
  VT_CHECK(MPI_Comm_split(comm, keep ? 0 : MPI_UNDEFINED, rank, &sub) == MPI_SUCCESS, "MPI_Comm_split failed on ",
           describe(rank));
  if (sub == MPI_COMM_NULL) return World{};
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  return World::of(sub);
}

std::string World::describe(int of_rank) const {
  std::string text = "rank " + std::to_string(of_rank);
  if (of_rank >= 0 && of_rank < static_cast<int>(hosts.size())) text += " (" + hosts[of_rank] + ")";
  return text;
}

void World::abort(int exit_code) const {
  MPI_Abort(comm == MPI_COMM_NULL ? MPI_COMM_WORLD : comm, exit_code);
  std::_Exit(exit_code);  // MPI_Abort should not return; make sure this process ends regardless
}

}  // namespace vesseltune::comm
