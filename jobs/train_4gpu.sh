#!/usr/bin/env bash
# One node with several GPUs (default 4): vesseltune-train under mpirun in the background, output to a log file.
#   jobs/train_4gpu.sh configs/sa2va_4b_vessel_lora.yaml --set model.weights=/models/Sa2VA-4B [options...]
# GPUS=2 jobs/train_4gpu.sh ... for another count. A second call with the same config continues the run
# (--resume auto). Stop it cleanly (finish the step, save, exit 0) with: touch WORK_DIR/STOP.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:?usage: jobs/train_4gpu.sh CONFIG [vesseltune-train options...]}
shift
GPUS=${GPUS:-4}
# Host threads: LibTorch's CPU ops get 1 per rank; the offloaded optimizer sizes its own pool per rank.
export OMP_NUM_THREADS=1
mkdir -p logs
LOG=logs/$(basename "$CONFIG" .yaml)_$(date +%Y%m%d_%H%M%S).log
# Open MPI passes a SIGTERM to mpirun on to the ranks after odls_base_sigkill_timeout and kills them as long after:
# 30 s leaves a step and a checkpoint time to finish (the default, 1 s, does not).
nohup mpirun --mca odls_base_sigkill_timeout 30 -np "$GPUS" --bind-to none -x OMP_NUM_THREADS -x LD_LIBRARY_PATH \
  build/bin/vesseltune-train --config "$CONFIG" --resume auto "$@" >"$LOG" 2>&1 &
PID=$!
echo "vesseltune-train: $GPUS ranks, mpirun pid $PID"
echo "  follow:   tail -f $LOG"
echo "  progress: grep 'iter:' $LOG | tail"
WORK_DIR=$(build/bin/vesseltune-train --config "$CONFIG" "$@" --print-work-dir)
echo "  stop:     touch $WORK_DIR/STOP   (the step finishes, a checkpoint is saved, every rank exits 0)"
echo "  continue: jobs/train_4gpu.sh $CONFIG $*"
