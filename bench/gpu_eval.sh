#!/usr/bin/env bash
# vesseltune-eval and vesseltune-export on the GPU machine (after `source .gpu/env.sh`): builds them, trains the
# tiny model (configs/tiny_vessel.yaml, bf16) for STEPS steps on 1 GPU, evaluates the checkpoint on up to 2 GPUs in resize
# and tile mode, exports merged weights and a PEFT adapter, and evaluates the merged weights. Logs go to $OUT; the
# metric tables are printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
STEPS=${STEPS:-60}
mkdir -p "$OUT"
cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DVESSELTUNE_BUILD_TESTS=OFF \
  -DVESSELTUNE_BUILD_BENCH=OFF > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target vesseltune-train vesseltune-pack vesseltune-eval vesseltune-export \
  > "$OUT/build.log" 2>&1 || { grep -E "error|Error" -A6 "$OUT/build.log" | head -80; exit 1; }
W=/tmp/vt-eval
rm -rf "$W"
build-gpu/bin/vesseltune-pack synth "$W/data" --count 200 --size 256 -j 16 > "$OUT/pack.log" 2>&1 || { tail "$OUT/pack.log"; exit 1; }
MPI=(mpirun --bind-to none -x OMP_NUM_THREADS=4 -x LD_LIBRARY_PATH)
RANKS=$(( $(nvidia-smi -L | wc -l) >= 2 ? 2 : 1 ))  # one rank per GPU
"${MPI[@]}" -np 1 build-gpu/bin/vesseltune-train --config configs/tiny_vessel.yaml --data "$W/data" --work-dir "$W/run" \
  --set train.max_steps="$STEPS" --set train.val_interval=0 > "$OUT/train.log" 2>&1
echo "== train: exit $?"; grep -E "val: iter|done:" "$OUT/train.log" | cut -c 28- | tail -3
"${MPI[@]}" -np "$RANKS" build-gpu/bin/vesseltune-eval --checkpoint "$W/run" --data "$W/data" --out "$W/eval" > "$OUT/eval.log" 2>&1
echo "== eval (resize, $RANKS GPU(s)): exit $?"
"${MPI[@]}" -np "$RANKS" build-gpu/bin/vesseltune-eval --checkpoint "$W/run" --data "$W/data" --out "$W/eval-tile" --mode tile \
  --tile-size 160 --tile-overlap 32 > "$OUT/eval_tile.log" 2>&1
echo "== eval (tile, $RANKS GPU(s)): exit $?"
build-gpu/bin/vesseltune-export --checkpoint "$W/run" --out "$W/merged" > "$OUT/export.log" 2>&1
echo "== export merged: exit $?"; tail -3 "$OUT/export.log"
build-gpu/bin/vesseltune-export --checkpoint "$W/run" --format peft --out "$W/peft" > "$OUT/export_peft.log" 2>&1
echo "== export peft: exit $?"; ls "$W/peft"
"${MPI[@]}" -np "$RANKS" build-gpu/bin/vesseltune-eval --weights "$W/merged" --data "$W/data" --out "$W/eval-merged" \
  > "$OUT/eval_merged.log" 2>&1
echo "== eval of the merged weights ($RANKS GPU(s)): exit $?"
cp "$W/eval/contact_sheet.png" "$OUT/contact_sheet.png" 2>/dev/null
for log in eval eval_tile eval_merged; do
  echo "-- $log"; grep -E "evaluating|^(metric|dice|cldice|auc|sensitivity)|rror" "$OUT/$log.log" | cut -c 1-160
done
