# SPDX-License-Identifier: Apache-2.0
"""gRPC health probe fan-out: poh_exporter vs prometheus-blackbox-exporter.

For 10, 100 and 1,000 targets (distinct ports of one poh_node_sim) it
measures, in the same run against the same targets, the wall time of probing
every target once and each exporter's CPU time (utime+stime from /proc) per
probe, four ways:
  metrics   poh_exporter, one /metrics scrape that probes every configured
            target over its kept connection (how it is meant to be used);
  probe     poh_exporter, one /probe request per target, the target one of
            the group's own: kept connections;
  probe-new poh_exporter, one /probe request per target, the target allowed
            by probe.allow but not configured: a new connection per probe,
            closed afterwards, as blackbox_exporter does;
  blackbox  blackbox_exporter's /probe, one request per target (a new
            connection per probe).
The three /probe rows are driven by the same client: one thread and one
kept-alive HTTP connection per probed target, all in flight together, as
Prometheus would scrape N probe targets. The same largest set is then probed
again written as host names (localhost:PORT): with kept connections the name
is looked up once; with probe-new and blackbox each probe includes the
lookup.
Wall is the median of several rounds after a warm-up round; every probe's
success is checked, so a fast failure cannot pass for a fast probe. Prints a
table and the ratios. Not a test: it reports, it does not judge, except that
it exits non-zero if a probe failed.

Usage: grpc_fanout.py BUILD_DIR [rounds]   (env BLACKBOX overrides the binary)
"""
import os
import re
import shutil
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import start_node_sim, stop, wait_log  # noqa: E402
import urllib.request

SIZES = (10, 100, 1000)
MIN_PROBES = 5000  # per size and side, for the CPU figure's resolution
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def http_get(url, headers=None, timeout=30):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


class PohExporter:
    def __init__(self, binary, targets, tmp):
        cfg = os.path.join(tmp, "poh.yml")
        with open(cfg, "w") as f:
            # room for 1,000 /probe requests at once from one client address
            f.write("web:\n  max_connections: 2048\n  max_connections_per_client: 2048\n"
                    "  max_concurrent_probes: 2048\n")
            f.write("grpc:\n  - name: bench\n    timeout: 5s\n"
                    "    probe:\n      allow: [\"127.0.0.0/8\", \"localhost\"]\n"
                    "    targets:\n")
            for t in targets:
                f.write("      - \"%s\"\n" % t)
        self.log = os.path.join(tmp, "poh.log")
        self.proc = subprocess.Popen([binary, "--config.file=" + cfg,
                                      "--web.listen-address=127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        port = wait_log(self.log, r'listening on 127\.0\.0\.1:(\d+)').group(1)
        self.base = "http://127.0.0.1:%s" % port
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        self.n = len(targets)

    def round(self):
        t0 = time.monotonic()
        self.conn.request("GET", "/metrics",
                          headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
        body = self.conn.getresponse().read().decode()
        wall = time.monotonic() - t0
        ok = len(re.findall(r'^poh_probe_success\{[^}]*\} 1$', body, re.M))
        return wall, ok

    def stop(self):
        stop(self.proc)


class Blackbox:
    def __init__(self, binary, tmp):
        cfg = os.path.join(tmp, "blackbox.yml")
        with open(cfg, "w") as f:
            f.write("modules:\n  grpc_health:\n    prober: grpc\n    timeout: 5s\n"
                    "    grpc:\n      service: \"\"\n      tls: false\n"
                    "      preferred_ip_protocol: ip4\n")
        self.tmp = tmp
        self.log = os.path.join(tmp, "blackbox.log")
        port = self._free_port()
        self.proc = subprocess.Popen([binary, "--config.file=" + cfg,
                                      "--web.listen-address=127.0.0.1:%d" % port],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 15
        while True:
            try:
                http_get(self.base + "/-/healthy", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("blackbox_exporter did not start: " + open(self.log).read())
                time.sleep(0.05)

    @staticmethod
    def _free_port():
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def stop(self):
        stop(self.proc)


class ProbeClient:
    """The same /probe client for both exporters: one thread and one
    kept-alive connection per probed target, released together each round."""

    def __init__(self, base, module, targets, success_re):
        self.host, self.port = base[len("http://"):].split(":")
        self.paths = ["/probe?module=%s&target=%s" % (module, t) for t in targets]
        self.success = re.compile(success_re, re.M)
        n = len(targets)
        self.go = threading.Barrier(n + 1)
        self.done = threading.Barrier(n + 1)
        self.results = [0] * n
        self.quit = False
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def _client(self, i):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        while True:
            self.go.wait()
            if self.quit:
                return
            try:
                conn.request("GET", self.paths[i],
                             headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
                body = conn.getresponse().read().decode()
                self.results[i] = 1 if self.success.search(body) else 0
            except OSError:
                self.results[i] = 0
                conn.close()
            self.done.wait()

    def round(self):
        self.go.wait()
        t0 = time.monotonic()
        self.done.wait()
        wall = time.monotonic() - t0
        return wall, sum(self.results)

    def stop(self):
        self.quit = True
        self.go.wait()
        for t in self.threads:
            t.join(10)


POH_OK = r"^poh_probe_success 1$"
BB_OK = r"^probe_success 1$"


def measure(rounds, fn, n, pid):
    fn()  # warm-up: channels, connections, first allocations
    walls, oks = [], []
    c0 = cpu_seconds(pid)
    for _ in range(rounds):
        wall, ok = fn()
        walls.append(wall)
        oks.append(ok)
    cpu = cpu_seconds(pid) - c0
    return statistics.median(walls), cpu / (rounds * n), min(oks)


def with_client(base, module, targets, success_re, rounds, pid):
    client = ProbeClient(base, module, targets, success_re)
    try:
        return measure(rounds, client.round, len(targets), pid)
    finally:
        client.stop()


def run_size(exporter, bb, targets, rounds, tmp):
    """The four ways for one target set. probe-new runs against a second
    exporter whose group configures none of these targets (one unrelated
    address) and allows them all, so each /probe opens and closes its own
    connection."""
    n = len(targets)
    row = {}
    poh = PohExporter(exporter, targets, tmp)
    try:
        pid = poh.proc.pid
        row["metrics"] = measure(rounds, poh.round, n, pid)
        row["probe"] = with_client(poh.base, "bench", targets, POH_OK, rounds, pid)
    finally:
        poh.stop()
    poh = PohExporter(exporter, ["127.0.0.1:1"], tmp)
    try:
        row["probe-new"] = with_client(poh.base, "bench", targets, POH_OK, rounds, poh.proc.pid)
    finally:
        poh.stop()
    row["blackbox"] = with_client(bb.base, "grpc_health", targets, BB_OK, rounds, bb.proc.pid)
    return row


def main():
    build = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    exporter = os.path.join(build, "poh_exporter")
    sim_bin = os.path.join(build, "tests", "sim", "poh_node_sim", "poh_node_sim")
    blackbox_bin = os.environ.get("BLACKBOX", "/usr/bin/prometheus-blackbox-exporter")
    for b in (exporter, sim_bin, blackbox_bin):
        if not os.access(b, os.X_OK):
            sys.exit("missing %s" % b)

    tmp = tempfile.mkdtemp(prefix="poh-grpc-fanout-")
    sim, all_targets = start_node_sim(sim_bin, max(SIZES))
    bb = None
    failed = False
    rows = []
    try:
        bb = Blackbox(blackbox_bin, tmp)
        for n in SIZES:
            targets = all_targets[:n]
            # /proc CPU times tick in 10 ms: small N needs more rounds.
            r = max(rounds, MIN_PROBES // n)
            row = run_size(exporter, bb, targets, r, tmp)
            failed |= any(ok != n for _, _, ok in row.values())
            rows.append((n, row))
        # The same largest set written as host names.
        n = SIZES[-1]
        named = ["localhost:%s" % t.rsplit(":", 1)[1] for t in all_targets[:n]]
        r = max(rounds, MIN_PROBES // n)
        named_row = run_size(exporter, bb, named, r, tmp)
        failed |= any(ok != n for _, _, ok in named_row.values())
    finally:
        if bb:
            bb.stop()
        stop(sim)
        shutil.rmtree(tmp, ignore_errors=True)

    ways = ("metrics", "probe", "probe-new", "blackbox")
    print("against poh_node_sim, the project's gRPC node simulator on loopback (not real nodes)")
    print("gRPC health probes of N targets, each probed once per round: median wall of "
          "max(%d, %d/N) rounds after a warm-up; CPU = the serving process's utime+stime over "
          "those rounds / probes" % (rounds, MIN_PROBES))
    print("metrics = poh /metrics, kept connections; probe = poh /probe of configured targets, "
          "kept connections;")
    print("probe-new = poh /probe of allowed targets, a new connection per probe; blackbox = "
          "blackbox_exporter /probe, a new connection per probe")
    print("%-10s | %s | %s | %s" % (
        "targets", " ".join("%10s" % ("%s ms" % w[:7]) for w in ways),
        " ".join("%12s" % ("%s us/p" % w[:7]) for w in ways), "fewest successes of a round"))
    for label, row in [(str(n), row) for n, row in rows] + [("%d name" % SIZES[-1], named_row)]:
        print("%-10s | %s | %s | %s" % (
            label, " ".join("%10.1f" % (row[w][0] * 1e3) for w in ways),
            " ".join("%12.1f" % (row[w][1] * 1e6) for w in ways),
            "/".join("%d" % row[w][2] for w in ways)))
    print("ratios, blackbox CPU per probe / poh's:")
    for label, row in [(str(n), row) for n, row in rows] + [("%d name" % SIZES[-1], named_row)]:
        bb_cpu = row["blackbox"][1]
        print("  %-10s metrics %5.1fx   probe %5.1fx   probe-new (like for like) %5.1fx" % (
            label, *(bb_cpu / row[w][1] if row[w][1] else float("inf")
                     for w in ("metrics", "probe", "probe-new"))))
    big = rows[-1][1]
    print("goal: %d targets under 250 ms wall: %.1f ms (%s)" % (
        SIZES[-1], big["metrics"][0] * 1e3, "met" if big["metrics"][0] < 0.25 else "NOT met"))
    print("goal: exporter CPU per probe under 1/20 of blackbox_exporter's (/metrics): 1/%.1f (%s)" % (
        big["blackbox"][1] / big["metrics"][1] if big["metrics"][1] else float("inf"),
        "met" if big["metrics"][1] * 20 < big["blackbox"][1] else "NOT met"))
    if failed:
        print("some probes failed: the figures above are not comparable")
        sys.exit(1)


if __name__ == "__main__":
    main()
