#!/usr/bin/env bash
# The distributed runtime on the GPU machine, in one go: build, the NCCL equivalence tests on 2 GPUs, the CPU
# AdamW benchmark, and the ZeRO optimizer-phase benchmark on 2 and 4 GPUs (900M trainable parameters, CPU
# offload and, for comparison, on-GPU AdamW). Logs go to $OUT (or ./gpu-logs); a summary is printed last.
#   source .gpu/env.sh && bash bench/gpu_runtime.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-gpu-logs}
mkdir -p "$LOGS"
GPUS=$(nvidia-smi -L | wc -l)
MPIRUN="mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
status() { printf '%-58s %s\n' "$1" "$2" | tee -a "$LOGS/summary.txt"; }

cmake -S . -B build-gpu -G Ninja $GPU_CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release > "$LOGS/configure.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" --target test_zero_equivalence test_mpi_collectives test_adamw_kernel \
    bench_adamw bench_zero_step vesseltune-zero-demo > "$LOGS/build.log" 2>&1
build=$?
status "build (runtime targets)" "exit $build"
[ $build -eq 0 ] || { tail -n 40 "$LOGS/configure.log" "$LOGS/build.log"; exit 1; }

$MPIRUN -np 2 build-gpu/bin/test_zero_equivalence > "$LOGS/test_zero_equivalence_nccl_np2.log" 2>&1
status "test_zero_equivalence, NCCL, 2 GPUs" "exit $?  ($(grep -E '^\[  (PASSED|FAILED)' "$LOGS/test_zero_equivalence_nccl_np2.log" | tr '\n' ' '))"
$MPIRUN -np 2 build-gpu/bin/test_mpi_collectives > "$LOGS/test_mpi_collectives_np2.log" 2>&1
status "test_mpi_collectives, 2 ranks" "exit $?"
build-gpu/bin/test_adamw_kernel > "$LOGS/test_adamw_kernel.log" 2>&1
status "test_adamw_kernel ($(grep -o 'avx[0-9]*' "$LOGS/test_adamw_kernel.log" | head -1))" "exit $?"

build-gpu/bin/bench_adamw --threads 16 --numel 100000000 > "$LOGS/bench_adamw_16.log" 2>&1
status "bench_adamw 16 threads" "$(tail -1 "$LOGS/bench_adamw_16.log")"
build-gpu/bin/bench_adamw --numel 100000000 > "$LOGS/bench_adamw_all.log" 2>&1
status "bench_adamw all cores" "$(tail -1 "$LOGS/bench_adamw_all.log")"

for n in 2 4; do
  [ "$n" -le "$GPUS" ] || continue
  for offload in cpu none; do
    $MPIRUN -np $n build-gpu/bin/bench_zero_step --params 900e6 --offload $offload --steps 4 --warmup 2 \
      > "$LOGS/bench_zero_step_np${n}_${offload}.log" 2>&1
    status "bench_zero_step $n GPUs offload=$offload" \
      "exit $?  exposed $(grep 'optimizer phase exposed' "$LOGS/bench_zero_step_np${n}_${offload}.log" | awk '{print $NF}') ms"
  done
done
echo; cat "$LOGS"/bench_adamw_all.log; for f in "$LOGS"/bench_zero_step_*.log; do echo "== $f"; cat "$f"; done
echo; echo "== summary"; cat "$LOGS/summary.txt"
