#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mongo_rs_sim change-stream throughput: events/s delivered to one libmongoc
# consumer (drain and live), the ratio to the 200,000/s goal, and a plain find
# cursor over the same documents as the peer.
# Usage: bench/mongo_sim/run.sh [events]   (default 1000000)
# BUILD_DIR overrides the (Release) build directory.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-release}
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target mongo_rs_sim bench_mongo_sim; } \
       >"$BUILD_DIR/bench-mongo-sim-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-mongo-sim-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
exec "$BUILD_DIR/bench/mongo_sim/bench_mongo_sim" \
    "$BUILD_DIR/tests/sim/mongo_rs_sim/mongo_rs_sim" "${1:-1000000}"
