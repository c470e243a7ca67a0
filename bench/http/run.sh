#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HTTP throughput of /metrics: poh_exporter against prometheus-node-exporter,
# side by side in one run, with payloads of similar size.
#
# The exporter's payload is made real, not padded: a grpc group probing
# poh_node_sim targets on loopback (health + state call per target per
# scrape), with enough targets that the body is about the size of
# node_exporter's. Both do their real per-scrape work (node_exporter reads
# /proc and /sys; poh_exporter probes gRPC targets). wrk runs the same
# connections/threads/duration against each; plain and gzip.
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
echo "payload: poh_exporter $ex_bytes bytes, $ex_samples samples ($NT gRPC targets probed per scrape)"
echo "payload: node_exporter $ne_bytes bytes, $ne_samples samples"

# -c1: scrapes one after another, each does its full work. -c8: concurrent
# scrapes; poh_exporter lets scrapes that arrive while a collection is in
# flight share it (each target is probed once), node_exporter collects per
# request.
rps() { wrk "$@" | awk '/Requests\/sec/ {print $2}'; }
printf "%-36s %14s %14s %8s\n" "wrk, ${SECS}s each" "poh_exporter" "node_exporter" "ratio"
for mode in "plain -t1 -c1" "plain -t2 -c8" "gzip -t2 -c8"; do
  read -r enc t c <<<"$mode"
  hdr=(); [ "$enc" = gzip ] && hdr=(-H "Accept-Encoding: gzip")
  a=$(rps "$t" "$c" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$ex_port/metrics")
  b=$(rps "$t" "$c" -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$ne_port/metrics")
  printf "%-36s %12s/s %12s/s %7.2fx\n" "/metrics $enc $t $c" "$a" "$b" "$(echo "$a / $b" | bc -l)"
done
cpu() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
echo "CPU seconds used during the run: poh_exporter $(cpu "$ex_pid"), node_exporter $(cpu "${pids[0]}")"
