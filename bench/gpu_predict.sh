#!/usr/bin/env bash
# On the GPU machine, after `source .gpu/env.sh`: (1) the whole-model parity fixture of the predict path
# (tests/fixtures/make_sa2va_predict_fixtures.py, the Python reference; the CPU suites compare with it), then
# (2) vesseltune-predict's path (build-gpu/bin/bench_predict) against the Python peer (bench/peer/predict_peer.py) in the
# same call on the same card: sa2va-4b-shaped random weights, bf16, one 448² image, the vessel prompt, NEW_TOKENS greedy
# tokens with the KV cache, the first mask on the host; batch 1 and BATCH. Logs and a table under OUT (default gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
NEW_TOKENS=${NEW_TOKENS:-16}
BATCH=${BATCH:-4}
IMAGES=${IMAGES:-20}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

python3 tests/fixtures/make_sa2va_predict_fixtures.py "$OUT" > "$OUT/fixture.log" 2>&1 || tail -30 "$OUT/fixture.log"
tail -4 "$OUT/fixture.log"

cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DVESSELTUNE_BUILD_TESTS=OFF \
  -DVESSELTUNE_BUILD_BENCH=ON > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target bench_predict vesseltune-predict > "$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A6 "$OUT/build.log" | head -60; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

for b in 1 "$BATCH"; do
  python3 bench/peer/predict_peer.py --images "$IMAGES" --warmup 3 --batch "$b" --new-tokens "$NEW_TOKENS" \
    > "$OUT/peer_b$b.log" 2>&1
  grep "^PEER_RESULT" "$OUT/peer_b$b.log" || tail -20 "$OUT/peer_b$b.log"
  build-gpu/bin/bench_predict --config configs/sa2va_4b_vessel_lora.yaml --set model.tokenizer=configs/tiny/tokenizer.json \
    --images "$IMAGES" --warmup 3 --batch "$b" --new-tokens "$NEW_TOKENS" > "$OUT/vesseltune_b$b.log" 2>&1
  grep "^bench_predict\|^BENCH_RESULT" "$OUT/vesseltune_b$b.log" || tail -20 "$OUT/vesseltune_b$b.log"
done
