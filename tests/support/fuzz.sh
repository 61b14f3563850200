#!/usr/bin/env bash
# fuzz.sh TARGET [SECONDS] [WORK]: builds one libFuzzer harness with clang (libFuzzer + AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs it for SECONDS (default 20) from a small seed corpus. Skips (exit 0 with a
# note) when clang++ is absent. Targets:
#   safetensors_header  the safetensors header parser (tests/io/fuzz_safetensors_header.cpp)
#   image_decoders      vesseltune-pack's image decoders, stb_image compiled in and instrumented
#                       (tests/data/fuzz_image_decoders.cpp); seeds: small images of every format (Pillow)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$here/../..
target=$1; seconds=${2:-20}; work=${3:-$(mktemp -d)}
mkdir -p "$work/corpus_$target"
CLANG=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$CLANG" ]; then echo "fuzz: clang++ not found, skipped"; exit 0; fi
build() { "$CLANG" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -I"$root/include" "$@"; }
corpus=$work/corpus_$target
case $target in
  safetensors_header)
    build "$root/tests/io/fuzz_safetensors_header.cpp" "$root/src/io/safetensors_header.cpp" \
      "$root/src/core/check.cpp" -o "$work/fuzz_$target"
    printf '\x3a\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    \x00\x00\x80\x3f' \
      >"$corpus/seed"
    max_len=512 ;;
  image_decoders)
    # At most 2^20 pixels per image here, so that every input decodes in well under the timeout.
    build -I/usr/include/stb "-DVT_MAX_IMAGE_PIXELS=(int64_t{1}<<20)" "$root/tests/data/fuzz_image_decoders.cpp" \
      "$root/src/data/codec.cpp" "$root/src/data/stb_input_checks.cpp" \
      "$root/src/core/atomic_file.cpp" "$root/src/core/remove_tree.cpp" "$root/src/core/check.cpp" \
      -ltiff -lz -o "$work/fuzz_$target"
    /usr/bin/python3 "$root/tests/data/make_fuzz_seeds.py" "$corpus" || echo "fuzz: no Pillow, an empty corpus"
    max_len=4096 ;;
  *) echo "fuzz: unknown target $target"; exit 2 ;;
esac
# -seed: the same mutations every run (CI is reproducible; run by hand with another seed to explore).
"$work/fuzz_$target" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -max_len=$max_len -timeout=10 "$corpus"
echo "fuzz: $target, no crash in ${seconds}s"
