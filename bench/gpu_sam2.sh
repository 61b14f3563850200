#!/usr/bin/env bash
# SAM2 half of Sa2VA on the GPU machine, in one go: build, the transformers reference fixtures
# (tests/fixtures/make_sam2_fixtures.py), the sam2 test suites (LibTorch 2.x: the SDPA path), the parity test
# when the safetensors reader exists, and the hiera-large forward+backward benchmark. Logs and fixtures go
# to $OUT (or ./gpu-logs).   source .gpu/env.sh && bash bench/gpu_sam2.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu-logs}
mkdir -p "$LOGS"
status() { printf '%-48s %s\n' "$1" "$2" | tee -a "$LOGS/summary.txt"; }

cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release > "$LOGS/build.log" 2>&1
targets="vesseltune_sam2 sam2_model sam2_losses bench_sam2_grounding"
grep -q "sam2_parity" build-gpu/build.ninja && targets="$targets sam2_parity"
cmake --build build-gpu -j "$(nproc)" --target $targets >> "$LOGS/build.log" 2>&1
status "build ($targets)" "exit $?"

PYTHONUNBUFFERED=1 python3 tests/fixtures/make_sam2_fixtures.py "$LOGS" > "$LOGS/fixtures.log" 2>&1
status "make_sam2_fixtures.py" "exit $?"

for t in sam2_model sam2_losses; do
  build-gpu/bin/$t > "$LOGS/tests_$t.log" 2>&1
  status "$t (CPU, LibTorch 2.x)" "exit $? $(grep -E '^\[  (PASSED|FAILED) ' "$LOGS/tests_$t.log" | tr '\n' ' ')"
done
if [ -x build-gpu/bin/sam2_parity ]; then
  cp "$LOGS"/sam2_tiny_*.safetensors tests/fixtures/
  build-gpu/bin/sam2_parity > "$LOGS/tests_sam2_parity.log" 2>&1
  status "sam2_parity" "exit $?"
fi

{
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  for args in "--images 2 --prompts 5 --dtype bf16" "--images 1 --prompts 1 --dtype bf16" \
              "--images 2 --prompts 5 --dtype fp32"; do
    echo "== bench_sam2_grounding --preset hiera-large $args"
    build-gpu/bin/bench_sam2_grounding --preset hiera-large $args
  done
} > "$LOGS/bench.log" 2>&1
status "bench_sam2_grounding" "exit $?"
cat "$LOGS/bench.log"
cat "$LOGS/summary.txt"
