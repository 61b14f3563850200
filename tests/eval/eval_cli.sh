#!/usr/bin/env bash
# vesseltune-eval end to end on 2 MPI ranks: a tiny model trained for 3 steps on a small synthetic set, evaluated
# on every packed image; the per-image Dice, IoU and sensitivity in the CSV are recomputed in Python from the masks
# it wrote and the shards' ground truth (h5py + PIL, not this project's code); then bad input gives named errors.
# Usage: eval_cli.sh BIN_DIR SOURCE_DIR
source "$(dirname "$0")/../support/cli_setup.sh"

"$BIN/vesseltune-pack" synth "$WORK/data" --count 20 --size 64 -j 1 > "$WORK/pack.log"
"${MPIRUN[@]}" -np 2 "$BIN/vesseltune-train" --config "$SRC/configs/tiny_vessel.yaml" --data "$WORK/data" \
  --work-dir "$WORK/run" --set train.max_steps=3 --set train.val_interval=0 --set data.workers=1 > "$WORK/train.log" 2>&1 ||
  { tail -20 "$WORK/train.log"; exit 1; }

"${MPIRUN[@]}" -np 2 "$BIN/vesseltune-eval" --checkpoint "$WORK/run" --data "$WORK/data" --split "" \
  --out "$WORK/eval" --best-worst 2 > "$WORK/eval.log" 2>&1 || { cat "$WORK/eval.log"; exit 1; }
for f in metrics_per_image.csv metrics_summary.csv metrics.h5 contact_sheet.png eval.log; do
  [ -s "$WORK/eval/$f" ] || { echo "missing $f"; exit 1; }
done
[ "$(ls "$WORK/eval/masks" | wc -l)" = 20 ] || { echo "expected 20 masks"; ls "$WORK/eval/masks"; exit 1; }
[ "$(ls "$WORK/eval/overlays" | wc -l)" = 20 ] || { echo "expected 20 overlays"; exit 1; }
grep -q "metric .*| FOV per image (mean ± sd)" "$WORK/eval/eval.log" || { echo "no metrics table in the log"; exit 1; }

/usr/bin/python3 - "$WORK" <<'PY'
import csv, glob, re, sys
import h5py, numpy as np
from PIL import Image
work = sys.argv[1]
rows = {(r["image"], r["region"]): r for r in csv.DictReader(open(f"{work}/eval/metrics_per_image.csv"))}
checked = 0
for shard in sorted(glob.glob(f"{work}/data/*.h5")):
    with h5py.File(shard) as f:
        for key, g in f["samples"].items():
            source = g.attrs["source"]
            stem = re.sub(r"\.(tif|tiff|gif|ppm|pgm|jpg|jpeg|png|bmp)(\.gz)?$", "", source, flags=re.I)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
            pred = np.array(Image.open(f"{work}/eval/masks/{name}.png")) > 0
            truth, fov = g["mask"][:] > 0, g["fov"][:] > 0
            for region, inside in (("fov", fov), ("full", np.ones_like(fov))):
                p, t = pred & inside, truth & inside
                tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
                expect = {"dice": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
                          "iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
                          "sensitivity": tp / (tp + fn) if tp + fn else 1.0}
                row = rows[(name, region)]
                for metric, value in expect.items():
                    assert abs(float(row[metric]) - value) < 1e-9, (name, region, metric, row[metric], value)
                assert int(row["tp"]) == tp and int(row["fp"]) == fp and int(row["fn"]) == fn, (name, region)
            checked += 1
assert checked == 20, checked
print(f"per-image metrics of {checked} images agree with masks + ground truth")
PY

# Bad input: each ends every rank with a message that names what is wrong.
expect_error() {  # PATTERN ARGS...: vesseltune-eval on 2 ranks must fail with PATTERN in its output
  local pattern=$1; shift
  if "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-eval" "$@" > "$WORK/bad.log" 2>&1; then
    echo "vesseltune-eval $* succeeded"; exit 1
  fi
  grep -q -- "$pattern" "$WORK/bad.log" || { echo "no '$pattern' in:"; tail -5 "$WORK/bad.log"; exit 1; }
}
expect_error "trained tensor 'language_model.model.layers.0.self_attn.q_proj.lora_A.weight' is \[8, 256\]" \
  --checkpoint "$WORK/run" --set model.lora.r=4 --data "$WORK/data" --out "$WORK/bad1"
expect_error "no image folder or packed data set at '$WORK/missing'" --checkpoint "$WORK/run" --data "$WORK/missing" --out "$WORK/bad2"
mkdir "$WORK/images" && echo "not an image" > "$WORK/images/broken.png"
expect_error "cannot decode image $WORK/images/broken.png" --checkpoint "$WORK/run" --data "$WORK/images" --out "$WORK/bad3"
expect_error "no complete training checkpoint" --checkpoint "$WORK/data" --data "$WORK/data" --out "$WORK/bad4"
expect_error "output folder '$WORK/eval' exists already" --checkpoint "$WORK/run" --data "$WORK/data" --out "$WORK/eval"
for n in 1 2 3 4; do  # a failed evaluation leaves no output folder (at most OUT.tmp, which the next run removes)
  [ ! -e "$WORK/bad$n" ] || { echo "a failed evaluation left $WORK/bad$n"; exit 1; }
done
"${MPIRUN[@]}" -np 2 "$BIN/vesseltune-eval" --checkpoint "$WORK/run" --data "$WORK/data" --split "" --out "$WORK/eval" \
  --overwrite > "$WORK/eval2.log" 2>&1 || { cat "$WORK/eval2.log"; exit 1; }
echo "vesseltune-eval: outputs, independent metric check, bad input and output folder rules all as expected"
