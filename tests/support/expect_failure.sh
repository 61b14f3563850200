#!/usr/bin/env bash
# expect_failure.sh SECONDS REGEX COMMAND...: passes when COMMAND exits non-zero within SECONDS and its output
# matches REGEX. Used for the paths that must end a whole MPI job (aborts, timeouts, dead ranks).
set -u
limit=$1; pattern=$2; shift 2
output=$(timeout --kill-after=5 "$limit" "$@" 2>&1); status=$?
echo "$output"
if [ "$status" -eq 0 ]; then echo "FAIL: expected a non-zero exit"; exit 1; fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then echo "FAIL: still running after ${limit}s"; exit 1; fi
if ! grep -qE -e "$pattern" <<<"$output"; then echo "FAIL: output does not match /$pattern/"; exit 1; fi
echo "PASS: exit $status within ${limit}s, output matches /$pattern/"
