# SPDX-License-Identifier: Apache-2.0
"""Instructions per unit of work, two builds side by side (callgrind).

CPU seconds from /proc spread 10-40% between runs on a shared 2-core
machine, too much to show "within 5%" between two versions of the code.
Instructions retired do not depend on what else the machine runs, so this
counts them under valgrind's callgrind, for the exporter's own hot paths:

  grpc   Instructions per probe in the gRPC collector's scrape
         (grpc_collect, inclusive): the exporter probing N targets of one
         poh_node_sim over kept connections. Two runs, W and W+K scrapes;
         the difference over K*N probes leaves out start-up and the first
         scrape's connects.
  mongo  Instructions per change event in the change stream thread
         (stream_main, inclusive): a backlog of E events drained after a
         restart (parse, two latency histograms, state file per batch).
         Two runs, E1 and E2 events; the difference over E2-E1 leaves out
         connecting and the first batch.

Both builds run against the same simulators (NEW's), so the peer's replies
are identical. The render path is a library call: compare it with
bench/render's bench_render under callgrind --toggle-collect=poh_render
(docs/benchmarks.md shows how).

usage: ir_compare.py OLD_BUILD NEW_BUILD [grpc|mongo|all]
(IR_KEEP=1 keeps the callgrind files, for callgrind_annotate.)
Prints a table and NEW/OLD ratios. Needs valgrind (apt-get install valgrind)."""
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
from benchlib import start_node_sim, stop, wait_log  # noqa: E402
import pohtest  # noqa: E402

GRPC_TARGETS = (100, 1000)
GRPC_WARM, GRPC_MORE = 2, 10
MONGO_EVENTS = (50000, 250000)


def callgrind_total(path):
    """Instructions collected in a callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in %s" % path)


def start_exporter(build, cfg, tmp, tag, fn):
    out = os.path.join(tmp, "cg.%s.out" % tag)
    log = os.path.join(tmp, "%s.log" % tag)
    cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=" + fn,
           "--callgrind-out-file=" + out,
           os.path.join(build, "poh_exporter"), "--config.file=" + cfg,
           "--web.listen-address=127.0.0.1:0", "--log.level=info"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    port = int(wait_log(log, r"listening on 127\.0\.0\.1:(\d+)", timeout=120).group(1))
    return proc, port, out, log


def stop_exporter(proc, out):
    if not stop(proc, 120):
        raise RuntimeError("exporter did not stop on SIGTERM")
    return callgrind_total(out)


def scrape(port):
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 headers={"X-Prometheus-Scrape-Timeout-Seconds": "120"})
    with urllib.request.urlopen(req, timeout=180) as r:
        return r.read().decode()


def grpc_run(build, addrs, n, scrapes, tmp, tag):
    cfg = os.path.join(tmp, "grpc-%s.yml" % tag)
    with open(cfg, "w") as f:
        f.write("grpc:\n  - name: bench\n    timeout: 60s\n    targets:\n")
        for a in addrs[:n]:
            f.write('      - "%s"\n' % a)
    proc, port, out, log = start_exporter(build, cfg, tmp, tag, "grpc_collect")
    try:
        for _ in range(scrapes):
            m = pohtest.parse_exposition(scrape(port))
            ok = sum(1 for v in pohtest.find(m, "poh_probe_success").values() if v == 1)
            if ok != n:
                raise RuntimeError("%s: %d of %d probes succeeded" % (tag, ok, n))
    finally:
        total = stop_exporter(proc, out)
    return total


def grpc_bench(builds, new_build, tmp):
    sim_bin = os.path.join(new_build, "tests", "sim", "poh_node_sim", "poh_node_sim")
    sim, addrs = start_node_sim(sim_bin, max(GRPC_TARGETS))
    rows = []
    try:
        for n in GRPC_TARGETS:
            per = []
            for name, build in builds:
                a = grpc_run(build, addrs, n, GRPC_WARM, tmp, "%s-%d-a" % (name, n))
                b = grpc_run(build, addrs, n, GRPC_WARM + GRPC_MORE, tmp, "%s-%d-b" % (name, n))
                per.append((b - a) / (GRPC_MORE * n))
            rows.append(("grpc probe, %d targets" % n, "instructions/probe", per))
    finally:
        stop(sim)
    return rows


def mongo_run(build, sim_mod, new_build, events, tmp, tag):
    import mongoexp
    state = os.path.join(tmp, "state-" + tag)
    os.makedirs(state)
    sim = sim_mod.MongoSim("--oplog-size-mb", "4096", "--max-docs", "0").start()
    try:
        cfg = os.path.join(tmp, "mongo-%s.yml" % tag)
        with open(cfg, "w") as f:
            f.write(mongoexp.config([{"name": "main", "uri": sim.uri,
                                      "streams": [mongoexp.TX_STREAM]}], state))
        # First start: the stream opens and saves its start point; no events yet.
        proc, port, out, log = start_exporter(build, cfg, tmp, tag + "-open", "stream_main")
        try:
            wait_metric(port, "poh_mongodb_change_stream_up", 1, 120)
        finally:
            stop_exporter(proc, out)
        left = events
        while left:
            k = min(100000, left)
            sim.insert(k)
            left -= k
        proc, port, out, log = start_exporter(build, cfg, tmp, tag, "stream_main")
        try:
            wait_metric(port, "poh_mongodb_changes_total", events, 600, operation="insert")
        finally:
            total = stop_exporter(proc, out)
    finally:
        sim.stop()
    return total


def wait_metric(port, name, want, timeout, **labels):
    """Until the sum of name's series with these labels is want."""
    last = [None]

    def reached():
        vals = pohtest.find(pohtest.parse_exposition(scrape(port)), name, **labels).values()
        last[0] = sum(vals) if vals else None
        return last[0] == want

    if not pohtest.wait_until(reached, timeout=timeout, interval=0.5):
        raise RuntimeError("%s%s stuck at %s, want %s" % (name, labels, last[0], want))


def mongo_bench(builds, new_build, tmp):
    os.environ["POH_BUILD_DIR"] = new_build
    import mongosim
    per = []
    e1, e2 = MONGO_EVENTS
    for name, build in builds:
        a = mongo_run(build, mongosim, new_build, e1, tmp, "%s-%d" % (name, e1))
        b = mongo_run(build, mongosim, new_build, e2, tmp, "%s-%d" % (name, e2))
        per.append((b - a) / (e2 - e1))
    return [("change stream drain", "instructions/event", per)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    old, new = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    what = sys.argv[3] if len(sys.argv) > 3 else "all"
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed")
    builds = [("old", old), ("new", new)]
    tmp = tempfile.mkdtemp(prefix="poh-ir-")
    rows = []
    try:
        if what in ("grpc", "all"):
            rows += grpc_bench(builds, new, tmp)
        if what in ("mongo", "all"):
            rows += mongo_bench(builds, new, tmp)
    finally:
        if os.environ.get("IR_KEEP"):
            print("callgrind files kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%-26s %-20s %14s %14s %8s" % ("path", "unit", "old", "new", "new/old"))
    for label, unit, (o, n) in rows:
        print("%-26s %-20s %14.0f %14.0f %8.4f" % (label, unit, o, n, n / o))


if __name__ == "__main__":
    main()
