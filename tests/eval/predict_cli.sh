#!/usr/bin/env bash
# vesseltune-predict end to end: a tiny model trained briefly on synthetic vessels answers for a folder of mixed files
# and a file named alone, on 2 MPI ranks with batches of 2. Checks: one answers.jsonl line per image in input order,
# every [SEG] answered has its mask and overlay at the image's size, the same answers without the KV cache and on one
# rank, the answers from merged weights (vesseltune-export) equal the checkpoint's; vesseltune-eval --generate scores
# the generated answers; bad input (not an image, a prompt over max_length, weights without a tokenizer, an existing
# output folder) ends with a message naming it and leaves no output folder.
# Usage: predict_cli.sh BIN_DIR SOURCE_DIR
source "$(dirname "$0")/../support/cli_setup.sh"

"$BIN/vesseltune-pack" synth "$WORK/data" --count 24 --size 64 -j 1 > "$WORK/pack.log"
# Long enough at a high learning rate for the tiny LLM to learn to answer with [SEG].
"${MPIRUN[@]}" -np 2 "$BIN/vesseltune-train" --config "$SRC/configs/tiny_vessel.yaml" --data "$WORK/data" \
  --work-dir "$WORK/run" --set train.max_steps=${PREDICT_TRAIN_STEPS:-40} --set train.val_interval=0 \
  --set data.workers=1 --set train.micro_batch=4 --set train.accumulation=1 > "$WORK/train.log" 2>&1 ||
  { tail -20 "$WORK/train.log"; exit 1; }

# Inputs: a folder with 3 images and a text file, plus one image named on its own.
mkdir -p "$WORK/in/sub" "$WORK/one"
/usr/bin/python3 - "$WORK" <<'PY'
import sys
import numpy as np
from PIL import Image
work = sys.argv[1]
rng = np.random.default_rng(0)
for i, (h, w) in enumerate([(64, 64), (48, 80), (90, 60)]):
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(f"{work}/in/img{i}.png")
Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(f"{work}/one/grey.png")
open(f"{work}/in/notes.txt", "w").write("not an image")
PY

predict() {  # RANKS OUT ARGS...
  local ranks=$1 out=$2; shift 2
  "${MPIRUN[@]}" -np "$ranks" "$BIN/vesseltune-predict" "$@" --out "$out" --max-new-tokens 12 \
    "$WORK/in" "$WORK/one/grey.png" > "$out.log" 2>&1 || { cat "$out.log"; exit 1; }
}
predict 2 "$WORK/p" --checkpoint "$WORK/run" --batch 2
predict 2 "$WORK/p_nocache" --checkpoint "$WORK/run" --batch 2 --no-cache
predict 1 "$WORK/p_one" --checkpoint "$WORK/run"
"$BIN/vesseltune-export" --checkpoint "$WORK/run" --out "$WORK/merged" > "$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; exit 1; }
predict 2 "$WORK/p_merged" --weights "$WORK/merged" --batch 2

/usr/bin/python3 - "$WORK" <<'PY'
import json, sys
import numpy as np
from PIL import Image
work = sys.argv[1]
def answers(name):
    return [json.loads(l) for l in open(f"{work}/{name}/answers.jsonl")]
lines = answers("p")
images = [f"{work}/in/img0.png", f"{work}/in/img1.png", f"{work}/in/img2.png", f"{work}/one/grey.png"]
assert [l["image"] for l in lines] == images, [l["image"] for l in lines]
sizes = {"img0": (64, 64), "img1": (48, 80), "img2": (90, 60), "grey": (40, 40)}
masks = 0
for line in lines:
    assert line["prompt"] == "<image>\nPlease segment the blood vessels in this image.", line
    assert line["masks"] == len(line["mask_files"]) == line["answer"].count("[SEG]") - int(line.get("seg_cut_off", False)), line
    for f in line["mask_files"]:
        mask = np.array(Image.open(f"{work}/p/{f}"))
        assert mask.shape == sizes[f.split("/")[1].rsplit("_", 1)[0]] and set(np.unique(mask)) <= {0, 255}, (f, mask.shape)
        overlay = np.array(Image.open(f"{work}/p/{f.replace('masks/', 'overlays/')}"))
        assert overlay.shape == mask.shape + (3,), overlay.shape
        masks += 1
for other in ("p_nocache", "p_one", "p_merged"):
    assert [(l["answer"], l["masks"]) for l in answers(other)] == [(l["answer"], l["masks"]) for l in lines], other
assert masks > 0, f"no [SEG] in any answer: {[l['answer'] for l in lines]}"
print(f"{len(lines)} answers, {masks} masks; the same without the cache, on one rank and from merged weights")
PY

"${MPIRUN[@]}" -np 2 "$BIN/vesseltune-eval" --checkpoint "$WORK/run" --data "$WORK/data" --generate --out "$WORK/eval" \
  > "$WORK/eval.log" 2>&1 || { cat "$WORK/eval.log"; exit 1; }
grep -q "generated answers without \[SEG\] (scored as empty masks): [0-9]* of " "$WORK/eval.log" ||
  { echo "no count of answers without [SEG]"; tail -5 "$WORK/eval.log"; exit 1; }

# Bad input: each ends every rank with a message that names what is wrong, and leaves no output folder.
expect_error() {  # PATTERN OUT ARGS...
  local pattern=$1 out=$2; shift 2
  if "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-predict" --out "$out" "$@" > "$WORK/bad.log" 2>&1; then
    echo "vesseltune-predict $* succeeded"; exit 1
  fi
  grep -q -- "$pattern" "$WORK/bad.log" || { echo "no '$pattern' in:"; tail -5 "$WORK/bad.log"; exit 1; }
  [ ! -e "$out" ] || { echo "$out was written"; exit 1; }
}
mkdir "$WORK/broken" && echo "not an image" > "$WORK/broken/broken.png"
expect_error "cannot decode image $WORK/broken/broken.png" "$WORK/bad1" --checkpoint "$WORK/run" "$WORK/broken"
head -c 40000 /dev/zero | tr '\0' 'a' | sed 's/aaaa/vessel /g' > "$WORK/long_prompt.txt"
expect_error "$WORK/in/img[0-2].png: the prompt is [0-9]* tokens long .*over max_length" "$WORK/bad2" --checkpoint "$WORK/run" --prompt-file "$WORK/long_prompt.txt" "$WORK/in"
cp -r "$WORK/merged" "$WORK/merged_no_tok" && rm "$WORK/merged_no_tok/tokenizer.json"
expect_error "tokenizer" "$WORK/bad3" --weights "$WORK/merged_no_tok" "$WORK/in"
cp "$WORK/p/answers.jsonl" "$WORK/answers.before"
mv "$WORK/p" "$WORK/p_kept"
mkdir "$WORK/p" && cp "$WORK/answers.before" "$WORK/p/"  # an earlier output: refused, left as it was
if "${MPIRUN[@]}" -np 2 "$BIN/vesseltune-predict" --out "$WORK/p" --checkpoint "$WORK/run" "$WORK/in" > "$WORK/bad.log" 2>&1; then
  echo "vesseltune-predict overwrote $WORK/p"; exit 1
fi
grep -q "output folder '$WORK/p' exists already" "$WORK/bad.log" || { tail -5 "$WORK/bad.log"; exit 1; }
cmp "$WORK/p/answers.before" "$WORK/answers.before" && [ ! -e "$WORK/p.tmp" ] || { echo "$WORK/p changed"; exit 1; }
expect_error "no file or folder '$WORK/missing.png'" "$WORK/bad4" --checkpoint "$WORK/run" "$WORK/missing.png"
echo "vesseltune-predict: answers, masks, ranks, cache, merged weights, eval --generate and bad input all as expected"
