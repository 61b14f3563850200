#!/usr/bin/env bash
# The test command: builds, then runs every suite (CTest runs the MPI suites under mpirun -np 1, 2, 3 and 8).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 "$@"
