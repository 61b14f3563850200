#pragma once
// The top of every distributed executable: MPI up, logging per rank, the communicator for the device, and one
// place where an error ends the whole job cleanly (logged with its rank, then MPI_Abort) instead of a hang.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "vesseltune/comm/communicator.h"

namespace vesseltune::comm {

enum class Backend { automatic, mpi, nccl };
Backend parse_backend(const std::string& text);  // "auto" | "mpi" | "nccl"

// NCCL when this build has NCCL, LibTorch has CUDA and a GPU is visible (for `automatic`); MPI otherwise.
// A watchdog aborts every rank when one operation exceeds `timeout`.
std::unique_ptr<Communicator> make_communicator(const World& world, Backend backend, std::chrono::milliseconds timeout);

// Runs `body(world)` on every rank. An exception is logged with the rank and ends every rank with exit code 1.
int run_ranks(int argc, char** argv, const std::function<int(const World& world)>& body);

}  // namespace vesseltune::comm
