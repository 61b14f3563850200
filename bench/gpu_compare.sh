#!/usr/bin/env bash
# A change's effect on vesseltune-train's benchmark, measured against a base tree in the same call on the same
# card (run-to-run spread between machines of one kind is ±20 %, so only same-call comparisons count; bench/NOTES.md).
# On the GPU machine, after `source .gpu/env.sh`. The base tree comes along as an ignored folder:
#   here:   rm -rf .base && mkdir .base && git archive BASE_COMMIT | tar -x -C .base     (carry .gpu and .base)
#   there:  MODEL=sa2va-4b OFFLOAD=none REPS=3 bash bench/gpu_compare.sh [--set KEY=VALUE ...]
# Builds the working tree (build-gpu) and the base (build-base), then runs base and new alternately REPS times
# (one GPU, micro-batch 1, the reference recipe; extra arguments go to both) and prints each side's medians.
# ALT="--set KEY=VALUE ..." adds a third side in the same rotation: the new build with those settings.
# PROFILE=1 adds one profiled run of the new build, and of ALT (vesseltune-train --profile: operators, kernels,
# GPU busy time).
# TESTS="test_a test_b" builds those test programs of the working tree first and runs them (GPU tests;
# TEST_FILTER: a gtest filter).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
MODEL=${MODEL:-sa2va-4b}
OFFLOAD=${OFFLOAD:-none}
REPS=${REPS:-3}
STEPS=${STEPS:-4}
WARMUP=${WARMUP:-2}
BUDGET_S=${BUDGET_S:-100000}
BASE=${BASE:-.base}
ALT=${ALT:-}
RUNS=/tmp/vt-compare-runs
[ -f "$BASE/CMakeLists.txt" ] || { echo "gpu_compare: no base tree in $BASE (see the header)"; exit 1; }
source bench/gpu_bench_common.sh
if [ -n "${TESTS:-}" ]; then
  cmake -S . -B build-gpu -DVESSELTUNE_BUILD_TESTS=ON > "$OUT/configure-tests.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" --target $TESTS > "$OUT/build-tests.log" 2>&1 ||
    { grep -E "error|Error" -A6 "$OUT/build-tests.log" | head -60; exit 1; }
  for t in $TESTS; do
    build-gpu/bin/$t --gtest_filter="${TEST_FILTER:-*}" > "$RUNS/$t.log" 2>&1
    echo "== $t: exit $?"; grep -E "^\[  (PASSED|FAILED|  SKIPPED) |Failure|error" "$RUNS/$t.log" | head -20
  done
fi
build_tree "$BASE" build-base -base vesseltune-train
pack_synth

for rep in $(seq 1 "$REPS"); do
  TRAIN=build-base/bin/vesseltune-train vesseltune "base-$rep" "$MODEL" 1 "$OFFLOAD" 1 "$@"
  vesseltune "new-$rep" "$MODEL" 1 "$OFFLOAD" 1 "$@"
  # shellcheck disable=SC2086  # ALT is a list of arguments
  [ -n "$ALT" ] && vesseltune "alt-$rep" "$MODEL" 1 "$OFFLOAD" 1 "$@" $ALT
done
if [ "${PROFILE:-0}" = 1 ]; then
  vesseltune "new-profiled" "$MODEL" 1 "$OFFLOAD" 1 "$@" --profile
  # shellcheck disable=SC2086
  [ -n "$ALT" ] && vesseltune "alt-profiled" "$MODEL" 1 "$OFFLOAD" 1 "$@" $ALT --profile
  for side in new alt; do
    [ -f "$RUNS/$side-profiled.log" ] && { echo "== $side:"; sed -n '/profile of/,/trace:/p' "$RUNS/$side-profiled.log"; }
  done | tee "$OUT/profile.txt"
fi
python3 - "$RUNS" <<'PY' | tee "$OUT/compare.txt"
import json, os, statistics, sys
runs = sys.argv[1]
def load(side):
    out = []
    for name in sorted(os.listdir(runs)):
        if name.startswith(side + "-") and name.endswith(".json") and "profiled" not in name:
            text = open(os.path.join(runs, name)).read().strip()
            if text:
                out.append(json.loads(text))
    return out
rows = [("samples/s", lambda r: r["samples_per_s_per_rank"]), ("step ms", lambda r: r["ms"]["step"]),
        ("forward ms", lambda r: r["ms"]["forward"]),
        ("backward ms", lambda r: r["ms"]["backward (overlaps reduce-scatter, copy out)"]),
        ("optimizer ms", lambda r: r["optimizer_exposed_ms"]), ("peak GiB", lambda r: max(r["gpu_peak_gib"])),
        ("reserved GiB", lambda r: max(r.get("gpu_reserved_gib", [0])))]
sides = {side: load(side) for side in ("base", "new", "alt")}
sides = {s: v for s, v in sides.items() if v}
print("medians of the runs; ratios against base")
print(f"{'':<14}" + "".join(f"{s + ' (' + str(len(v)) + ')':>12}" for s, v in sides.items()) +
      "".join(f"{s + '/base':>11}" for s in sides if s != "base"))
for label, get in rows:
    vals = {s: statistics.median(get(r) for r in v) for s, v in sides.items()}
    base = vals.get("base")
    print(f"{label:<14}" + "".join(f"{v:>12.2f}" for v in vals.values()) +
          "".join(f"{vals[s] / base:>11.3f}" if base else f"{'-':>11}" for s in sides if s != "base"))
PY
