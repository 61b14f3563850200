#!/usr/bin/env bash
# Issue 3's consumption figure, on the GPU machine (after `source .gpu/env.sh`): how many samples per second one GPU
# takes at the input shapes of FIVES (2048×2048: 3×3 grid + thumbnail = 10 InternVL tiles) and HRF (3504×2336:
# 3×2 + thumbnail = 7 tiles), with vesseltune-train in benchmark mode at its fastest one-GPU setting (optimizer on the
# GPU, micro-batch 1; random weights, the reference recipe otherwise), for sa2va-1b and sa2va-4b. The reader must
# deliver 4× that on 2 cores (bench_data on the development machine). Images are random noise with random masks:
# the GPU's work depends on the shapes only. Results: $OUT/runs.tgz, the summary last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
MODELS=${MODELS:-sa2va-1b sa2va-4b}
STEPS=${STEPS:-6}
WARMUP=${WARMUP:-3}
BUDGET_S=${BUDGET_S:-100000}
RUNS=/tmp/vt-consumption-runs
source bench/gpu_bench_common.sh
for shape in fives:2048x2048 hrf:3504x2336; do
  name=${shape%%:*} size=${shape#*:}
  python3 - "/tmp/vt-src-$name" "${size%x*}" "${size#*x}" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
for sub in ("images", "masks"):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
for i in range(8):
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(f"{root}/images/{i:02d}.png")
    Image.fromarray((rng.random((height, width)) < 0.1).astype(np.uint8) * 255).save(f"{root}/masks/{i:02d}.png")
PY
  build-gpu/bin/vesseltune-pack --layout generic "/tmp/vt-src-$name" "/tmp/vt-$name" --val-fraction 0.2 -j 16 \
    --overwrite > "$OUT/pack_$name.log" 2>&1 || { tail -20 "$OUT/pack_$name.log"; exit 1; }
done
for model in $MODELS; do
  for name in fives hrf; do
    DATA=/tmp/vt-$name MAX_TILES=12 vesseltune "$model-$name" "$model" 1 none 1
  done
done
python3 - "$RUNS" <<'PY'
import json, os, sys
runs = sys.argv[1]
print("one GPU's consumption (offload none, micro-batch 1):")
for name in sorted(os.listdir(runs)):
    if name.endswith(".json"):
        text = open(os.path.join(runs, name)).read().strip()
        run = json.loads(text) if text else None
        if run and "error" not in run:
            print(f"  {name[:-5]:<16} {run['samples_per_s_per_rank']:6.2f} samples/s, {run['tokens_per_sample']:.0f} tokens "
                  f"per sample -> the reader must deliver {4 * run['samples_per_s_per_rank']:.1f} samples/s")
        else:
            print(f"  {name[:-5]:<16} failed: {run}")
PY
