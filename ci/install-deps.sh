#!/usr/bin/env bash
# Installs the Debian packages listed in ci/packages.txt (skips the apt round trip when all are present).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t packages < <(grep -v '^\s*#' ci/packages.txt | grep -v '^\s*$')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  # dpkg's per-package lines go to a log (shown only when the install fails).
  log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
    "${missing[@]}" >"$log" 2>&1 || { tail -40 "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
echo "dependencies: all ${#packages[@]} packages present"
