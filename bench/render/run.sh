#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Rendering benchmark: poh_render() on 10k and 100k series in both formats,
# side by side with a naive snprintf renderer and gzip, in one run.
# Usage: bench/render/run.sh [iterations-for-100k]   (default 20; 10k runs 10x)
# BUILD_DIR overrides the (Release) build directory.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-release}
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_render; } >"$BUILD_DIR/bench-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
exec "$BUILD_DIR/bench/render/bench_render" "${1:-20}"
