#include "vesseltune/comm/launch.h"

#include <exception>

#include "vesseltune/comm/mpi_communicator.h"
#include "vesseltune/comm/watchdog.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/core/torch_compat.h"
#ifdef VESSELTUNE_WITH_NCCL
#include "vesseltune/comm/nccl_communicator.h"
#endif

namespace vesseltune::comm {

Backend parse_backend(const std::string& text) {
  if (text == "auto") return Backend::automatic;
  if (text == "mpi") return Backend::mpi;
  if (text == "nccl") return Backend::nccl;
  VT_FAIL("backend must be auto, mpi or nccl, got '", text, "'");
}

std::unique_ptr<Communicator> make_communicator(const World& world, Backend backend, std::chrono::milliseconds timeout) {
  auto watchdog = CollectiveWatchdog::aborting(timeout, world);
#ifdef VESSELTUNE_WITH_NCCL
  const bool gpus = compat::torch_has_cuda() && NcclCommunicator::visible_devices() > 0;
  if (backend == Backend::nccl || (backend == Backend::automatic && gpus)) {
    VT_CHECK(compat::torch_has_cuda(), "the NCCL backend needs a LibTorch built with CUDA");
    return std::make_unique<NcclCommunicator>(world, watchdog);
  }
#else
  VT_CHECK(backend != Backend::nccl, "this build has no NCCL (CUDA toolkit not found at configure time)");
#endif
  return std::make_unique<MpiCommunicator>(world, watchdog);
}

int run_ranks(int argc, char** argv, const std::function<int(const World& world)>& body) {
  MpiSession session(&argc, &argv);
  const World world = World::of(MPI_COMM_WORLD);
  log::Options logging;
  logging.rank = world.rank;
  log::init(logging);
  try {
    return body(world);
  } catch (const std::exception& error) {
    VT_LOG(error) << error.what();
    world.abort(1);
  }
}

}  // namespace vesseltune::comm
