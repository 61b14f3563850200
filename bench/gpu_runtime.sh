#!/usr/bin/env bash
# The distributed runtime on the GPU machine, in one go: build, the NCCL equivalence and optimizer-checkpoint tests
# on 2 GPUs (and on 4 where the machine has them), the CPU AdamW benchmark, and the ZeRO optimizer-phase benchmark
# on 2 and 4 GPUs (900M trainable parameters, CPU offload and, for comparison, on-GPU AdamW). Logs go to $OUT (or
# ./gpu-logs); a summary is printed last.
#   source .gpu/env.sh && bash bench/gpu_runtime.sh
set -uo pipefail
# ONLY=tests runs the build and the tests alone.
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu-logs}
mkdir -p "$LOGS"
GPUS=$(nvidia-smi -L | wc -l)
MPIRUN="mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
status() { printf '%-58s %s\n' "$1" "$2" | tee -a "$LOGS/summary.txt"; }

cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release > "$LOGS/configure.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" --target test_zero_equivalence test_optimizer_checkpoint test_mpi_collectives \
    test_adamw_kernel bench_adamw bench_zero_step > "$LOGS/build.log" 2>&1
build=$?
status "build (runtime targets)" "exit $build"
[ $build -eq 0 ] || { tail -n 40 "$LOGS/configure.log" "$LOGS/build.log"; exit 1; }

# One log per kind of run: the device returns at most 8 files.
run_test() {  # name, command...
  local name=$1; shift
  echo "===== $name: $*" >> "$LOGS/tests.log"
  "$@" >> "$LOGS/tests.log" 2>&1
  local code=$?
  status "$name" "exit $code"
}
for n in 2 4; do
  [ "$GPUS" -ge $n ] || continue
  run_test "test_zero_equivalence, NCCL, $n GPUs" $MPIRUN -np $n build-gpu/bin/test_zero_equivalence
  run_test "test_optimizer_checkpoint, NCCL, $n GPUs" $MPIRUN -np $n build-gpu/bin/test_optimizer_checkpoint
done
run_test "test_mpi_collectives, 2 ranks" $MPIRUN -np 2 build-gpu/bin/test_mpi_collectives
run_test "test_adamw_kernel" build-gpu/bin/test_adamw_kernel

[ "${ONLY:-}" = tests ] && { grep -E "FAILED|Failure|error" "$LOGS/tests.log" | head -20; cat "$LOGS/summary.txt"; exit 0; }
for threads in 16 0; do
  build-gpu/bin/bench_adamw --threads $threads --numel 100000000 >> "$LOGS/bench_adamw.log" 2>&1
  status "bench_adamw threads=$threads (0: all cores)" "$(tail -1 "$LOGS/bench_adamw.log")"
done

for n in 2 4; do
  [ "$n" -le "$GPUS" ] || continue
  for offload in cpu none; do
    $MPIRUN -np $n build-gpu/bin/bench_zero_step --params 900e6 --offload $offload --steps 4 --warmup 2 \
      > "$LOGS/zero_step.tmp" 2>&1
    code=$?
    cat "$LOGS/zero_step.tmp" >> "$LOGS/bench_zero_step.log"
    status "bench_zero_step $n GPUs offload=$offload" \
      "exit $code  exposed $(grep 'optimizer phase exposed' "$LOGS/zero_step.tmp" | awk '{print $NF}') ms"
    rm -f "$LOGS/zero_step.tmp"
  done
done
echo; cat "$LOGS/bench_adamw.log" "$LOGS/bench_zero_step.log"
echo; echo "== summary"; cat "$LOGS/summary.txt"
