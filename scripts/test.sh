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
  rm -f "$dir/ctest.out" # the skip list below reads this run's summary only
  echo "=== build $dir ($*)"
  cmake -S . -B "$dir" -DPOH_WERROR=ON "$@" >/dev/null || return 1
  cmake --build "$dir" -j"$JOBS" || return 1
  echo "=== test $dir"
  (cd "$dir" && ctest -j"$JOBS" --output-on-failure --timeout 600) | tee "$dir/ctest.out"
}
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DPOH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug || status=1
# Skipped tests and why, above the verdict: the names from CTest's summary
# ("The following tests did not run: ... (Skipped)") of this run, the reason
# from each one's "SKIPPED: ..." lines (pohtest.require) in LastTest.log.
skipped() {
  local dir=$1 out=$1/ctest.out log=$1/Testing/Temporary/LastTest.log
  [ -f "$out" ] || return 0
  sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$out" | while read -r name; do
    local why=""
    [ -f "$log" ] && why=$(awk -v t="$name" '/^[0-9]+\/[0-9]+ Testing: / {cur = $3}
        cur == t && /^SKIPPED: / {printf "%s%s", sep, substr($0, 10); sep = "; "}' "$log")
    echo "  $dir: $name: ${why:-no SKIPPED line in its output}"
  done
}
skips=$(skipped build; skipped build-asan)
if [ -n "$skips" ]; then echo "=== skipped tests:"; echo "$skips"; else echo "=== skipped tests: none"; fi
if [ $status -eq 0 ]; then echo "=== ALL SUITES PASSED (plain and ASan+UBSan)"; else echo "=== SUITE FAILED"; fi
exit $status
