#!/usr/bin/env bash
# expect.sh <0|1: must fail> <extended regex the output must match> [more regexes...] -- command...
# Runs the command (under its own 120 s limit), prints its output, and checks both.
set -u
must_fail=$1; shift
regexes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do regexes+=("$1"); shift; done
shift
out=$(timeout 120 "$@" 2>&1); rc=$?
printf '%s\n' "$out"
echo "---- exit status $rc"
if [ "$rc" -eq 124 ]; then echo "FAIL: hung (killed after 120 s)"; exit 1; fi
if [ "$must_fail" = 1 ] && [ "$rc" -eq 0 ]; then echo "FAIL: expected a failing exit status"; exit 1; fi
if [ "$must_fail" = 0 ] && [ "$rc" -ne 0 ]; then echo "FAIL: expected success"; exit 1; fi
for re in "${regexes[@]}"; do
  if ! grep -Eq -- "$re" <<<"$out"; then echo "FAIL: output does not match: $re"; exit 1; fi
done
echo "PASS"
