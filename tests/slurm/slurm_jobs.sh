#!/usr/bin/env bash
# slurm_jobs.sh BIN_DIR SOURCE_DIR: jobs/slurm/train.sbatch on a real one-node Slurm cluster (cluster.sh), CPU only
# (GPUS_PER_NODE=0, 2 ranks), the tiny model for 12 steps (60 for the time limit). Each case checks the job's final state in Slurm's job
# completion records and the run itself:
#   1. uninterrupted: COMPLETED, run_status "finished" (the reference losses)
#   2. preempted by a step signal (scancel --signal=USR1), 3. by a batch-shell signal (scancel --batch
#      --signal=USR1), 4. by `scontrol requeue`, 5. by the time limit (--time=1, --signal=USR1@50): each ends
#      COMPLETED after a requeue, with every logged loss equal to the uninterrupted run's
#   6. a rank killed (-9): FAILED within KillWait + 10 s, not requeued, no process left
#   7. mpirun inside an allocation (Open MPI launches through Slurm): COMPLETED
# Skips (exit 0 with a note) where Slurm is not installed.
set -uo pipefail
BIN=$(realpath "$1")
SRC=$(realpath "$2")
command -v slurmctld >/dev/null || { echo "slurm: slurm-wlm not installed, skipped"; exit 0; }
WORK=$(mktemp -d /tmp/vt_slurm_jobs.XXXXXX)
STATE=$WORK/cluster
cleanup() {
  scancel --full --user=root 2>/dev/null
  bash "$SRC/tests/slurm/cluster.sh" down "$STATE"
  pkill -KILL -f "$WORK" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
eval "$(bash "$SRC/tests/slurm/cluster.sh" up "$STATE")" || { echo "FAIL: the cluster did not start"; exit 1; }
PYTHON=/usr/bin/python3
fail() {
  echo "FAIL: $*"
  for f in "$WORK"/logs/*.out; do echo "== $f"; tail -15 "$f"; done
  squeue; sinfo; tail -5 "$STATE/slurmctld.log" "$STATE/slurmd.log"
  exit 1
}

"$BIN/vesseltune-pack" synth "$WORK/data" --count 40 --size 64 >/dev/null || fail "packing"
submit() {  # submit NAME [sbatch options...]: prints the job id (STEPS optimizer steps, 12 by default)
  local name=$1; shift
  (cd "$SRC" && GPUS_PER_NODE=0 TASKS_PER_NODE=2 CPUS_PER_TASK=1 TIME=${TIME:-10} LOG_DIR=$WORK/logs \
    VESSELTUNE_BIN=$BIN CONFIG=configs/tiny_vessel.yaml SBATCH_OPTIONS="--job-name=$name $*" \
    bash jobs/slurm/submit.sh train --data "$WORK/data" --work-dir "$WORK/$name" \
      --set model.sam2_image_size=128 --set train.micro_batch=1 --set loss.num_points=1024 \
      --set train.max_steps="${STEPS:-12}" --set train.save_steps=4 --set train.val_interval=0 --set train.log_interval=1 \
      --set runtime.collective_timeout_s=20) | awk '{print $NF}'
}
# final_state JOB [SECONDS]: waits until the job has left the queue (requeues included); prints its last state.
# Slurm holds a requeued job back for two minutes (its begin time); here it starts again after 3 s (sooner, its
# new credential may carry the second in which the old one was revoked, and the start fails).
final_state() {
  for _ in $(seq $((${2:-180} * 2))); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && break
    if squeue -h -j "$1" -o "%r" 2>/dev/null | grep -q BeginTime; then
      sleep 3
      scontrol update JobId="$1" StartTime=now
    fi
    sleep 0.5
  done
  sed -n "s/^JobId=$1 .*JobState=\([A-Z_]*\).*/\1/p" "$STATE/jobcomp.txt" | tail -1
}
wait_for_step() {  # wait_for_step NAME STEP
  for _ in $(seq 240); do grep -q "iter: $2," "$WORK/$1/train.log" 2>/dev/null && return 0; sleep 0.5; done
  fail "$1 never reached step $2"
}
losses() {  # losses NAME: every logged loss, one line per step
  $PYTHON -c "
import h5py, sys
t = h5py.File(sys.argv[1], 'r')['train']
for row in zip(*(t[c][:] for c in ('step', 'loss_mask', 'loss_dice', 'llm_loss', 'total', 'grad_norm'))):
    print(*(repr(float(v)) for v in row))" "$WORK/$1/metrics.h5"
}
requeued() { grep -c "^JobId=$1 .*JobState=REQUEUED\|^JobId=$1 .*JobState=PREEMPTED" "$STATE/jobcomp.txt"; }
expect_completed_like_reference() {  # NAME JOB [REFERENCE]
  local state; state=$(final_state "$2")
  [ "$state" = COMPLETED ] || fail "$1: job $2 ended $state, expected COMPLETED"
  grep -q '"state": "finished"' "$WORK/$1/run_status.json" || fail "$1: run_status.json does not say finished"
  grep -q "resumed from" "$WORK/$1/train.log" || fail "$1: never resumed (was it interrupted?)"
  [ "$(losses "$1")" = "${3:-$REFERENCE}" ] || fail "$1: the losses differ from the uninterrupted run's"
  echo "$1: COMPLETED after $(grep -c "resumed from" "$WORK/$1/train.log") resume(s), losses equal the reference"
}

# 1. Uninterrupted.
JOB=$(submit reference)
[ "$(final_state "$JOB")" = COMPLETED ] || fail "reference: not COMPLETED"
grep -q '"state": "finished"' "$WORK/reference/run_status.json" || fail "reference: run_status.json not finished"
REFERENCE=$(losses reference)
[ "$(echo "$REFERENCE" | wc -l)" = 12 ] || fail "reference: expected 12 logged steps"
echo "reference: COMPLETED, 12 steps"

# 2. A signal to the job's steps (what --signal=USR1@T without B: does at preemption).
JOB=$(submit step_signal); wait_for_step step_signal 2
scancel --signal=USR1 "$JOB"
expect_completed_like_reference step_signal "$JOB"

# 3. A signal to the batch shell only (B:USR1, scancel --batch): the script passes it on.
JOB=$(submit batch_signal); wait_for_step batch_signal 2
scancel --batch --signal=USR1 "$JOB"
expect_completed_like_reference batch_signal "$JOB"

# 4. scontrol requeue: Slurm ends the job (SIGTERM: the ranks save) and starts it again.
JOB=$(submit requeue); wait_for_step requeue 2
scontrol requeue "$JOB"
expect_completed_like_reference requeue "$JOB"

# 5. The time limit: USR1 55 s before a 1-minute limit (Slurm checks about every 30 s, so it comes 5 to 35 s after
#    the start), a requeue, and so on until the end; 60 steps so that the run outlasts the first signal.
JOB=$(STEPS=60 submit reference_60)
[ "$(final_state "$JOB")" = COMPLETED ] || fail "reference_60: not COMPLETED"
JOB=$(STEPS=60 TIME=1 submit time_limit --signal=USR1@55)
expect_completed_like_reference time_limit "$JOB" "$(losses reference_60)"

# 6. A rank killed: the step ends, the job FAILS and is not requeued, no process is left.
JOB=$(submit killed); wait_for_step killed 2
VICTIM=$(pgrep -f "vesseltune-train .*--work-dir $WORK/killed" | tail -1)
kill -KILL "$VICTIM"
START=$SECONDS
STATE_KILLED=$(final_state "$JOB" 60)
ELAPSED=$((SECONDS - START))
[ "$STATE_KILLED" = FAILED ] || fail "killed: job ended $STATE_KILLED, expected FAILED"
[ "$(requeued "$JOB")" = 0 ] || fail "killed: the job was requeued"
[ "$ELAPSED" -le 20 ] || fail "killed: the job took $ELAPSED s to end (KillWait 10 s)"
sleep 1
pgrep -f "vesseltune-train .*$WORK" >/dev/null && fail "killed: vesseltune-train processes left"
echo "killed: FAILED after $ELAPSED s, not requeued, no process left"

# 7. mpirun inside an allocation.
JOB=$(cd "$SRC" && sbatch --parsable -n 2 -c 1 --time=10 --output="$WORK/logs/mpirun-%j.out" --wrap \
  "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -x OMP_NUM_THREADS=1 $BIN/vesseltune-train \
   --config configs/tiny_vessel.yaml --data $WORK/data --work-dir $WORK/mpirun --set model.sam2_image_size=128 \
   --set train.micro_batch=1 --set loss.num_points=1024 --set train.max_steps=4 --set train.val_interval=0")
[ "$(final_state "$JOB")" = COMPLETED ] || fail "mpirun: not COMPLETED"
grep -q "2 rank" "$WORK/mpirun/train.log" || fail "mpirun: not 2 ranks"
echo "mpirun in an allocation: COMPLETED on 2 ranks"
echo "PASS"
