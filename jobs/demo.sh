#!/usr/bin/env bash
# The embedded default job on a CPU-only machine: build, pack synthetic vessels, train the tiny Sa2VA on 2 MPI
# ranks (configs/tiny_vessel.yaml: ZeRO-2, CPU-offloaded AdamW, validation Dice, checkpoints), plot the curves,
# and evaluate the last checkpoint on the validation images (masks, overlays, vessel metrics).
# Extra arguments go to vesseltune-train (e.g. --set train.max_steps=300).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the programs the demo runs (the tests and benchmarks come with ci/test.sh).
TARGETS="vesseltune-pack vesseltune-train vesseltune-report vesseltune-eval" bash ci/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
if [ ! -f data/synthetic/manifest.json ]; then
  build/bin/vesseltune-pack synth data/synthetic
fi
echo "synthetic vessels: $(pwd)/data/synthetic"
WORK=work_dirs/tiny_vessel
rm -rf "$WORK"  # the demo starts over each time; real runs continue with --resume auto
# A SIGTERM to mpirun reaches the ranks after odls_base_sigkill_timeout and they are killed as long after: 30 s
# leaves them time to save (the default, 1 s, does not).
mpirun --mca odls_base_sigkill_timeout 30 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 build/bin/vesseltune-train \
  --config configs/tiny_vessel.yaml --work-dir "$WORK" "$@"
build/bin/vesseltune-report "$WORK/metrics.h5" --out "$WORK/plots"
mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 build/bin/vesseltune-eval \
  --checkpoint "$WORK" --data data/synthetic --out "$WORK/eval"
