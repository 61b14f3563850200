#!/usr/bin/env bash
# make_python_check.sh BIN_DIR SOURCE_DIR OUT: the input of check_export_with_python.py, on the CPU (a minute):
#   OUT/base     a merged export of a 2-step tiny run (the next run's base weights, as a released model would be)
#   OUT/merged   a merged fp32 export, in 1 MB shards, of a 2-step run on OUT/base
#   OUT/peft     that run's PEFT export (fp32), base_model_name_or_path = OUT/base
# then, on the GPU machine (transformers, peft, safetensors): python3 tests/export/check_export_with_python.py OUT
set -euo pipefail
BIN=$1
SRC=$2
OUT=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN/vesseltune-pack" synth "$OUT/work/data" --count 8 --size 64 >/dev/null
train() {  # train WORK_DIR [--set ...]
  local dir=$1; shift
  mpirun --oversubscribe --bind-to none -np 1 "$BIN/vesseltune-train" --config "$SRC/configs/tiny_vessel.yaml" \
    --data "$OUT/work/data" --work-dir "$dir" --set model.tokenizer="$SRC/configs/tiny/tokenizer.json" \
    --set model.sam2_image_size=128 --set train.max_steps=2 --set train.micro_batch=1 --set train.val_interval=0 \
    "$@" >"$dir.log" 2>&1
}
train "$OUT/work/first"
"$BIN/vesseltune-export" --checkpoint "$OUT/work/first" --out "$OUT/base" --dtype fp32
train "$OUT/work/second" --set model.weights="$OUT/base" --set train.seed=7
"$BIN/vesseltune-export" --checkpoint "$OUT/work/second" --out "$OUT/merged" --dtype fp32 --shard-size 1MB
"$BIN/vesseltune-export" --checkpoint "$OUT/work/second" --out "$OUT/peft" --dtype fp32 --format peft
rm -rf "$OUT/work"
