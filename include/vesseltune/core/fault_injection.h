#pragma once
// Faults on purpose, for the fault campaign (tests/faults/): the environment variable
//   VESSELTUNE_FAULT=POINT:RANK:ACTION[:SKIP[:COUNT]]      e.g. validation:1:stop, step:1:kill:3, norm:0:nan:2:3
// makes rank RANK act at the named point on COUNT arrivals (default 1) after SKIP arrivals pass (default 0):
//   stop   SIGSTOP itself (a hung rank)        kill   SIGKILL itself (a dead rank)
//   term   SIGTERM itself (a stop request)      throw  an error on this rank only
//   nan    point() returns true: the caller poisons its value (norm: non-finite gradients)
// Unset, every point is a no-op. The points:
//   step              the start of a training step (before forward and backward)
//   norm              before the gradient norm's all-reduce
//   validation        after each validation batch
//   checkpoint-write  while this rank writes its optimizer state into a checkpoint
//   eval-gather       before vesseltune-eval gathers the ranks' metrics
//   metrics-write     before a row is appended to the metrics file (rank 0): throw = a failed write

namespace vesseltune::fault {

// True when the fault's action is "nan" and it acts on this arrival.
bool point(const char* name, int rank);

}  // namespace vesseltune::fault
