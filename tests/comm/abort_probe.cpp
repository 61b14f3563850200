// A small distributed program that fails on purpose, run by CTest through expect_failure.sh:
//   fingerprint-mismatch  the last rank has another config: every rank must end with the message
//   stalled-rank          rank 1 never joins a collective: the watchdog (2 s) must end every rank
//   dead-rank             rank 1 dies before a collective: mpirun must end every rank
#include <unistd.h>

#include <thread>

#include "vesseltune/comm/fingerprint.h"
#include "vesseltune/comm/launch.h"
#include "vesseltune/core/check.h"

using namespace vesseltune;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  return comm::run_ranks(argc, argv, [&](const comm::World& world) {
    VT_CHECK(world.size >= 2, "abort_probe needs at least 2 ranks");
    auto communicator = comm::make_communicator(world, comm::Backend::mpi, std::chrono::seconds(2));
    if (mode == "fingerprint-mismatch") {
      comm::Fingerprint fingerprint;
      fingerprint.add("config", world.rank == world.size - 1 ? "lr: 2e-4" : "lr: 1e-4");
      comm::verify_fingerprint(*communicator, fingerprint);
    } else if (mode == "stalled-rank") {
      if (world.rank == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
      communicator->set_phase("step 7");
      communicator->barrier("barrier before step");
    } else if (mode == "dead-rank") {
      if (world.rank == 1) _exit(9);
      at::Tensor t = at::ones({4});
      communicator->all_reduce(t, "all-reduce after a rank died");
    } else {
      VT_FAIL("unknown mode '", mode, "'");
    }
    return 0;
  });
}
