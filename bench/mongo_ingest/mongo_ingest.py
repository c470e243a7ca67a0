# SPDX-License-Identifier: Apache-2.0
"""MongoDB change stream ingest benchmark (issue 5).

1. Backlog drain: the simulator holds N change events the exporter has not
   seen (written while it was stopped, so the producer is never the
   bottleneck); the exporter restarts, resumes from its saved token and
   drains them with the full pipeline (parse, two latency histograms, state
   file with fsync per batch). Events/s wall and exporter CPU per event from
   /proc/<pid>/stat, versus the 200,000 events per CPU-second goal.
2. The same N events read by the plainest libmongoc consumer
   (bench_mongo_raw_watch: mongoc_collection_watch + next, nothing else),
   side by side: the driver's own cost per event.
3. Live: the simulator inserts N more while the exporter consumes.
4. Commands one scrape sends with 10 and with 10,000 collections.
5. A sharded cluster (mongo_rs_sim --shards 5, the exporter on the mongos):
   commands one scrape sends, its wall time and the exporter's CPU per
   scrape with 10 and with 100,000 chunks (issue 17).

usage: mongo_ingest.py BUILD_DIR [events]
       mongo_ingest.py BUILD_DIR chunks      (step 5 alone)"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ONLY_CHUNKS = len(sys.argv) > 2 and sys.argv[2] == "chunks"
N = int(sys.argv[2]) if len(sys.argv) > 2 and not ONLY_CHUNKS else 1000000
os.environ["POH_BUILD_DIR"] = BUILD
os.environ["POH_EXPORTER"] = os.path.join(BUILD, "poh_exporter")

import mongoexp  # noqa: E402
import mongosim  # noqa: E402
import pohtest  # noqa: E402

pohtest.EXPORTER = os.environ["POH_EXPORTER"]
CHUNK = 100000
GOAL = 200000

STREAM = """
- name: tx
  database: dag
  collection: transactions
  latencies:
    - {name: storage, from_field: created_at, to: commit}
    - {name: approval, from_field: created_at, to_field: approved_at}
"""


def count(exp):
    return mongoexp.value(exp, "poh_mongodb_changes_total", cluster="main", stream="tx",
                          operation="insert") or 0


def wait_count(exp, want, timeout=600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if count(exp) >= want:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError(f"exporter stuck at {count(exp)} of {want} events")


def insert(sim, n):
    left = n
    while left:
        k = min(CHUNK, left)
        sim.insert(k)
        left -= k


def scrape_cost(sim, e, scrapes=20):
    """Commands per scrape (handshakes and heartbeats, hello, left out as in
    step 4), wall ms and exporter CPU ms per scrape, over scrapes scrapes."""
    e.metrics()
    e.metrics()
    before = sim.commands()
    cpu0 = mongoexp.cpu_seconds(e.proc.pid)
    t = time.monotonic()
    for _ in range(scrapes):
        e.metrics()
    took = (time.monotonic() - t) / scrapes
    cpu = (mongoexp.cpu_seconds(e.proc.pid) - cpu0) / scrapes
    after = sim.commands()
    sent = {k: (v - before.get(k, 0)) / scrapes for k, v in after.items()
            if v != before.get(k, 0) and k not in ("hello", "isMaster", "ismaster")}
    return sum(sent.values()), took, cpu, sent


def chunk_commands(state_dir, args):
    """Step 5: the same scrape of a mongos with 10 and with 100,000 chunks."""
    out = {}
    for nchunks in (10, 100000):
        s = mongosim.MongoSim("--shards", "5").start()
        try:
            s.control("BALANCER off")
            s.control("SPLIT dag.transactions %d" % nchunks)  # 5 shards x 2 chunks to start
            e = pohtest.Exporter(mongoexp.config([{"name": "main", "uri": "mongodb://%s/" % s.address}],
                                                 state_dir), args=args)
            try:
                got = sum(pohtest.find(e.metrics(), "poh_mongodb_chunks", cluster="main").values())
                if got != nchunks:
                    raise RuntimeError(f"poh_mongodb_chunks sums to {got}, not {nchunks}")
                out[nchunks] = scrape_cost(s, e)
            finally:
                mongoexp.stop_checked(e)
        finally:
            s.stop()
    a, b = out[10], out[100000]
    print("sharded cluster (mongo_rs_sim --shards 5, exporter on the mongos), per scrape, mean of 20:")
    for n, (cmds, took, cpu, sent) in ((10, a), (100000, b)):
        print(f"  {n:>7,} chunks: {cmds:g} commands, {took * 1000:7.1f} ms wall, "
              f"{cpu * 1000:6.2f} ms exporter CPU  {sent}")
    print(f"  commands ratio {b[0] / a[0]:.2f}; wall ratio {b[1] / a[1]:.2f} (the simulator's side: it "
          f"groups every chunk document); exporter CPU ratio {b[2] / max(a[2], 1e-9):.2f}")
    return a[0] == b[0]


def main():
    state_dir = os.path.join(BUILD, "bench-mongo-ingest-state")  # on disk: fsync costs what it costs
    os.makedirs(state_dir, exist_ok=True)
    for f in os.listdir(state_dir):
        os.unlink(os.path.join(state_dir, f))
    args = ("--log.level=info",)
    if ONLY_CHUNKS:
        sys.exit(0 if chunk_commands(state_dir, args) else 1)
    sim = mongosim.MongoSim("--oplog-size-mb", "4096", "--max-docs", "0").start()
    cfg = mongoexp.config([{"name": "main", "uri": sim.uri, "streams": [STREAM]}], state_dir)
    try:
        # 1. backlog drain by the exporter
        exp = pohtest.Exporter(cfg, args=args)
        assert mongoexp.wait_stream_up(exp)
        mongoexp.stop_checked(exp)
        start = sim.counts()["last_ts"]
        t = time.monotonic()
        insert(sim, N)
        produce_s = time.monotonic() - t
        t0 = time.monotonic()
        exp = pohtest.Exporter(cfg, args=args)
        t1 = wait_count(exp, N)
        cpu = mongoexp.cpu_seconds(exp.proc.pid)
        drain_s = t1 - t0
        m = exp.metrics()
        assert count(exp) == N, count(exp)
        assert pohtest.value(m, "poh_storage_latency_seconds_count", cluster="main", stream="tx") == N

        # 3. live: the simulator writes while the exporter reads
        cpu_l0 = mongoexp.cpu_seconds(exp.proc.pid)
        sim_l0 = sim.cpu_seconds()
        t = time.monotonic()
        insert(sim, N)
        live_produce_s = time.monotonic() - t
        t1 = wait_count(exp, 2 * N)
        live_s = t1 - t
        live_cpu = mongoexp.cpu_seconds(exp.proc.pid) - cpu_l0
        live_sim_cpu = sim.cpu_seconds() - sim_l0
        mongoexp.stop_checked(exp)

        # 2. the same backlog through a bare libmongoc consumer
        raw = os.path.join(BUILD, "bench", "mongo_ingest", "bench_mongo_raw_watch")
        t = time.monotonic()
        p = subprocess.Popen([raw, sim.uri, "dag.transactions", str(N), str(start["t"]),
                              str(start["i"] + 1)], stdout=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        raw_wall = time.monotonic() - t
        out = p.stdout.read()
        p.stdout.close()
        if os.waitstatus_to_exitcode(status) != 0 or f"events={N}" not in out:
            raise RuntimeError(f"raw consumer failed: {out}")
        raw_cpu = ru.ru_utime + ru.ru_stime
    finally:
        sim.stop()

    # 4. commands per scrape
    cmds = {}
    for ncoll in (10, 10000):
        s = mongosim.MongoSim("--collections", str(ncoll)).start()
        e = pohtest.Exporter(mongoexp.config([{"name": "main", "uri": s.uri}], state_dir),
                             args=args)
        try:
            e.metrics()
            before = s.commands()
            t = time.monotonic()
            e.metrics()
            took = time.monotonic() - t
            after = s.commands()
            sent = {k: v - before.get(k, 0) for k, v in after.items()
                    if v != before.get(k, 0) and k not in ("hello", "isMaster", "ismaster")}
            cmds[ncoll] = (sum(sent.values()), took, sent)
        finally:
            mongoexp.stop_checked(e)
            s.stop()

    per_core = N / cpu
    print("against mongo_rs_sim, the project's replica-set simulator on loopback (not a real "
          "mongod: the figures measure the exporter's and libmongoc's side, not a server)")
    print(f"events: {N} inserts into dag.transactions (storage + approval latencies, "
          f"state saved with fsync per batch in {state_dir})")
    print(f"simulator produced the backlog at {N / produce_s:,.0f} events/s")
    print("backlog drain after a restart (resume from the saved token):")
    print(f"  poh_exporter          {N / drain_s:>12,.0f} events/s wall  "
          f"{cpu * 1e6 / N:6.2f} us CPU/event  {per_core:>12,.0f} events per CPU-second"
          f"  (startup included)")
    print(f"  libmongoc raw watch   {N / raw_wall:>12,.0f} events/s wall  "
          f"{raw_cpu * 1e6 / N:6.2f} us CPU/event  {N / raw_cpu:>12,.0f} events per CPU-second")
    print(f"  exporter CPU per event / raw driver CPU per event: {cpu / raw_cpu:.2f}")
    print(f"  goal {GOAL:,} events per exporter core-second: ratio {per_core / GOAL:.2f} "
          f"({'met' if per_core >= GOAL else 'NOT met'})")
    print(f"live (simulator inserting {N / live_produce_s:,.0f} events/s while the exporter reads):")
    print(f"  poh_exporter          {N / live_s:>12,.0f} events/s wall  "
          f"{live_cpu * 1e6 / N:6.2f} us CPU/event  {N / live_cpu:>12,.0f} events per CPU-second"
          f"  (simulator CPU {live_sim_cpu:.2f} s)")
    c10, c10k = cmds[10], cmds[10000]
    print(f"commands per scrape: 10 collections {c10[0]} ({c10[1] * 1000:.1f} ms), "
          f"10,000 collections {c10k[0]} ({c10k[1] * 1000:.1f} ms): ratio {c10k[0] / c10[0]:.2f} "
          f"{c10k[2]}")
    chunks_ok = chunk_commands(state_dir, args)
    if c10[0] != c10k[0] or not chunks_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
