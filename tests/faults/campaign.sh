#!/usr/bin/env bash
# campaign.sh BIN_DIR SOURCE_DIR [TABLE]: the fault campaign. The tiny model trains under `mpirun -np 2` (checkpoints
# every 2 steps, validation every 3, collective timeout 10 s) and one fault is injected per row, at a named point
# (VESSELTUNE_FAULT, core/fault_injection.h) or by damaging files. Each row checks what must happen (the job ends
# within the timeout naming the operation, or goes on past the damage) and what must be kept: the newest complete
# checkpoint resumes, and metrics.h5 holds every step up to it. The table (markdown) goes to stdout and to TABLE.
set -uo pipefail
BIN=$1
SRC=$2
TABLE=${3:-}
WORK=$(mktemp -d /tmp/vt_faults.XXXXXX)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 VESSELTUNE_FAULT=""
trap 'pkill -KILL -f "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
TIMEOUT=10  # runtime.collective_timeout_s
PYTHON=/usr/bin/python3  # Debian's h5py lives there
ROWS=()
FAILED=0
KEPT_OK=0

"$BIN/vesseltune-pack" synth "$WORK/data" --count 40 --size 64 >/dev/null || { echo "FAIL: packing"; exit 1; }

MPIRUN=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x VESSELTUNE_FAULT)
train_args() {  # train_args WORK_DIR [options...]: the arguments of one rank
  local dir=$1; shift
  echo --config "$SRC/configs/tiny_vessel.yaml" --data "${DATA:-$WORK/data}" --work-dir "$dir" \
    --set model.tokenizer="$SRC/configs/tiny/tokenizer.json" --set model.sam2_image_size=128 \
    --set train.micro_batch=1 --set train.accumulation=1 --set loss.num_points=1024 --set train.log_interval=1 \
    --set train.save_steps=2 --set train.val_interval=3 --set runtime.collective_timeout_s=$TIMEOUT "$@"
}

since() { awk -v now="$(date +%s.%N)" -v then="$1" 'BEGIN { printf "%.1f", now - then }'; }  # seconds since $1

# run OUT_FILE COMMAND...: runs it (2 minutes at most); sets STATUS and SECONDS_TO_EXIT, counted from the injected
# fault's log line when there is one, else from the start.
run() {
  local out=$1; shift
  local start fault_at="" job
  start=$(date +%s.%N)
  timeout 120 "$@" >"$out" 2>&1 &
  job=$!
  while kill -0 "$job" 2>/dev/null; do
    [ -z "$fault_at" ] && grep -q "VESSELTUNE_FAULT:" "$out" && fault_at=$(date +%s.%N)
    sleep 0.1
  done
  wait "$job"; STATUS=$?
  SECONDS_TO_EXIT=$(since "${fault_at:-$start}")
}
train() {  # train WORK_DIR [options...]
  local dir=$1; shift
  # shellcheck disable=SC2046  # train_args prints one argument per word (no spaces in these paths)
  run "${OUT_FILE:-$dir.out}" "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-train" $(train_args "$dir" "$@")
}
left_behind() { sleep 1; pgrep -f "vesseltune-.*$WORK" >/dev/null && echo "processes left" || true; }

# What a fault must not cost: the newest complete checkpoint (step STEP) resumes, and metrics.h5 has every train step
# up to it. Prints a summary; sets KEPT_OK.
kept() {  # kept WORK_DIR STEP (the row's STATUS and SECONDS_TO_EXIT are left as they were)
  local status=$STATUS seconds=$SECONDS_TO_EXIT
  kept_resume "$1" "$2"
  STATUS=$status SECONDS_TO_EXIT=$seconds
}
kept_resume() {
  local dir=$1 step=$2 name
  name=$(printf "step_%08d.h5" "$step")
  KEPT_OK=0
  [ -f "$dir/checkpoints/$name" ] || { echo "no $name"; return; }
  local steps
  steps=$($PYTHON -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(int(f['train/step'][:].max()))" \
    "$dir/metrics.h5" 2>/dev/null)
  [ "${steps:-0}" -ge "$step" ] || { echo "metrics.h5 ends at step ${steps:-none}"; return; }
  VESSELTUNE_FAULT="" train "$dir" --resume auto --set train.max_steps=$((step + 1))
  if [ "$STATUS" -eq 0 ] && grep -q "resumed from .*$name: step $step" "$dir/train.log"; then
    KEPT_OK=1
    echo "$name resumes; metrics to step $steps"
  else
    echo "$name did not resume (exit $STATUS)"
  fi
}

# row FAULT WHERE EXPECTED OBSERVED OK KEPT
row() {
  ROWS+=("| $1 | $2 | $3 | $4 | ${SECONDS_TO_EXIT} s | $6 | $([ "$5" = 1 ] && echo ok || echo FAILED) |")
  [ "$5" = 1 ] || { FAILED=1; echo "FAILED: $1 at $2: $4"; tail -15 "$LAST_OUT"; }
}

# A fault on rank 1 at POINT (skipping SKIP arrivals) that must end the job within the timeout, naming OPERATION
# (a pattern) when the rank hangs; KEEP is the checkpoint step that must survive (0: none expected).
ends_the_job() {  # ends_the_job ACTION POINT SKIP OPERATION KEEP
  local action=$1 point=$2 skip=$3 operation=$4 keep=$5
  local dir=$WORK/${action}_${point}
  VESSELTUNE_FAULT="$point:1:$action:$skip" train "$dir" --set train.max_steps=8
  LAST_OUT=$dir.out
  local observed="exit $STATUS" ok=1 limit=$((TIMEOUT + 10))
  [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
  grep -q "VESSELTUNE_FAULT: $action at $point" "$dir.out" || { ok=0; observed+=", fault never reached"; }
  awk -v s="$SECONDS_TO_EXIT" -v l="$limit" 'BEGIN { exit !(s <= l) }' || { ok=0; observed+=", slower than $limit s"; }
  if [ "$action" = stop ]; then
    if grep -qE "collective timed out after $TIMEOUT s: $operation" "$dir.out"; then
      observed+=", timed out in '$(grep -oE "collective timed out after $TIMEOUT s: [^,]*" "$dir.out" | head -1 | cut -d: -f2- | xargs)'"
    else
      ok=0; observed+=", no timeout naming /$operation/"
    fi
  fi
  local left; left=$(left_behind); [ -z "$left" ] || { ok=0; observed+=", $left"; }
  local kept_text="(nothing yet)"
  if [ "$keep" -gt 0 ]; then
    kept "$dir" "$keep" >"$WORK/kept.txt"; kept_text=$(cat "$WORK/kept.txt"); [ "$KEPT_OK" = 1 ] || ok=0
  fi
  row "$action rank 1" "$point" "ends ≤ ${limit} s" "$observed" "$ok" "$kept_text"
}

ends_the_job kill step 4 "" 4
ends_the_job stop step 4 "gradient norm|step statistics|reduce" 4
ends_the_job kill norm 4 "" 4
ends_the_job stop norm 4 "gradient norm" 4
# 4 validation images: 2 batches per rank in the validation at step 0, the next ones at step 3.
ends_the_job kill validation 2 "" 2
ends_the_job stop validation 2 "validation totals" 2
ends_the_job kill checkpoint-write 1 "" 2
ends_the_job stop checkpoint-write 1 "checkpoint: rank 1" 2

# Non-finite gradients on one rank (its norm poisoned): a few steps are skipped on every rank and the run goes on;
# max_nonfinite_steps in a row end it with an error naming the last good checkpoint.
DIR=$WORK/nan_few
VESSELTUNE_FAULT="norm:1:nan:4:2" train "$DIR" --set train.max_steps=8
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -eq 0 ] || ok=0
skipped=$(grep -c "step skipped" "$DIR/train.log")
[ "$skipped" -eq 2 ] || ok=0
kept "$DIR" 8 >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
row "NaN gradients, 2 steps" "rank 1's norm" "2 steps skipped, run ends well" "exit $STATUS, $skipped skipped" "$ok" \
  "$(cat "$WORK/kept.txt")"

DIR=$WORK/nan_many
VESSELTUNE_FAULT="norm:1:nan:4:100" train "$DIR" --set train.max_steps=12 --set train.max_nonfinite_steps=5
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
# Steps 5..9 skipped (the weights of step 4, saved again at steps 6 and 8).
grep -q "5 optimizer steps in a row had non-finite gradients .*step_00000008.h5" "$DIR.out" || ok=0
kept "$DIR" 8 >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
row "NaN gradients, every step" "rank 1's norm" "error after 5, naming the last checkpoint" "exit $STATUS" "$ok" \
  "$(cat "$WORK/kept.txt")"

# SIGTERM to one rank in the middle of a save: the save completes, the run stops cleanly after the next step.
DIR=$WORK/term_save
VESSELTUNE_FAULT="checkpoint-write:1:term" train "$DIR" --set train.max_steps=8
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -eq 0 ] || ok=0
grep -q '"state": "stopped"' "$DIR/run_status.json" || ok=0
stopped=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' "$DIR/run_status.json")
kept "$DIR" "${stopped:-0}" >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
row "SIGTERM rank 1" "checkpoint-write" "save completes, clean stop" "exit $STATUS, stopped at step ${stopped:-?}" "$ok" \
  "$(cat "$WORK/kept.txt")"

# A shard chunk changed while the run reads it (after the start-up CRC check): the sample's content hash stops the
# run in the next epoch, naming shard and sample; with the byte restored, the newest checkpoint resumes.
poke() {  # poke FILE OFFSET BYTE
  $PYTHON -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); f.write(bytes([int(sys.argv[3])]))" "$@"
}
export DATA=$WORK/data_damaged
cp -r "$WORK/data" "$DATA"
DIR=$WORK/shard
train_in_background() {
  # shellcheck disable=SC2046
  # 40 steps: two whole epochs of 36 samples on 2 ranks, so every sample is read after the damage.
  timeout 120 "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-train" $(train_args "$DIR" --set train.max_steps=40) >"$DIR.out" 2>&1 &
  JOB=$!
}
train_in_background
for _ in $(seq 240); do grep -q "iter: 2," "$DIR/train.log" 2>/dev/null && break; sleep 0.5; done
read -r OFFSET BYTE < <($PYTHON - "$DATA/train-00000.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    key = sorted(f["samples"].keys())[0]
    info = f["samples"][key]["image"].id.get_chunk_info(0)
offset = info.byte_offset + info.size // 2
with open(sys.argv[1], "rb") as f:
    f.seek(offset)
    print(offset, f.read(1)[0])
EOF
)
poke "$DATA/train-00000.h5" "$OFFSET" $((BYTE ^ 16))
START=$(date +%s.%N)
wait "$JOB"; STATUS=$?
SECONDS_TO_EXIT=$(since "$START")
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
grep -q "train-00000.h5 sample .*dataset 'image' does not match the content hash" "$DIR.out" || ok=0
poke "$DATA/train-00000.h5" "$OFFSET" "$BYTE"
NEWEST=$(ls "$DIR/checkpoints" | sed -n 's/^step_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
kept "$DIR" "${NEWEST:-0}" >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
row "a stored pixel changed" "shard, mid-run" "error naming shard and sample" "exit $STATUS" "$ok" "$(cat "$WORK/kept.txt")"
unset DATA

# A full disk while the run writes (a tmpfs of its own): a checkpoint that does not fit, or not even a metrics row.
# FREE is what is left free after step 2's checkpoint: half of a checkpoint, or nothing.
disk_full() {  # disk_full WHERE FREE(half|none)
  local mnt=$WORK/full_$2
  mkdir -p "$mnt"
  if ! mount -t tmpfs -o size=64m tmpfs "$mnt" 2>/dev/null; then
    SECONDS_TO_EXIT=0; LAST_OUT=/dev/null
    row "disk full" "$1" "error, previous kept" "skipped: cannot mount a tmpfs here" 1 "-"
    return
  fi
  MOUNTS+=("$mnt")
  local dir=$mnt/run
  train "$dir" --set train.max_steps=2
  local size left
  size=$(stat -c %s "$dir/checkpoints/step_00000002.h5")
  left=$([ "$2" = half ] && echo $((size / 2)) || echo 0)
  fallocate -l $(($(df -B1 --output=avail "$mnt" | tail -1) - left)) "$mnt/filler"
  # Its output outside the full file system, where it can be written.
  OUT_FILE=$WORK/full_$2.out train "$dir" --resume auto --set train.max_steps=4
  LAST_OUT=$WORK/full_$2.out
  local ok=1 observed="exit $STATUS"
  [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
  if grep -qiE "disk full|No space left" "$LAST_OUT"; then
    observed+=": $(grep -m1 -oiE "cannot [a-z]+ [a-z]+ [^ ]*|write failed \(disk full\?\)" "$LAST_OUT" | head -1 | sed "s|$mnt/run/||")"
  else
    ok=0; observed+=", no disk-full error"
  fi
  rm -f "$mnt/filler"
  kept "$dir" 2 >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
  row "disk full" "$1" "error, previous kept" "$observed" "$ok" "$(cat "$WORK/kept.txt")"
}
MOUNTS=()
trap 'pkill -KILL -f "$WORK" 2>/dev/null; for m in "${MOUNTS[@]}"; do umount "$m"; done; rm -rf "$WORK"' EXIT
disk_full "a checkpoint that does not fit" half
disk_full "nothing left (metrics rows fit their chunks)" none

# A failed metrics write (injected: the 6th row, step 4's, before its checkpoint): the run ends naming it; the
# checkpoint of step 2 and the rows before stay.
DIR=$WORK/metrics_write
VESSELTUNE_FAULT="metrics-write:0:throw:5" train "$DIR" --set train.max_steps=8
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
grep -q "an injected error at metrics-write" "$DIR.out" || ok=0
kept "$DIR" 2 >"$WORK/kept.txt"; [ "$KEPT_OK" = 1 ] || ok=0
row "metrics write fails" "rank 0, 6th row" "error, previous kept" "exit $STATUS" "$ok" "$(cat "$WORK/kept.txt")"

# The eval gather: a finished run evaluated on 2 ranks, one of which stops or dies before the gather.
BASE=$WORK/base
train "$BASE" --set train.max_steps=4
for action in kill stop; do
  OUT_DIR=$WORK/eval_$action
  VESSELTUNE_FAULT="eval-gather:1:$action" run "$OUT_DIR.out" "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-eval" \
    --checkpoint "$BASE" --data "$WORK/data" --out "$OUT_DIR" --collective-timeout $TIMEOUT
  LAST_OUT=$OUT_DIR.out
  ok=1; observed="exit $STATUS"
  [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
  if [ "$action" = stop ]; then
    grep -qE "collective timed out after $TIMEOUT s: eval: " "$OUT_DIR.out" && observed+=", timed out in the eval gather" ||
      { ok=0; observed+=", no timeout naming the eval gather"; }
  fi
  left=$(left_behind); [ -z "$left" ] || { ok=0; observed+=", $left"; }
  [ -f "$BASE/checkpoints/step_00000004.h5" ] || ok=0
  row "$action rank 1" "eval gather" "ends ≤ $((TIMEOUT + 10)) s" "$observed" "$ok" "the checkpoint (read only)"
done

# Damaged checkpoints: the newest, then every one. The damage is the one Fletcher-32 cannot see: 64 zero bytes of
# optimizer/exp_avg (a moment of rows no batch has used) become 0xFF.
flip() {  # flip FILE
  $PYTHON - "$1" <<'EOF'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    d = f["optimizer/exp_avg"]
    chunk = d.id.get_chunk_info(0)
    raw = d.id.read_direct_chunk(chunk.chunk_offset)[1]
zeros = raw.find(bytes(64))
assert zeros >= 0, "no 64 zero bytes in the first chunk of optimizer/exp_avg"
with open(path, "r+b") as f:
    f.seek(chunk.byte_offset + zeros)
    f.write(b"\xff" * 64)
EOF
}
DIR=$WORK/corrupt
train "$DIR" --set train.max_steps=4
flip "$DIR/checkpoints/step_00000004.h5"
SECONDS_TO_EXIT=0
kept "$DIR" 2 >"$WORK/kept.txt"; KEPT=$(cat "$WORK/kept.txt"); LAST_OUT=$DIR.out
ok=$KEPT_OK; grep -q "skipping checkpoint .*step_00000004.h5" "$DIR/train.log" || ok=0
row "bytes flipped" "newest checkpoint" "skipped, previous resumes" "warning, resumed at step 2" "$ok" "$KEPT"

DIR=$WORK/corrupt_all
train "$DIR" --set train.max_steps=4
for f in "$DIR"/checkpoints/step_*.h5; do flip "$f"; done
sums=$(md5sum "$DIR"/checkpoints/*)
train "$DIR" --resume auto --set train.max_steps=6
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] || ok=0
grep -q "every checkpoint in .* is damaged; nothing was changed" "$DIR.out" || ok=0
[ "$sums" = "$(md5sum "$DIR"/checkpoints/*)" ] || ok=0
row "bytes flipped" "every checkpoint" "refused, each file named" "exit $STATUS, files untouched" "$ok" "every file as it was"

# A config that differs on one rank (MPMD launch): the fingerprint check names the rank and the field.
DIR=$WORK/config
# shellcheck disable=SC2046
run "$DIR.out" "${MPIRUN[@]}" -np 1 "$BIN/vesseltune-train" $(train_args "$DIR" --set train.lr=1e-3) : \
  -np 1 "$BIN/vesseltune-train" $(train_args "$DIR" --set train.lr=2e-3)
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
grep -q "fingerprint mismatch: rank 1 .*differs from rank 0 in field" "$DIR.out" || ok=0
row "train.lr differs" "rank 1" "refused before step 1" "exit $STATUS, fingerprint names rank 1" "$ok" "(nothing to keep)"

# An unreadable tokenizer: a clear error naming the file.
DIR=$WORK/tokenizer
echo "{ not json" >"$WORK/broken_tokenizer.json"
train "$DIR" --set model.tokenizer="$WORK/broken_tokenizer.json"
LAST_OUT=$DIR.out
ok=1; [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || ok=0
grep -q "$WORK/broken_tokenizer.json: not valid JSON" "$DIR.out" || ok=0
[ ! -e "$DIR/tokenizer/tokenizer.json" ] || ok=0
row "tokenizer not JSON" "model.tokenizer" "error naming the file" "exit $STATUS" "$ok" "(nothing to keep)"

{
  echo "| fault | where | expected | observed | time to exit | kept | |"
  echo "|---|---|---|---|---|---|---|"
  printf "%s\n" "${ROWS[@]}"
} | tee ${TABLE:+"$TABLE"}
[ "$FAILED" = 0 ] && echo "PASS" || { echo "FAIL"; exit 1; }
