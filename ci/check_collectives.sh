#!/usr/bin/env bash
# check_collectives.sh [SOURCE_DIR]: fails when code outside comm/ names MPI. Every collective goes through
# comm::Communicator, which watches it for the collective timeout and checks its return code; a direct MPI call
# elsewhere would hang a job silently when a rank dies or stalls.
set -uo pipefail
SRC=${1:-$(dirname "$0")/..}
found=$(grep -rnE '\bMPI_[A-Za-z_]+' "$SRC/src" "$SRC/include" --include='*.cpp' --include='*.h' --include='*.cu' \
  | grep -vE "^$SRC/(src/comm|include/vesseltune/comm)/")
if [ -n "$found" ]; then
  echo "MPI used outside src/comm (use comm::Communicator's collectives, e.g. all_reduce_host, barrier):"
  echo "$found"
  exit 1
fi
echo "no MPI outside src/comm"
