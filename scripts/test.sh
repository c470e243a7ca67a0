#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: plain build, then AddressSanitizer + UBSan build, each
# running every unit, simulator and end-to-end test. Exit status is non-zero
# if anything fails. Usage: bash scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1
JOBS=$(nproc)
status=0
run_suite() {
  local dir=$1; shift
  echo "=== build $dir ($*)"
  cmake -S . -B "$dir" -DPOH_WERROR=ON "$@" >/dev/null || return 1
  cmake --build "$dir" -j"$JOBS" || return 1
  echo "=== test $dir"
  (cd "$dir" && ctest -j"$JOBS" --output-on-failure --timeout 600)
}
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DPOH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || status=1
# Skipped tests and why (their "SKIPPED: ..." line), above the verdict.
skipped() {
  local log=$1/Testing/Temporary/LastTest.log
  [ -f "$log" ] || return 0
  awk -v dir="$1" '/^[0-9]+\/[0-9]+ Testing: / {name = $3}
                   /^SKIPPED: / {print "  " dir ": " name ": " substr($0, 10)}' "$log"
}
skips=$(skipped build; skipped build-asan)
if [ -n "$skips" ]; then echo "=== skipped:"; echo "$skips"; else echo "=== skipped: none"; fi
if [ $status -eq 0 ]; then echo "=== ALL SUITES PASSED (plain and ASan+UBSan)"; else echo "=== SUITE FAILED"; fi
exit $status
