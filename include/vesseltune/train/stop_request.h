#pragma once
// Preemption: SIGTERM (Slurm's time limit and scancel, mpirun's forwarding) and SIGUSR1 (sbatch --signal, sent
// ahead of preemption) ask the run to stop (so does the file WORK_DIR/STOP, which the trainer looks for: not
// every mpirun forwards SIGUSR1 — Open MPI 4.1.6 on the GPU machine does not, Debian's 4.1.4 does). The handler only records the signal; the trainer looks at it after
// each optimizer step, agrees with the other ranks through the step's all-reduce (a signal reaching one rank
// stops all of them at the same step), saves a checkpoint and exits 0.

namespace vesseltune::train {

// Installs the handlers for SIGTERM and SIGUSR1 (idempotent).
void install_stop_handlers();

// The signal received so far, or 0.
int stop_signal();

}  // namespace vesseltune::train
