#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HTTP throughput and CPU of /metrics: poh_exporter against
# prometheus-node-exporter, side by side in one run.
#
# The exporter's payload is made real, not padded: a grpc group probing
# poh_node_sim targets on loopback (health + state call per target per
# scrape), with enough targets that the body is about the size of
# node_exporter's. Two node_exporters run beside it:
#   - "textfile": only the textfile collector, serving the exporter's own
#     exposition (taken from it once) - the same series, so the rows compare
#     like with like: what each server does per request to serve them;
#   - "default": the default collectors (reads /proc and /sys per request),
#     a different exposition of similar size, kept for context.
# wrk runs the same connections/threads/duration against each, plain and
# gzip. CPU is each server's utime+stime (/proc/PID/stat, in clock ticks of
# getconf CLK_TCK) over its own wrk window, per request.
#
# usage: bench/http/run.sh [BUILD_DIR] [SECONDS]   (BUILD_DIR also from the environment)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD_DIR:-build}}
SECS=${2:-10}
EXPORTER=$BUILD/poh_exporter
SIM=$BUILD/tests/sim/poh_node_sim/poh_node_sim
NODE_EXPORTER=$(command -v prometheus-node-exporter || true)
for x in "$EXPORTER" "$SIM"; do [ -x "$x" ] || { echo "missing $x: build first (cmake --build $BUILD)"; exit 1; }; done
[ -n "$NODE_EXPORTER" ] || { echo "prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }

work=$(mktemp -d /tmp/poh-bench-http.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${POH_BENCH_DEBUG:-}" ] && trap "cat $work/*.log; cleanup" EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

ne_port=$(free_port)
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$ne_port" >"$work/ne.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ne_port/metrics"
ne_bytes=$(curl -s "http://127.0.0.1:$ne_port/metrics" | wc -c)

# One simulator process, many ports sharing one behaviour.
NT=${POH_BENCH_TARGETS:-}
start_exporter() {
  local n=$1
  "$SIM" --listen 127.0.0.1:0 --ports "$n" >"$work/sim.out" 2>"$work/sim.log" &
  sim_pid=$!
  pids+=($sim_pid)
  for _ in $(seq 100); do [ -s "$work/sim.out" ] && break; sleep 0.1; done
  ports=$(head -n1 "$work/sim.out" | sed -E 's/^ports=([0-9,]+) .*/\1/')
  targets=$(echo "$ports" | tr ',' '\n' | sed 's/^/127.0.0.1:/' | paste -sd, -)
  cat >"$work/poh.yml" <<YAML
grpc:
  - name: poh
    targets: [$targets]
    health_service: poh.PoH
    timeout: 2s
    state:
      method: /poh.PoH/GetState
      fields:
        - {path: "1", metric: poh_node_tick_height, help: "Current PoH tick height", type: uint64}
        - {path: "3", metric: poh_node_hashes_per_second, help: "PoH hash rate"}
YAML
  ex_port=$(free_port)
  "$EXPORTER" --config.file="$work/poh.yml" --web.listen-address="127.0.0.1:$ex_port" \
    --log.level=warn >"$work/ex.log" 2>&1 &
  ex_pid=$!
  pids+=($ex_pid)
  wait_http "http://127.0.0.1:$ex_port/metrics"
}
stop_exporter() { kill "$ex_pid" "$sim_pid"; wait "$ex_pid" "$sim_pid" 2>/dev/null || true; }

if [ -z "$NT" ]; then
  start_exporter 4
  b4=$(curl -s "http://127.0.0.1:$ex_port/metrics" | wc -c)
  stop_exporter
  start_exporter 8
  b8=$(curl -s "http://127.0.0.1:$ex_port/metrics" | wc -c)
  stop_exporter
  per=$(( (b8 - b4) / 4 )); base=$(( b4 - 4 * per ))
  NT=$(( (ne_bytes - base + per / 2) / per )); [ "$NT" -lt 1 ] && NT=1
fi
start_exporter "$NT"
ex_bytes=$(curl -s "http://127.0.0.1:$ex_port/metrics" | wc -c)
ex_samples=$(curl -s "http://127.0.0.1:$ex_port/metrics" | grep -vc '^#')
ne_samples=$(curl -s "http://127.0.0.1:$ne_port/metrics" | grep -vc '^#')
echo "against poh_node_sim, the project's gRPC node simulator on loopback (not real nodes)"
echo "payload: poh_exporter $ex_bytes bytes, $ex_samples samples ($NT gRPC targets probed per scrape)"
echo "payload: node_exporter $ne_bytes bytes, $ne_samples samples"

# The same series from node_exporter's textfile collector.
mkdir -p "$work/textfile"
curl -s "http://127.0.0.1:$ex_port/metrics" >"$work/textfile/poh.prom"
tf_port=$(free_port)
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$tf_port" --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$work/textfile" \
  --web.disable-exporter-metrics >"$work/tf.log" 2>&1 &
tf_pid=$!
pids+=($tf_pid)
wait_http "http://127.0.0.1:$tf_port/metrics"
tf_bytes=$(curl -s "http://127.0.0.1:$tf_port/metrics" | wc -c)
tf_samples=$(curl -s "http://127.0.0.1:$tf_port/metrics" | grep -vc '^#')
echo "payload: node_exporter textfile $tf_bytes bytes, $tf_samples samples (the exporter's series + node_textfile_*)"
echo "per request: poh_exporter probes its $NT targets (health + GetState) and renders; concurrent"
echo "  scrapes share one collection in flight. node_exporter textfile reads and parses the .prom"
echo "  file and renders it. node_exporter default reads /proc and /sys and renders."

TICKS=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rps() { wrk "$@" | awk '/Requests\/sec/ {print $2}'; }
# one wrk window against one server: prints "req/s cpu_ms_per_request"
measure() {
  local pid=$1 url=$2; shift 2
  local t0 t1 r
  t0=$(ticks "$pid")
  r=$(rps "$@" -d"${SECS}s" "$url")
  t1=$(ticks "$pid")
  echo "$r $(echo "($t1 - $t0) * 1000 / $TICKS / ($r * $SECS)" | bc -l)"
}
# -c1: scrapes one after another, each does its full work. -c8: concurrent
# scrapes; poh_exporter lets scrapes that arrive while a collection is in
# flight share it (each target is probed once), node_exporter collects per
# request.
printf "%-24s %22s %22s %22s %9s %9s\n" "wrk, ${SECS}s each" "poh_exporter" "ne textfile (same)" \
  "ne default (context)" "poh/tf" "poh/def"
printf "%-24s %22s %22s %22s %9s %9s\n" "" "req/s  CPU ms/req" "req/s  CPU ms/req" \
  "req/s  CPU ms/req" "req/s" "req/s"
for mode in "plain -t1 -c1" "plain -t2 -c8" "gzip -t2 -c8"; do
  read -r enc t c <<<"$mode"
  hdr=(); [ "$enc" = gzip ] && hdr=(-H "Accept-Encoding: gzip")
  read -r a ac <<<"$(measure "$ex_pid" "http://127.0.0.1:$ex_port/metrics" "$t" "$c" "${hdr[@]}")"
  read -r b bc_ <<<"$(measure "$tf_pid" "http://127.0.0.1:$tf_port/metrics" "$t" "$c" "${hdr[@]}")"
  read -r d dc <<<"$(measure "${pids[0]}" "http://127.0.0.1:$ne_port/metrics" "$t" "$c" "${hdr[@]}")"
  printf "%-24s %12s %9.3f %12s %9.3f %12s %9.3f %8.2fx %8.2fx\n" "/metrics $enc $t $c" \
    "$a" "$ac" "$b" "$bc_" "$d" "$dc" "$(echo "$a / $b" | bc -l)" "$(echo "$a / $d" | bc -l)"
done
