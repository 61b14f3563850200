#!/usr/bin/env bash
# submit.sh train|eval [vesseltune arguments...]: sbatch of jobs/slurm/JOB.sbatch with its resources from variables
# (defaults: one node with 4 GPUs, a rank per GPU, 8 CPUs per rank), the log folder created first (Slurm opens the
# output file before the job starts and fails without a word when its folder is missing). Prints sbatch's line.
#   NODES (1)  GPUS_PER_NODE (4; 0: CPU only)  TASKS_PER_NODE (GPUS_PER_NODE, or 2 without GPUs)  CPUS_PER_TASK (8)
#   TIME (24:00:00)  LOG_DIR (logs)  SBATCH_OPTIONS (more sbatch options, e.g. "--partition=gpu --account=me")
#   CONFIG (the job's config, passed on in the environment)
set -euo pipefail
job=${1:?usage: submit.sh train|eval [arguments...]}; shift
script=$(dirname "$0")/$job.sbatch
[ -f "$script" ] || { echo "submit.sh: no $script"; exit 2; }
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
TASKS_PER_NODE=${TASKS_PER_NODE:-$([ "$GPUS_PER_NODE" -gt 0 ] && echo "$GPUS_PER_NODE" || echo 2)}
LOG_DIR=${LOG_DIR:-logs}
mkdir -p "$LOG_DIR"
resources=(--nodes="${NODES:-1}" --ntasks-per-node="$TASKS_PER_NODE" --cpus-per-task="${CPUS_PER_TASK:-8}"
           --time="${TIME:-24:00:00}" --output="$LOG_DIR/%x-%j.out")
[ "$GPUS_PER_NODE" -gt 0 ] && resources+=(--gpus-per-node="$GPUS_PER_NODE")
# shellcheck disable=SC2086  # SBATCH_OPTIONS is a list of options
exec sbatch --export=ALL "${resources[@]}" ${SBATCH_OPTIONS:-} "$script" "$@"
