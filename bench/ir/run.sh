#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Instructions per unit of work of two revisions side by side, under
# valgrind's callgrind: per gRPC probe and per change event
# (bench/ir/ir_compare.py), and per poh_render call of OLD's bench_render
# (the same benchmark source built against each revision's library).
# Instruction counts do not depend on what else the machine runs, so this
# shows a few percent where CPU seconds from /proc cannot.
# Usage: bench/ir/run.sh OLD_REV [NEW_REV]   (NEW_REV defaults to HEAD)
# WORK overrides where the two worktrees and their Release builds go.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 OLD_REV [NEW_REV]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
WORK=${WORK:-/tmp/poh_exporter-bench-ir}
mkdir -p "$WORK"

build() { # side rev
    dir="$WORK/$1"
    if [ -d "$dir" ]; then
        git -C "$dir" checkout -q --detach "$2"
    else
        git -C "$ROOT" worktree add -q --detach "$dir" "$2"
    fi
    echo "$1: $(git -C "$dir" log --oneline -1 | cut -c1-72)"
    if ! { cmake -S "$dir" -B "$dir/rel" -DCMAKE_BUILD_TYPE=Release &&
           cmake --build "$dir/rel" -j"$(nproc)" --target poh_exporter poh_node_sim mongo_rs_sim \
               bench_render; } >"$WORK/$1-build.log" 2>&1; then
        tail -30 "$WORK/$1-build.log" >&2
        exit 1
    fi
}
build old "$1"
build new "${2:-HEAD}"

# OLD's bench_render.c compiled and linked as NEW's build does its own.
flags="$WORK/new/rel/bench/render/CMakeFiles/bench_render.dir/flags.make"
get() { sed -n "s/^$1 = //p" "$flags"; }
# shellcheck disable=SC2046
cc $(get C_DEFINES) $(get C_INCLUDES) $(get C_FLAGS) -c "$WORK/old/bench/render/bench_render.c" \
    -o "$WORK/bench_render_old.o"
link=$(sed 's/.*-o bench_render *//' "$WORK/new/rel/bench/render/CMakeFiles/bench_render.dir/link.txt")
# shellcheck disable=SC2086
(cd "$WORK/new/rel/bench/render" && cc -O3 "$WORK/bench_render_old.o" -o "$WORK/bench_render_old_on_new" $link)

render_ir() { # binary name
    valgrind --tool=callgrind --toggle-collect=poh_render --callgrind-out-file="$WORK/cg.render.$2" \
        "$1" 2 >/dev/null 2>&1
    sed -n 's/^totals: //p; s/^summary: //p' "$WORK/cg.render.$2" | head -1
}
ro=$(render_ir "$WORK/old/rel/bench/render/bench_render" old)
rn=$(render_ir "$WORK/bench_render_old_on_new" new)
echo "poh_render, all calls of OLD's bench_render 2 (10k and 100k series, text and OpenMetrics):"
echo "  instructions old $ro new $rn new/old $(echo "scale=4; $rn / $ro" | bc)"
exec python3 "$ROOT/bench/ir/ir_compare.py" "$WORK/old/rel" "$WORK/new/rel"
