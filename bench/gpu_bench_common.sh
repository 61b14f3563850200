# Sourced by bench/gpu_perf.sh, bench/gpu_compare.sh and bench/gpu_consumption.sh on the GPU machine (after
# `source .gpu/env.sh`): builds vesseltune-train and vesseltune-pack into build-gpu, records the card (gpu.txt),
# measures its bf16 matmul rate (PEAK, TFLOP/s, for MFU) and defines build_tree (a Release build of a source
# tree), pack_synth (the default inputs) and vesseltune(), one benchmark run of vesseltune-train.
# Expects OUT, RUNS, STEPS, WARMUP and BUDGET_S; DATA (packed shards, default /tmp/vt-synth) and MAX_TILES
# (InternVL tiles per image, default 1) choose the inputs; TRAIN (default build-gpu/bin/vesseltune-train) the binary.
mkdir -p "$OUT" "$RUNS"

# build_tree SOURCE BUILD_DIR LOG_NAME TARGET...: configure (tests and benchmarks off) and build; exits on errors.
build_tree() {
  local source=$1 dir=$2 log=$3
  shift 3
  cmake -S "$source" -B "$dir" -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DVESSELTUNE_BUILD_TESTS=OFF \
    -DVESSELTUNE_BUILD_BENCH=OFF > "$OUT/configure$log.log" 2>&1 || { tail -40 "$OUT/configure$log.log"; exit 1; }
  cmake --build "$dir" -j "$(nproc)" --target "$@" > "$OUT/build$log.log" 2>&1 ||
    { grep -E "error|Error" -A6 "$OUT/build$log.log" | head -80; exit 1; }
}

# pack_synth: 64 synthetic 512² images into /tmp/vt-synth, the benchmarks' default DATA.
pack_synth() {
  build-gpu/bin/vesseltune-pack synth /tmp/vt-synth --count 64 --size 512 -j 16 --overwrite > "$OUT/pack.log" 2>&1 ||
    { tail -20 "$OUT/pack.log"; exit 1; }
}

build_tree . build-gpu "" vesseltune-train vesseltune-pack
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
PEAK=$(python3 -c '
import torch, time
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter(); n = 20
for _ in range(n): a @ b
torch.cuda.synchronize(); print(round(2 * 8192**3 * n / (time.perf_counter() - t) / 1e12))')
echo "bf16 matmul 8192^3: $PEAK TFLOP/s" | tee "$OUT/peak.txt"

# vesseltune NAME MODEL GPUS OFFLOAD MICRO_BATCH [--set KEY=VALUE ...]: one benchmark run; its BENCH_RESULT goes
# to RUNS/NAME.json, its log to RUNS/NAME.log, and RUNS is packed into OUT/runs.tgz after each run.
vesseltune() {
  local name=$1 model=$2 gpus=$3 offload=$4 micro=$5
  shift 5
  [ "$SECONDS" -lt "$BUDGET_S" ] || { echo "== $name: skipped (past BUDGET_S)"; return; }
  rm -rf "/tmp/vt-bench-$name"
  timeout 180 mpirun -np "$gpus" --bind-to none -x OMP_NUM_THREADS=4 -x LD_LIBRARY_PATH "${TRAIN:-build-gpu/bin/vesseltune-train}" \
    --config "configs/${model/sa2va-/sa2va_}_vessel_lora.yaml" --data "${DATA:-/tmp/vt-synth}" \
    --work-dir "/tmp/vt-bench-$name" --set model.tokenizer=configs/tiny/tokenizer.json \
    --set data.max_tiles="${MAX_TILES:-1}" --set data.workers=4 --set 'train.deepspeed=""' \
    --set train.micro_batch="$micro" --set zero.offload_optimizer="$offload" --set train.log_interval=1 "$@" \
    --benchmark "$STEPS" --warmup "$WARMUP" --peak-tflops "$PEAK" > "$RUNS/$name.log" 2>&1
  echo "== $name: exit $?"
  grep -A22 "benchmark: " "$RUNS/$name.log" | head -24
  grep "^BENCH_RESULT " "$RUNS/$name.log" | cut -d' ' -f2- > "$RUNS/$name.json"
  grep -iE "error|what\(\)" "$RUNS/$name.log" | head -5
  tar czf "$OUT/runs.tgz" -C "$RUNS" .
}
