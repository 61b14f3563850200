#!/usr/bin/env bash
# signals.sh BIN_DIR SOURCE_DIR: vesseltune-train under `mpirun -np 2` on the tiny model, interrupted four ways.
#   1. SIGTERM to every rank (what Slurm sends at the time limit): the step finishes, a checkpoint is written,
#      every rank exits 0, run_status.json says "stopped"; --resume auto continues from that step to the end.
#   2. SIGUSR1 to rank 0 only (sbatch --signal reaches every rank; here one is enough): both ranks stop cleanly.
#   3. The file WORK_DIR/STOP (for launchers that do not forward signals): the same clean stop, file removed.
#   4. SIGKILL to one rank: every rank ends, the job exits non-zero within the collective timeout, and no
#      vesseltune-train process is left behind.
#   5. SIGTERM to mpirun itself, with the kill timeout the job scripts give Open MPI: the ranks save and stop
#      cleanly before anything is killed; run_status.json says "stopped" (mpirun itself exits 1).
set -uo pipefail
BIN=$1
SRC=$2
WORK=$(mktemp -d /tmp/vt_signals.XXXXXX)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
trap 'pkill -KILL -f "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*"; for f in "$WORK"/*.out; do echo "== $f"; tail -20 "$f"; done; exit 1; }

"$BIN/vesseltune-pack" synth "$WORK/data" --count 40 --size 64 >/dev/null || fail "packing the synthetic set"

train() {  # train WORK_DIR [options...]: mpirun in the background, its pid in $JOB
  local dir=$1; shift
  mpirun ${MPIRUN_OPTIONS:-} --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 "$BIN/vesseltune-train" \
    --config "$SRC/configs/tiny_vessel.yaml" --data "$WORK/data" --work-dir "$dir" \
    --set model.tokenizer="$SRC/configs/tiny/tokenizer.json" --set model.sam2_image_size=128 \
    --set train.micro_batch=1 --set train.val_interval=0 --set train.log_interval=1 --set loss.num_points=1024 \
    --set runtime.collective_timeout_s=20 "$@" >"$dir.out" 2>&1 &
  JOB=$!
}
# The two rank processes of a run (mpirun's command line names the work dir too, so select by program name).
rank_pids() { ps -eo pid=,comm=,args= | awk -v dir="$1" '$2 == "vesseltune-trai" && index($0, dir) { print $1 }'; }
wait_for() {  # wait_for FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 2))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.5; done
  fail "no /$2/ in $1 after $3 s"
}
expect_clean_stop() {  # expect_clean_stop WORK_DIR CAUSE (as the log names it)
  wait "$JOB"; local status=$?
  [ "$status" -eq 0 ] || fail "$1: exit $status after the stop request, expected 0"
  grep -qF "stop requested ($2)" "$1/train.log" || fail "$1: no 'stop requested ($2)' in the log"
  grep -q '"state": "stopped"' "$1/run_status.json" || fail "$1: run_status.json does not say stopped"
  ls "$1"/checkpoints/step_*.h5 >/dev/null 2>&1 || fail "$1: no checkpoint after the stop"
}

# 1. SIGTERM to every rank, then resume to the end.
DIR=$WORK/term
train "$DIR" --set train.max_steps=1000
wait_for "$DIR/train.log" "iter: 2," 120
kill -TERM $(rank_pids "$DIR")
expect_clean_stop "$DIR" "signal 15"
STOPPED=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' "$DIR/run_status.json")
echo "SIGTERM: stopped cleanly at step $STOPPED"
train "$DIR" --resume auto --set train.max_steps=$((STOPPED + 2))
wait "$JOB" || fail "resume after SIGTERM failed"
grep -q "resumed from .*step_$(printf %08d "$STOPPED").h5: step $STOPPED" "$DIR/train.log" || fail "resume did not start at step $STOPPED"
grep -q '"state": "finished"' "$DIR/run_status.json" || fail "the resumed run did not finish"
echo "SIGTERM: resumed from step $STOPPED and finished at step $((STOPPED + 2))"

# 2. SIGUSR1 to rank 0 only (the first rank process started).
DIR=$WORK/usr1
train "$DIR" --set train.max_steps=1000
wait_for "$DIR/train.log" "iter: 2," 120
kill -USR1 "$(rank_pids "$DIR" | head -1)"
wait "$JOB" || fail "$DIR: non-zero exit after SIGUSR1 to one rank"
grep -qE "stop requested \((signal 10|a signal on another rank)\)" "$DIR/train.log" || fail "$DIR: no stop after SIGUSR1"
grep -q '"state": "stopped"' "$DIR/run_status.json" || fail "$DIR: run_status.json does not say stopped"
echo "SIGUSR1 to one rank: every rank stopped cleanly"

# 3. The stop file.
DIR=$WORK/file
train "$DIR" --set train.max_steps=1000
wait_for "$DIR/train.log" "iter: 2," 120
touch "$DIR/STOP"
expect_clean_stop "$DIR" "file $DIR/STOP"
[ ! -e "$DIR/STOP" ] || fail "$DIR/STOP is still there after the stop"
echo "STOP file: stopped cleanly, file removed"

# 4. SIGKILL to rank 1 (the one that is not rank 0, found by its log file).
DIR=$WORK/kill
train "$DIR" --set train.max_steps=1000
wait_for "$DIR/train.log" "iter: 2," 120
VICTIM=$(rank_pids "$DIR" | tail -1)
kill -KILL "$VICTIM"
START=$SECONDS
wait "$JOB"; STATUS=$?
ELAPSED=$((SECONDS - START))
[ "$STATUS" -ne 0 ] || fail "the job exited 0 after a rank was killed"
[ "$ELAPSED" -le 30 ] || fail "the job took $ELAPSED s to end after a rank was killed (timeout 20 s)"
sleep 1
[ -z "$(rank_pids "$DIR")" ] || fail "vesseltune-train processes left behind: $(rank_pids "$DIR")"
echo "SIGKILL to one rank: job ended with exit $STATUS after $ELAPSED s, no process left"

# 5. SIGTERM to mpirun. Open MPI passes it on to the ranks odls_base_sigkill_timeout seconds later and kills them as
#    long after that (the default, 1 s, kills them in the middle of the save).
DIR=$WORK/mpirun_term
MPIRUN_OPTIONS="--mca odls_base_sigkill_timeout 30" train "$DIR" --set train.max_steps=1000
wait_for "$DIR/train.log" "iter: 2," 120
kill -TERM "$JOB"
wait "$JOB"; STATUS=$?
grep -qF "stop requested (signal 15)" "$DIR/train.log" || fail "$DIR: no stop after SIGTERM to mpirun"
grep -q '"state": "stopped"' "$DIR/run_status.json" || fail "$DIR: run_status.json does not say stopped"
! ls "$DIR"/checkpoints/*.tmp >/dev/null 2>&1 || fail "$DIR: a checkpoint was left half written"
echo "SIGTERM to mpirun: every rank saved and stopped cleanly (mpirun exit $STATUS)"
echo "PASS"
