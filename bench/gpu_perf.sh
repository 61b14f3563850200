#!/usr/bin/env bash
# Issue 8's benchmark, on the GPU machine (after `source .gpu/env.sh`): vesseltune-train in benchmark mode
# (--benchmark: random weights, synthetic vessels, warm-up excluded, every phase timed) beside the PyTorch peer
# (bench/peer/sa2va_peer.py: transformers + peft + DDP), on the same cards, with the same shapes: one 448² tile
# (256 image tokens + the vessel prompt), the reference recipe (LoRA r128, bf16, activation checkpointing,
# micro-batch 1 × accumulation 2, ZeRO-2).
#   per model in MODELS:  vesseltune, optimizer on the GPU (offload none), 1 GPU     ┐ "optimizer on the GPU for
#                         peer, fused AdamW on the GPU, 1 GPU                         ┘  both"
#                         vesseltune, ZeRO-2 + CPU offload, each GPU count in GPUS   (scaling, exposed optimizer)
#                         vesseltune, offload none, micro-batch BIG_BATCH, 1 GPU      (MFU at a large micro-batch;
#                                                                                      BIG_BATCH=0 skips it)
# The card's bf16 matmul rate is measured first (8192³, torch) for MFU. Each run's log and result go to
# $OUT/runs.tgz (refreshed after every run, so a cut-off job still returns what it measured); runs that would start
# after BUDGET_S seconds are skipped; the table (bench/perf_table.py) is printed last and kept in $OUT/table.txt.
# RATIOS="0.5 ..." adds ZeRO-2 + CPU offload runs on each of GPUS with that share of the optimizer state on the host
# (zero.offload_ratio); BUCKETS="50000000 ..." adds runs on the last of GPUS with those bucket sizes. DELAYED=1 repeats
# every ZeRO-2 + CPU offload run (ratios included) with the host update delayed by one step (zero.delayed_update,
# from the first step: the warm-up steps are not measured anyway). PEER=0 leaves the peer out.
# E.g. MODELS=sa2va-4b GPUS="1 2 4" BUDGET_S=500 bash bench/gpu_perf.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
MODELS=${MODELS:-sa2va-4b sa2va-1b}
GPUS=${GPUS:-1 2 4}
STEPS=${STEPS:-6}
WARMUP=${WARMUP:-3}
BIG_BATCH=${BIG_BATCH:-4}
BUDGET_S=${BUDGET_S:-100000}
RUNS=/tmp/vt-perf-runs
BUCKETS=${BUCKETS:-}
RATIOS=${RATIOS:-}
source bench/gpu_bench_common.sh
pack_synth

# peer NAME MODEL GPUS OPTIMIZER TEXT_TOKENS: the PyTorch peer; its PEER_RESULT goes to runs/NAME.json.
peer() {
  local name=$1 model=$2 gpus=$3 optimizer=$4 text=$5
  [ "$SECONDS" -lt "$BUDGET_S" ] || { echo "== $name: skipped (past BUDGET_S)"; return; }
  local launch=(python3)
  [ "$gpus" -gt 1 ] && launch=(python3 -m torch.distributed.run --nproc_per_node "$gpus")
  timeout 240 "${launch[@]}" bench/peer/sa2va_peer.py --preset "$model" --optimizer "$optimizer" --tiles 1 \
    --text-tokens "$text" --steps "$STEPS" --warmup "$WARMUP" > "$RUNS/$name.log" 2>&1
  echo "== $name: exit $?"
  grep "^PEER_RESULT " "$RUNS/$name.log" | cut -d' ' -f2- | tee "$RUNS/$name.json"
  tar czf "$OUT/runs.tgz" -C "$RUNS" .
}

for model in $MODELS; do
  vesseltune "$model-none-1gpu" "$model" 1 none 1
  # The peer gets vesseltune's sequence length (the tiny tokenizer's prompt is longer than Qwen's).
  tokens=$(python3 -c "import json; print(round(json.load(open('$RUNS/$model-none-1gpu.json'))['tokens_per_sample']))" 2>/dev/null || echo 282)
  [ "${PEER:-1}" = 1 ] && peer "$model-peer-gpu-1gpu" "$model" 1 gpu $((tokens - 256))
  delays=("")
  [ "${DELAYED:-0}" = 1 ] && delays+=("-delayed")
  for delay in "${delays[@]}"; do
    delayed=()
    [ -n "$delay" ] && delayed=(--set zero.delayed_update=true --set zero.delayed_update_warmup=0)
    for gpus in $GPUS; do vesseltune "$model-cpu-${gpus}gpu$delay" "$model" "$gpus" cpu 1 "${delayed[@]}"; done
    # Part of the optimizer state kept on the GPU (DeepSpeed's offload_optimizer.ratio), each GPU count in GPUS.
    for ratio in $RATIOS; do
      for gpus in $GPUS; do
        vesseltune "$model-cpu-${gpus}gpu-ratio$ratio$delay" "$model" "$gpus" cpu 1 --set zero.offload_ratio="$ratio" \
          "${delayed[@]}"
      done
    done
  done
  # ZeRO-2 bucket sizes other than the recipe's 5e8 (DeepSpeed's reduce_bucket_size), on the most GPUs.
  for bucket in $BUCKETS; do
    vesseltune "$model-cpu-${gpus}gpu-bucket$bucket" "$model" "$gpus" cpu 1 --set zero.bucket_numel="$bucket"
  done
  [ "$BIG_BATCH" -gt 0 ] && vesseltune "$model-none-1gpu-mb$BIG_BATCH" "$model" 1 none "$BIG_BATCH"
  build-gpu/bin/vesseltune-train --config "configs/${model/sa2va-/sa2va_}_vessel_lora.yaml" --set data.max_tiles=1 \
    --plan --world-size 4 --gpu-mem 24 > "$RUNS/$model-plan.txt" 2>&1
done
python3 bench/perf_table.py "$RUNS" "$OUT/gpu.txt" | tee "$OUT/table.txt"
