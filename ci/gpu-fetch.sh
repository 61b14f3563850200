#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for the GPU machine, which cannot download anything: the shared Boost 1.74
# packages and env.sh (../shared/gpu/fetch-debs.sh), plus the Debian packages this project needs that the GPU
# machine lacks. env.sh unpacks every .deb in the folder into a private prefix there.
# Use: bash ci/gpu-fetch.sh; then every device command carries .gpu and starts with `source .gpu/env.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ../shared/gpu/fetch-debs.sh .gpu
cd .gpu
apt-get download -qq $(grep -v '^\s*#' ../ci/gpu-packages.txt | grep -v '^\s*$') 2>&1 | grep -v unsandboxed || true
echo "$(ls *.deb | wc -l) packages in .gpu ($(du -sh . | cut -f1))"
