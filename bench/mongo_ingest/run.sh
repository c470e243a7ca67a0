#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# MongoDB change stream ingest: events/s poh_exporter consumes and its CPU
# per event (backlog drain and live), side by side with a bare libmongoc
# change stream consumer on the same events, against the 200,000 events per
# core-second goal; and the commands one scrape sends with 10 vs 10,000
# collections (must be equal), and with 10 vs 100,000 chunks of a sharded
# cluster behind a mongos (must be equal too).
# Usage: bench/mongo_ingest/run.sh [events]   (default 1000000)
#        bench/mongo_ingest/run.sh chunks     (the chunks comparison alone)
# BUILD_DIR overrides the (Release) build directory.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-release}
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target poh_exporter mongo_rs_sim bench_mongo_raw_watch; } \
       >"$BUILD_DIR/bench-mongo-ingest-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-mongo-ingest-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
exec /usr/bin/python3 "$ROOT/bench/mongo_ingest/mongo_ingest.py" "$BUILD_DIR" "${1:-1000000}"
