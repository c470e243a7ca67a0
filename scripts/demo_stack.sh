# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/demo.sh: starts the bundled simulators on loopback and
# appends their sections to "$config". Uses start() and $work from demo.sh.

# PoH x2 and Presence x1 from one poh_node_sim (gRPC health + PoH state).
sim="$bdir"/tests/sim/poh_node_sim/poh_node_sim
"$sim" --listen 127.0.0.1:0 --listen 127.0.0.1:0 --listen 127.0.0.1:0 \
  --service presence.Presence=SERVING >"$work/poh_node_sim.out" 2>"$work/poh_node_sim.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/poh_node_sim.out" ] && break; sleep 0.1; done
IFS=, read -r poh1 poh2 presence < <(head -n1 "$work/poh_node_sim.out" | sed -E 's/^ports=([0-9,]+) .*/\1/')
simctl=$(head -n1 "$work/poh_node_sim.out" | sed -E 's/.*control=([0-9]+).*/\1/')
cat >>"$config" <<YAML
grpc:
  - name: poh
    targets: [127.0.0.1:$poh1, 127.0.0.1:$poh2]
    health_service: poh.PoH
    timeout: 2s
    state:
      method: /poh.PoH/GetState
      fields:
        - {path: "1", metric: poh_node_tick_height, help: "Current PoH tick height", type: uint64}
        - {path: "2", metric: poh_node_slot, help: "Current PoH slot", type: uint64}
        - {path: "3", metric: poh_node_hashes_per_second, help: "PoH hash rate", type: double}
  - name: presence
    targets: [127.0.0.1:$presence]
    health_service: presence.Presence
    timeout: 2s
YAML
echo "demo: PoH nodes on :$poh1 and :$poh2, Presence on :$presence (poh_node_sim)"

# MongoDB: a replica-set simulator (primary + 2 simulated secondaries) whose
# generator writes 200 transactions/s into dag.transactions and approves each
# 500 ms later, so Tx/s, storage and approval latency move in the demo.
msim="$bdir"/tests/sim/mongo_rs_sim/mongo_rs_sim
"$msim" --port 0 --control-port 0 --secondaries 2 --rate 200 --approve-after 500 \
  >"$work/mongo_rs_sim.out" 2>"$work/mongo_rs_sim.log" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$work/mongo_rs_sim.out")" -ge 2 ] && break; sleep 0.1; done
mport=$(sed -n 1p "$work/mongo_rs_sim.out")
mctl=$(sed -n 2p "$work/mongo_rs_sim.out")
# Secondaries 1 s and 3 s behind, for the replication lag panel.
exec 3<>"/dev/tcp/127.0.0.1/$mctl"
for cmd in "LAG 1 1" "LAG 2 3"; do echo "$cmd" >&3; read -r _ <&3; done
exec 3<&- 3>&-
cat >>"$config" <<YAML
mongodb:
  - name: main
    uri: mongodb://127.0.0.1:$mport/?replicaSet=rs0
    change_streams:
      - name: tx
        database: dag
        collection: transactions
        latencies:
          - {name: storage, from_field: created_at, to: commit}
          - {name: approval, from_field: created_at, to_field: approved_at}
YAML
echo "demo: MongoDB replica set simulator on :$mport (control :$mctl), 200 tx/s"

# OpenTelemetry: otlp_sink receives the exporter's spans over OTLP/gRPC and
# writes them as JSON lines to $work/spans.jsonl.
"$bdir/tests/sim/otlp_sink/otlp_sink" --out "$work/spans.jsonl" \
  >"$work/otlp_sink.out" 2>"$work/otlp_sink.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/otlp_sink.out" ] && break; sleep 0.1; done
otlp=$(head -n1 "$work/otlp_sink.out")
cat >>"$config" <<YAML
tracing:
  enabled: true
  endpoint: 127.0.0.1:$otlp
YAML
echo "demo: OTLP sink on :$otlp writing spans to $work/spans.jsonl"
