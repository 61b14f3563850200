#!/usr/bin/env bash
# vesseltune-train on the GPU machine (after `source .gpu/env.sh`): builds the trainer, packs a small synthetic
# set (1024² images: 2×2 tiles + thumbnail), then for each GPU count in GPUS (default "1 2") prints the memory
# plan of the CONFIG recipe (default the sa2va-1b one) and trains that model (random weights, the tiny tokenizer)
# with NCCL, ZeRO-2, CPU offload and bf16 for STEPS steps. Logs go to $OUT (or ./gpu-out); the log lines are
# printed last; GPUS= only builds and packs. E.g. CONFIG=configs/sa2va_4b_vessel_lora.yaml GPUS="1 2" STEPS=20 bash bench/gpu_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
STEPS=${STEPS:-30}
CONFIG=${CONFIG:-configs/sa2va_1b_vessel_lora.yaml}
GPUS=${GPUS-1 2}
mkdir -p "$OUT"
cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DVESSELTUNE_BUILD_TESTS=OFF \
  -DVESSELTUNE_BUILD_BENCH=OFF > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j 16 --target vesseltune-train vesseltune-pack > "$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A6 "$OUT/build.log" | head -80; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
build-gpu/bin/vesseltune-pack synth /tmp/vt-synth --count 96 --size 1024 -j 16 --overwrite > "$OUT/pack.log" 2>&1 ||
  { tail -20 "$OUT/pack.log"; exit 1; }
RECIPE=(--config "$CONFIG" --data /tmp/vt-synth --set model.tokenizer=configs/tiny/tokenizer.json
        --set data.max_tiles=4 --set data.workers=4 --set train.max_steps="$STEPS" --set train.log_interval=5
        --set train.val_interval=0 --set train.save_steps=1000 --set train.warmup_ratio=0.1)
for gpus in $GPUS; do
  build-gpu/bin/vesseltune-train "${RECIPE[@]}" --plan --world-size "$gpus" --gpu-mem 24 > "$OUT/plan_${gpus}gpu.txt" 2>&1
  rm -rf "/tmp/vt-work-$gpus"
  timeout 240 mpirun -np "$gpus" --bind-to none -x OMP_NUM_THREADS=4 -x LD_LIBRARY_PATH build-gpu/bin/vesseltune-train \
    "${RECIPE[@]}" --work-dir "/tmp/vt-work-$gpus" > "$OUT/train_${gpus}gpu.log" 2>&1
  echo "== $gpus GPU(s): exit $?"
  echo "-- plan"; cat "$OUT/plan_${gpus}gpu.txt"
  echo "-- log"; grep -E "effective batch|iter:|val:|saved|done|optimizer state|device total|Error|error" \
    "$OUT/train_${gpus}gpu.log" | cut -c 28- | head -40
done
