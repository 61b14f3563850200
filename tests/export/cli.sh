#!/usr/bin/env bash
# cli.sh BIN_DIR SOURCE_DIR MPIEXEC: vesseltune-export on a checkpoint that vesseltune-train wrote (tiny model,
# 2 steps): a merged export of the work dir (sharded) and a PEFT export, each listing what it wrote, and bad input
# ending with exit 1 and a message naming the file or tensor: an existing --out, another LoRA rank, a truncated
# checkpoint, a missing one, a bad --shard-size.
set -uo pipefail
BIN=$1
SRC=$2
MPIEXEC=$3
WORK=$(mktemp -d /tmp/vt_export_cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

fail() { echo "FAIL: $*"; exit 1; }
# expect_error PATTERN ARGS...: vesseltune-export ARGS exits 1 with PATTERN (fixed text) in its output.
expect_error() {
  local pattern=$1; shift
  local output status
  output=$("$BIN/vesseltune-export" "$@" 2>&1); status=$?
  echo "$output" | tail -3
  [ "$status" -eq 1 ] || fail "exit $status (expected 1) for: $*"
  grep -qF -- "$pattern" <<<"$output" || fail "no '$pattern' in the output of: $*"
  echo "ok: exit 1, '$pattern'"
}

"$BIN/vesseltune-pack" synth "$WORK/data" --count 8 --size 64 >/dev/null || fail "packing the synthetic set"
# Trained from WORK with paths relative to it (--set and --work-dir: the working directory's), the tokenizer a
# copy that is gone afterwards and the work dir moved: export, from yet another directory, needs neither.
mkdir -p "$WORK/tok" "$WORK/elsewhere" && cp "$SRC/configs/tiny/tokenizer.json" "$WORK/tok/"
(cd "$WORK" && "$MPIEXEC" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -np 1 "$BIN/vesseltune-train" \
  --config "$SRC/configs/tiny_vessel.yaml" --data data --work-dir trained \
  --set model.tokenizer=tok/tokenizer.json --set model.sam2_image_size=128 \
  --set train.max_steps=2 --set train.micro_batch=1 --set train.val_interval=0 --set loss.num_points=1024 \
  >"$WORK/train.out" 2>&1) || { tail -20 "$WORK/train.out"; fail "training 2 steps"; }
grep -q "tokenizer: $WORK/trained/tokenizer/tokenizer.json" "$WORK/trained/train.log" ||
  fail "the run does not use its own absolute tokenizer copy"
rm -r "$WORK/tok" && mv "$WORK/trained" "$WORK/run"
cd "$WORK/elsewhere"
CKPT=$WORK/run/checkpoints/step_00000002.h5
[ -f "$CKPT" ] || fail "no $CKPT"

# Merged, from the work dir (its newest checkpoint), in shards of 1 MB; run without mpirun.
out=$("$BIN/vesseltune-export" --checkpoint "$WORK/run" --out "$WORK/merged" --dtype fp32 --shard-size 1MB) ||
  fail "merged export: $out"
echo "$out"
grep -qF "vesseltune-export: step 2 of $CKPT -> $WORK/merged (merged): " <<<"$out" || fail "no summary line"
grep -qE "^  model-00002-of-[0-9]{5}\.safetensors  [0-9]+ bytes$" <<<"$out" || fail "no shard listed"
for file in model.safetensors.index.json config.json tokenizer.json vesseltune_config.yaml; do
  grep -qE "^  $file  [0-9]+ bytes$" <<<"$out" || fail "$file not listed"
  [ -s "$WORK/merged/$file" ] || fail "$file not written"
done
[ ! -e "$WORK/merged.tmp" ] || fail "merged.tmp left behind"

# PEFT, replacing the merged folder.
out=$("$BIN/vesseltune-export" --checkpoint "$CKPT" --out "$WORK/merged" --format peft --overwrite) ||
  fail "peft export: $out"
echo "$out"
grep -qE "\(peft\): [0-9]+ tensors, 4 files, [0-9]+ bytes" <<<"$out" || fail "no peft summary"
for file in adapter_config.json adapter_model.safetensors trained_modules.safetensors vesseltune_config.yaml; do
  [ -s "$WORK/merged/$file" ] || fail "$file not written"
done
[ ! -e "$WORK/merged/config.json" ] || fail "the merged export was not replaced"

# Bad input.
expect_error "output folder '$WORK/merged' exists already: choose another --out, or replace it with --overwrite" \
  --checkpoint "$CKPT" --out "$WORK/merged"
expect_error "$CKPT: trained tensor 'language_model.model.layers.0.self_attn.q_proj.lora_A.weight' is [8, 256] in the checkpoint but [4, 256]" \
  --checkpoint "$CKPT" --out "$WORK/rank4" --set model.lora.r=4
[ ! -e "$WORK/rank4" ] && [ ! -e "$WORK/rank4.tmp" ] || fail "a failed export left a folder"
head -c 20000 "$CKPT" >"$WORK/cut.h5"
expect_error "$WORK/cut.h5" --checkpoint "$WORK/cut.h5" --out "$WORK/cut"
expect_error "no checkpoint at '$WORK/nowhere.h5'" --checkpoint "$WORK/nowhere.h5" --out "$WORK/nowhere"
expect_error "size '5TB' is not a number with an optional unit" --checkpoint "$CKPT" --out "$WORK/x" --shard-size 5TB
echo "PASS"
