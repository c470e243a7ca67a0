#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Flake sweep (issue 19 item 4): the whole suite N times back to back, both
# builds at once (RelWithDebInfo and Debug + ASan/UBSan, `ctest -j2` each)
# with one busy-loop CPU hog beside them, on a loaded 2-core machine. Prints
# one line per run and the tests that failed; keeps each run's ctest output
# (sweep-plain-N.log, sweep-asan-N.log) in the build directories' parent.
# Run it on a clean clone with nothing else running.
# Usage: bash scripts/flake_sweep.sh [N=5]   (SKIP_BUILD=1 reuses the builds)
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
export CI=true # a test whose tool scripts/deps.sh installs may not skip
PLAIN=${PLAIN_DIR:-build-sweep} ASAN=${ASAN_DIR:-build-sweep-asan}
if [ -z "${SKIP_BUILD:-}" ]; then
  { cmake -S . -B "$PLAIN" -DPOH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$PLAIN" -j"$(nproc)" &&
    cmake -S . -B "$ASAN" -DPOH_WERROR=ON -DPOH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug &&
    cmake --build "$ASAN" -j"$(nproc)"; } >sweep-build.log 2>&1 || { tail -50 sweep-build.log; exit 1; }
fi
echo "sweep at $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $N runs"
failed=0
for i in $(seq 1 "$N"); do
  sha1sum /dev/zero & hog=$!
  t0=$(date +%s)
  (cd "$PLAIN" && ctest -j2 --timeout 600 --output-on-failure >"../sweep-plain-$i.log" 2>&1) & a=$!
  (cd "$ASAN" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest -j2 --timeout 600 --output-on-failure >"../sweep-asan-$i.log" 2>&1) & b=$!
  wait $a; ra=$?; wait $b; rb=$?
  kill $hog
  echo "run $i ($(( $(date +%s) - t0 )) s): plain: $(grep -o '[0-9]*% tests passed.*' "sweep-plain-$i.log")" \
       " asan: $(grep -o '[0-9]*% tests passed.*' "sweep-asan-$i.log")"
  grep -h "(Failed)\|(Timeout)\|(SEGFAULT)\|Exception" "sweep-plain-$i.log" "sweep-asan-$i.log" | sed 's/^/    /'
  [ $ra -eq 0 ] && [ $rb -eq 0 ] || failed=1
done
exit $failed
