#pragma once
// Faults on purpose, for the fault campaign (tests/faults/): the environment variable
//   VESSELTUNE_FAULT=POINT:RANK:ACTION[:SKIP]      e.g. validation:1:stop, step:1:kill:3
// makes rank RANK, when it reaches the named point for the first time after SKIP passes (default 0), stop itself (SIGSTOP: a hung rank), kill itself
// (SIGKILL: a dead rank) or throw (an error on one rank). Unset, every point is a no-op. The points:
//   step              the start of a training step (before forward and backward)
//   norm              before the gradient norm's all-reduce
//   validation        after the first validation batch
//   checkpoint-write  while this rank writes its optimizer state into a checkpoint
//   eval-gather       before vesseltune-eval gathers the ranks' metrics

namespace vesseltune::fault {

void point(const char* name, int rank);

}  // namespace vesseltune::fault
