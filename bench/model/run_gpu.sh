#!/usr/bin/env bash
# One GPU-machine run for the vision-language half (after `source .gpu/env.sh`): builds the model targets,
# measures forward + backward of a full sa2va-1b-shaped model in bf16 (bench_sa2va_step), checks that
# vesseltune's PEFT files load in Python peft (peft_export + tests/fixtures/check_peft_adapter.py) and runs
# the model and text suites. Logs go to $OUT (or ./gpu-out); the figures are printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release > "$OUT/configure.log" 2>&1 ||
  { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j 16 --target bench_sa2va_step peft_export test_model test_model_io test_tokenizer > "$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A6 "$OUT/build.log" | head -80; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 | tee "$OUT/gpu.txt"
build-gpu/bin/bench_sa2va_step --preset sa2va-1b --tiles 1 7 --steps 5 > "$OUT/bench.log" 2>&1
bench_rc=$?
timeout 150 build-gpu/bin/bench_sa2va_step --preset sa2va-4b --tiles 1 7 --steps 5 >> "$OUT/bench.log" 2>&1
rm -rf /tmp/vt_peft
{ build-gpu/bin/peft_export tests/fixtures/llm_parity.safetensors /tmp/vt_peft &&
  python3 tests/fixtures/check_peft_adapter.py tests/fixtures/llm_parity.safetensors /tmp/vt_peft; } > "$OUT/peft.log" 2>&1
peft_rc=$?
{ OMP_NUM_THREADS=8 build-gpu/bin/test_model && OMP_NUM_THREADS=8 build-gpu/bin/test_model_io; } > "$OUT/test_model.log" 2>&1
model_rc=$?
build-gpu/bin/test_tokenizer > "$OUT/test_tokenizer.log" 2>&1
text_rc=$?
echo "== test_model (rc $model_rc)"; grep -E "FAILED|PASSED|Failure" -A3 "$OUT/test_model.log" | head -30
echo "== test_tokenizer (rc $text_rc)"; tail -3 "$OUT/test_tokenizer.log"
echo "== peft (rc $peft_rc)"; tail -5 "$OUT/peft.log"
echo "== bench (rc $bench_rc)"; cat "$OUT/bench.log"
