#!/usr/bin/env bash
# The embedded default job on a CPU-only machine: build, pack synthetic vessels, train on 2 MPI ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
if [ ! -f data/synthetic/manifest.json ]; then
  build/bin/vesseltune-pack synth data/synthetic --size 256
fi
echo "synthetic vessels: $(pwd)/data/synthetic"
mkdir -p work_dirs/demo
mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 2 build/bin/vesseltune-zero-demo \
  --stage 2 --offload cpu --accumulation 2 --steps 200 2>&1 | tee work_dirs/demo/zero_demo.log
echo "log: $(pwd)/work_dirs/demo/zero_demo.log"
