# SPDX-License-Identifier: Apache-2.0
"""gRPC health probe fan-out: poh_exporter vs prometheus-blackbox-exporter.

For 10, 100 and 1,000 targets (distinct ports of one poh_node_sim) it
measures, in the same run against the same targets:
  * poh_exporter: wall time of one /metrics scrape that probes every target,
    and the exporter's CPU time (utime+stime from /proc) per probe;
  * blackbox_exporter: wall time of probing every target through its /probe
    (one HTTP request per target, all in flight together, as Prometheus would
    scrape N probe targets), and its CPU per probe.
Both sides are scraped over kept-alive HTTP connections, as Prometheus does
(one per scrape target: one for poh_exporter, one per probed target for
blackbox_exporter), so neither pays a TCP handshake per scrape.
Wall is the median of several rounds after a warm-up round; every
probe's success is checked, so a fast failure cannot pass for a fast probe.
Prints a table and the ratios. Not a test: it reports, it does not judge,
except that it exits non-zero if a probe failed.

Usage: grpc_fanout.py BUILD_DIR [rounds]   (env BLACKBOX overrides the binary)
"""
import os
import re
import shutil
import signal
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import read_line, wait_log  # noqa: E402
import urllib.request

SIZES = (10, 100, 1000)
MIN_PROBES = 5000  # per size and side, for the CPU figure's resolution
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def http_get(url, headers=None, timeout=30):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


class PohExporter:
    def __init__(self, binary, targets, tmp):
        cfg = os.path.join(tmp, "poh.yml")
        with open(cfg, "w") as f:
            f.write("grpc:\n  - name: bench\n    timeout: 5s\n    targets:\n")
            for t in targets:
                f.write("      - \"%s\"\n" % t)
        self.log = os.path.join(tmp, "poh.log")
        self.proc = subprocess.Popen([binary, "--config.file=" + cfg,
                                      "--web.listen-address=127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        port = wait_log(self.log, r'listening on 127\.0\.0\.1:(\d+)').group(1)
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

    def start_clients(self, targets):
        """One thread and one kept-alive connection per probed target."""
        self.targets = targets
        self.go = threading.Barrier(len(targets) + 1)
        self.done = threading.Barrier(len(targets) + 1)
        self.results = [0] * len(targets)
        self.quit = False
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(len(targets))]
        for t in self.threads:
            t.start()

    def _client(self, i):
        host, port = self.base[len("http://"):].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        path = "/probe?module=grpc_health&target=%s" % self.targets[i]
        while True:
            self.go.wait()
            if self.quit:
                return
            try:
                conn.request("GET", path, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
                body = conn.getresponse().read().decode()
                self.results[i] = 1 if re.search(r"^probe_success 1$", body, re.M) else 0
            except OSError:
                self.results[i] = 0
            self.done.wait()

    def round(self):
        self.go.wait()
        t0 = time.monotonic()
        self.done.wait()
        wall = time.monotonic() - t0
        return wall, sum(self.results)

    def stop_clients(self):
        self.quit = True
        self.go.wait()
        for t in self.threads:
            t.join(10)

    def stop(self):
        stop(self.proc)


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
    sim = subprocess.Popen([sim_bin, "--listen", "127.0.0.1:0", "--ports", str(max(SIZES))],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    bb = None
    failed = False
    rows = []
    try:
        line = read_line(sim.stdout, 30)
        if not line.startswith("ports="):
            raise RuntimeError("poh_node_sim did not start: %r" % line)
        ports = line.split()[0][len("ports="):].split(",")
        all_targets = ["127.0.0.1:%s" % p for p in ports]
        bb = Blackbox(blackbox_bin, tmp)
        for n in SIZES:
            targets = all_targets[:n]
            # /proc CPU times tick in 10 ms: small N needs more rounds.
            r = max(rounds, MIN_PROBES // n)
            poh = PohExporter(exporter, targets, tmp)
            try:
                pw, pcpu, pok = measure(r, poh.round, n, poh.proc.pid)
            finally:
                poh.stop()
            bb.start_clients(targets)
            try:
                bw, bcpu, bok = measure(r, bb.round, n, bb.proc.pid)
            finally:
                bb.stop_clients()
            if pok != n or bok != n:
                failed = True
            rows.append((n, pw, bw, pcpu, bcpu, pok, bok))
        # The same largest set written as host names: those go through
        # gRPC's resolver and client channel instead of the exporter's own
        # connections (docs/grpc_probes.md, Operations).
        n = SIZES[-1]
        named = ["localhost:%s" % t.rsplit(":", 1)[1] for t in all_targets[:n]]
        poh = PohExporter(exporter, named, tmp)
        try:
            nw, ncpu, nok = measure(max(rounds, MIN_PROBES // n), poh.round, n, poh.proc.pid)
        finally:
            poh.stop()
        if nok != n:
            failed = True
    finally:
        if bb:
            bb.stop()
        stop(sim)
        shutil.rmtree(tmp, ignore_errors=True)

    print("gRPC health probes, one scrape of N targets: median wall of max(%d, %d/N) rounds "
          "after a warm-up; CPU = process utime+stime over those rounds / probes"
          % (rounds, MIN_PROBES))
    print("%8s | %14s %14s %8s | %16s %16s %8s | %s" % (
        "targets", "poh wall ms", "blackbox ms", "ratio", "poh CPU us/probe",
        "bb CPU us/probe", "ratio", "successes poh/bb"))
    for n, pw, bw, pcpu, bcpu, pok, bok in rows:
        print("%8d | %14.1f %14.1f %7.1fx | %16.1f %16.1f %7.1fx | %d/%d, %d/%d" % (
            n, pw * 1e3, bw * 1e3, bw / pw if pw else float("inf"), pcpu * 1e6, bcpu * 1e6,
            bcpu / pcpu if pcpu else float("inf"), pok, n, bok, n))
    big = rows[-1]
    print("%8s | %14.1f %14s %8s | %16.1f %16.1f %7.1fx | %d/%d  (targets as localhost:PORT)" % (
        "%d name" % n, nw * 1e3, "", "", ncpu * 1e6, big[4] * 1e6, big[4] / ncpu if ncpu else 0,
        nok, n))
    print("goal: %d targets under 250 ms wall: %.1f ms (%s)" % (
        big[0], big[1] * 1e3, "met" if big[1] < 0.25 else "NOT met"))
    print("goal: exporter CPU per probe under 1/20 of blackbox_exporter's: 1/%.1f (%s)" % (
        big[4] / big[3] if big[3] else float("inf"),
        "met" if big[3] * 20 < big[4] else "NOT met"))
    if failed:
        print("some probes failed: the figures above are not comparable")
        sys.exit(1)


if __name__ == "__main__":
    main()
