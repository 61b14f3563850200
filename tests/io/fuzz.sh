#!/usr/bin/env bash
# Builds the safetensors header fuzzer with clang (libFuzzer + AddressSanitizer) and runs it for SECONDS
# (default 20) from a small seed corpus. Skips (exit 0 with a note) when clang++ is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$here/../..
seconds=${1:-20}; work=${2:-$(mktemp -d)}
mkdir -p "$work"
CLANG=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$CLANG" ]; then echo "fuzz: clang++ not found, skipped"; exit 0; fi
"$CLANG" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -I"$root/include" \
  "$here/fuzz_safetensors_header.cpp" "$root/src/io/safetensors_header.cpp" "$root/src/core/check.cpp" -o "$work/fuzz_header"
mkdir -p "$work/corpus"
printf '\x3a\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    \x00\x00\x80\x3f' > "$work/corpus/seed"
"$work/fuzz_header" -max_total_time="$seconds" -max_len=512 "$work/corpus"
echo "fuzz: no crash in ${seconds}s"
