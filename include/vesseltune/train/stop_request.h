#pragma once
// Preemption: SIGTERM (Slurm's time limit and scancel, mpirun's forwarding) and SIGUSR1 (sbatch --signal, sent
// ahead of preemption) ask the run to stop. The handler only records the signal; the trainer looks at it after
// each optimizer step, agrees with the other ranks through the step's all-reduce (a signal reaching one rank
// stops all of them at the same step), saves a checkpoint and exits 0.

namespace vesseltune::train {

// Installs the handlers for SIGTERM and SIGUSR1 (idempotent).
void install_stop_handlers();

// The signal received so far, or 0.
int stop_signal();

}  // namespace vesseltune::train
