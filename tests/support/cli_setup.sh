# Sourced by the command-line suites (tests/eval/*_cli.sh) with BIN_DIR SOURCE_DIR as their arguments: strict mode,
# BIN and SRC, a scratch WORK folder removed on exit and the working directory (not the checkout: every tool runs
# from anywhere), and MPIRUN for root on the CPU.
set -euo pipefail
BIN=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
