# SPDX-License-Identifier: Apache-2.0
"""Memory over time: poh_exporter under the production load, side by side
with prometheus-blackbox-exporter probing the same gRPC targets.

The load (all on loopback, all knobs below):
  * poh_node_sim with --targets ports; poh_exporter probes every one of them
    (grpc.health.v1 Check, plus the /poh.PoH/GetState state call unless
    --no-state) at each scrape of /metrics, every --scrape-interval seconds;
  * mongo_rs_sim writing --rate transactions/s into dag.transactions, each
    approved --approve-after ms later; poh_exporter follows it with --streams
    change streams, each with a storage and an approval latency;
  * optionally (--tracing) an otlp_sink receiving the exporter's spans;
  * blackbox_exporter (same run) probes each target through /probe once
    every --blackbox-interval seconds, spread evenly, from a pool of client
    threads over kept-alive connections (as Prometheus would scrape it).
Every --sample seconds it reads VmRSS, RssAnon, threads, open fds and CPU
seconds of both exporters from /proc. At the end it prints a table, the
growth over the last half of the run (least-squares slope, MB/min) and the
ratio to blackbox; it writes soak.csv and soak.svg (gnuplot) into --out.

Guards (for the short CTest mode): --max-rss-mb and --max-growth-mb-min fail
the run when exceeded; the run also fails when probes or change events stop
flowing, since then the memory figures would describe an idle exporter.
Under a sanitizer build (--asan), the bounds are not checked (ASan's shadow
memory and quarantine dominate); instead the exporter is stopped with
SIGTERM and the run fails if LeakSanitizer reports anything.

Usage: soak.py BUILD_DIR [options]   (soak.py --help)
"""
import argparse
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import read_line, start_node_sim, stop, wait_log  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# What Prometheus 2.x sends when it scrapes (OpenMetrics preferred, gzip).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def proc_sample(pid):
    """VmRSS and RssAnon in MB, threads, open fds, CPU seconds of pid."""
    out = {"rss": 0.0, "anon": 0.0, "threads": 0, "fds": 0, "cpu": 0.0}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmRSS":
                out["rss"] = int(v.split()[0]) / 1024.0
            elif k == "RssAnon":
                out["anon"] = int(v.split()[0]) / 1024.0
            elif k == "Threads":
                out["threads"] = int(v.split()[0])
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exporter_pid(root):
    """The poh_exporter process at or below root (when run under --wrap)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "poh_exporter":
                    return pid
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    raise RuntimeError("no poh_exporter process below pid %d" % root)


def slope_mb_per_min(points):
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx * 60.0


class Scraper(threading.Thread):
    """Scrapes poh_exporter's /metrics every interval over one kept-alive
    connection with Prometheus's headers (OpenMetrics, gzip); remembers what
    the last body said."""

    def __init__(self, port, interval, stop_ev):
        super().__init__(daemon=True)
        self.port, self.interval, self.stop_ev = port, interval, stop_ev
        self.scrapes = self.errors = 0
        self.probe_ok = self.probe_total = 0
        self.best_ok = 0          # the most probes ok in one scrape of the run
        self.changes = 0.0
        self.failures = {}        # poh_request_failures_total by code, at the last scrape
        self.requests = 0.0       # poh_requests_total, at the last scrape
        self.short_scrapes = 0    # scrapes in which some probe failed
        self.last_body = ""

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        timeout = "%g" % max(1.0, min(self.interval, 10.0))
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            try:
                conn.request("GET", "/metrics", headers={
                    "X-Prometheus-Scrape-Timeout-Seconds": timeout,
                    "Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
                resp = conn.getresponse()
                raw = resp.read()
                if resp.getheader("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                body = raw.decode(errors="replace")
                self.scrapes += 1
                self.last_body = body
                self.probe_total = len(re.findall(r"^poh_probe_success\{", body, re.M))
                self.probe_ok = len(re.findall(r"^poh_probe_success\{[^}]*\} 1$", body, re.M))
                self.best_ok = max(self.best_ok, self.probe_ok)
                if self.probe_ok < self.probe_total:
                    self.short_scrapes += 1
                self.requests = sum(float(v) for v in re.findall(
                    r"^poh_requests_total\{[^}]*\} (\S+)$", body, re.M))
                fails = {}
                for code, v in re.findall(
                        r'^poh_request_failures_total\{[^}]*code="([^"]*)"[^}]*\} (\S+)$',
                        body, re.M):
                    fails[code] = fails.get(code, 0.0) + float(v)
                self.failures = fails
                self.changes = sum(float(v) for v in re.findall(
                    r'^poh_mongodb_changes_total\{[^}]*operation="insert"[^}]*\} (\S+)$',
                    body, re.M))
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            nxt += self.interval
            self.stop_ev.wait(max(0.0, nxt - time.monotonic()))
        conn.close()


class BlackboxDriver:
    """Probes every target through blackbox_exporter's /probe once per
    interval, spread evenly over the interval, from a few client threads,
    each with a kept-alive connection."""

    def __init__(self, port, targets, interval, stop_ev, threads=16):
        self.port, self.targets, self.interval = port, targets, interval
        self.stop_ev = stop_ev
        self.ok = self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(k, threads), daemon=True)
                        for k in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def _client(self, k, nthreads):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        mine = self.targets[k::nthreads]
        if not mine:
            return
        step = self.interval / len(mine)
        nxt = time.monotonic() + k * self.interval / len(self.targets)
        i = 0
        while not self.stop_ev.is_set():
            path = "/probe?module=grpc_health&target=%s" % mine[i % len(mine)]
            i += 1
            good = False
            try:
                conn.request("GET", path,
                             headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})
                body = conn.getresponse().read().decode(errors="replace")
                good = re.search(r"^probe_success 1$", body, re.M) is not None
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
            nxt += step
            self.stop_ev.wait(max(0.0, nxt - time.monotonic()))
        conn.close()

    def join(self):
        for t in self.threads:
            t.join(35)


def exporter_config(a, targets, mport, otlp_port, state_dir):
    lines = ["state_dir: %s" % state_dir, "log:", "  level: info"]
    if a.buffer_limit:
        lines += ["memory:", "  buffer_limit: %s" % a.buffer_limit]
    if targets:
        lines += ["grpc:", "  - name: soak", "    timeout: 5s", "    targets:"]
        lines += ['      - "%s"' % t for t in targets]
        if a.state:
            lines += ["    state:", "      method: /poh.PoH/GetState", "      fields:",
                      '        - {path: "1", metric: poh_node_tick_height, '
                      'help: "Current PoH tick height", type: uint64}',
                      '        - {path: "2", metric: poh_node_slot, '
                      'help: "Current PoH slot", type: uint64}',
                      '        - {path: "3", metric: poh_node_hashes_per_second, '
                      'help: "PoH hash rate", type: double}']
    if a.streams:
        lines += ["mongodb:", "  - name: soak",
                  "    uri: mongodb://127.0.0.1:%d/?replicaSet=rs0" % mport,
                  "    change_streams:"]
        for i in range(a.streams):
            lines += ["      - name: tx%d" % i, "        database: dag",
                      "        collection: transactions", "        latencies:",
                      "          - {name: storage, from_field: created_at, to: commit}",
                      "          - {name: approval, from_field: created_at, "
                      "to_field: approved_at}"]
    if a.tracing:
        lines += ["tracing:", "  enabled: true", "  endpoint: 127.0.0.1:%d" % otlp_port]
    else:
        lines += ["tracing:", "  enabled: false"]
    return "\n".join(lines) + "\n"


def plot(out, csv_path, have_bb):
    gp = shutil.which("gnuplot")
    if not gp:
        print("no gnuplot on PATH: plot not written (apt-get install gnuplot-nox)")
        return None
    svg = os.path.join(out, "soak.svg")
    script = ["set terminal svg size 900,500 dynamic font 'sans,12'",
              "set output '%s'" % svg, "set datafile separator ','",
              "set key top left", "set xlabel 'seconds'", "set ylabel 'MB'",
              "set grid", "set yrange [0:*]",
              "set title 'VmRSS and RssAnon over time'",
              "plot '%s' every ::1 using 1:2 with lines lw 2 title 'poh\\_exporter VmRSS', "
              "'' every ::1 using 1:3 with lines dt 2 title 'poh\\_exporter RssAnon'" % csv_path]
    if have_bb:
        script[-1] += (", '' every ::1 using 1:7 with lines lw 2 title 'blackbox VmRSS', "
                       "'' every ::1 using 1:8 with lines dt 2 title 'blackbox RssAnon'")
    subprocess.run([gp], input="\n".join(script) + "\n", text=True, check=True)
    return svg


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("build")
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--state", dest="state", action="store_true", default=True,
                   help="probe the GetState call as well as health (default)")
    p.add_argument("--no-state", dest="state", action="store_false")
    p.add_argument("--streams", type=int, default=10)
    p.add_argument("--rate", type=int, default=2000, help="tx/s written by mongo_rs_sim")
    p.add_argument("--approve-after", type=int, default=100, help="ms")
    p.add_argument("--scrape-interval", type=float, default=1.0, help="s")
    p.add_argument("--duration", type=float, default=1800.0, help="s")
    p.add_argument("--sample", type=float, default=5.0, help="s between samples")
    p.add_argument("--tracing", action="store_true", help="spans to a bundled otlp_sink")
    p.add_argument("--buffer-limit", default=None,
                   help="the exporter's memory.buffer_limit (default: its own default)")
    p.add_argument("--no-blackbox", dest="blackbox", action="store_false", default=True)
    p.add_argument("--blackbox-interval", type=float, default=5.0,
                   help="s between two probes of one target through blackbox")
    p.add_argument("--out", default=None, help="directory for soak.csv and soak.svg")
    p.add_argument("--max-rss-mb", type=float, default=None)
    p.add_argument("--max-growth-mb-min", type=float, default=None)
    p.add_argument("--asan", action="store_true",
                   help="sanitizer build: skip the memory bounds, fail on leaks")
    p.add_argument("--wrap", default="",
                   help="command to run the exporter under, e.g. 'heaptrack -o FILE'; "
                        "the samples are then of the exporter process below it")
    p.add_argument("--env", action="append", default=[],
                   help="KEY=VALUE for the exporter's environment (e.g. LD_PRELOAD)")
    a = p.parse_args()

    exporter = os.path.join(a.build, "poh_exporter")
    node_sim = os.path.join(a.build, "tests", "sim", "poh_node_sim", "poh_node_sim")
    mongo_sim = os.path.join(a.build, "tests", "sim", "mongo_rs_sim", "mongo_rs_sim")
    sink = os.path.join(a.build, "tests", "sim", "otlp_sink", "otlp_sink")
    blackbox_bin = os.environ.get("BLACKBOX", "/usr/bin/prometheus-blackbox-exporter")
    need = [exporter, node_sim, mongo_sim] + ([sink] if a.tracing else [])
    if a.blackbox and a.targets:
        need.append(blackbox_bin)
    for b in need:
        if not os.access(b, os.X_OK):
            sys.exit("soak: missing %s" % b)

    tmp = tempfile.mkdtemp(prefix="poh-soak-")
    out = a.out or tmp
    os.makedirs(out, exist_ok=True)
    procs = []
    stop_ev = threading.Event()
    failures = []
    rows = []
    poh = bb = ppid = None
    try:
        targets = []
        if a.targets:
            sim, targets = start_node_sim(node_sim, a.targets, timeout=60,
                                          stderr=open(os.path.join(tmp, "node_sim.log"), "w"))
            procs.append(sim)
        mport = 0
        if a.streams:
            ms = subprocess.Popen([mongo_sim, "--port", "0", "--control-port", "0",
                                   "--rate", str(a.rate), "--approve-after",
                                   str(a.approve_after), "--log-level", "warn"],
                                  stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(tmp, "mongo_sim.log"), "w"))
            procs.append(ms)
            mport = int(read_line(ms.stdout, 30))
            read_line(ms.stdout, 30)
        otlp_port = 0
        if a.tracing:
            otlp_port = free_port()
            so = subprocess.Popen([sink, "--listen", "127.0.0.1:%d" % otlp_port, "--discard"],
                                  stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "otlp_sink.log"), "w"))
            procs.append(so)
        state_dir = os.path.join(tmp, "state")
        os.mkdir(state_dir, 0o700)
        cfg = os.path.join(tmp, "poh.yml")
        with open(cfg, "w") as f:
            f.write(exporter_config(a, targets, mport, otlp_port, state_dir))
        env = dict(os.environ)
        for kv in a.env:
            k, _, v = kv.partition("=")
            env[k] = v
        if a.asan:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:log_path=" + \
                os.path.join(tmp, "asan")
        plog = os.path.join(tmp, "poh.log")
        poh = subprocess.Popen(a.wrap.split() + [exporter, "--config.file=" + cfg,
                                                 "--web.listen-address=127.0.0.1:0"],
                               stdout=subprocess.DEVNULL, stderr=open(plog, "w"), env=env)
        # heaptrack takes minutes to start on a busy machine
        started = 600 if a.wrap else 120
        pport = int(wait_log(plog, r"listening on 127\.0\.0\.1:(\d+)", started).group(1))
        ppid = exporter_pid(poh.pid) if a.wrap else poh.pid

        bport = None
        if a.blackbox and targets:
            bcfg = os.path.join(tmp, "blackbox.yml")
            with open(bcfg, "w") as f:
                f.write("modules:\n  grpc_health:\n    prober: grpc\n    timeout: 5s\n"
                        "    grpc:\n      service: \"\"\n      tls: false\n"
                        "      preferred_ip_protocol: ip4\n")
            bport = free_port()
            blog = os.path.join(tmp, "blackbox.log")
            bb = subprocess.Popen([blackbox_bin, "--config.file=" + bcfg,
                                   "--web.listen-address=127.0.0.1:%d" % bport],
                                  stdout=subprocess.DEVNULL, stderr=open(blog, "w"))
            deadline = time.monotonic() + 30
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", bport, timeout=1)
                    c.request("GET", "/-/healthy")
                    c.getresponse().read()
                    break
                except OSError:
                    if time.monotonic() > deadline or bb.poll() is not None:
                        raise RuntimeError("blackbox_exporter did not start")
                    time.sleep(0.05)

        print("against simulators on loopback: poh_node_sim (gRPC targets) and mongo_rs_sim "
              "(replica set), not real nodes or a real mongod")
        print("soak: %d targets (%s), %d streams at %d tx/s (approve after %d ms), "
              "scrape every %gs, %gs, tracing %s; blackbox: %s"
              % (a.targets, "health + GetState" if a.state else "health only", a.streams,
                 a.rate if a.streams else 0, a.approve_after, a.scrape_interval, a.duration,
                 "on" if a.tracing else "off",
                 "each target every %gs through /probe" % a.blackbox_interval
                 if bb else "not run"), flush=True)
        scraper = Scraper(pport, a.scrape_interval, stop_ev)
        driver = BlackboxDriver(bport, targets, a.blackbox_interval, stop_ev) if bb else None
        t0 = time.monotonic()
        base = {"poh": proc_sample(ppid), "bb": proc_sample(bb.pid) if bb else None}
        scraper.start()
        if driver:
            driver.start()
        hdr = ("%6s | %8s %8s %7s %4s %6s | %8s %8s %7s %4s %6s | %7s %9s"
               % ("s", "poh RSS", "anon", "threads", "fds", "cpu s", "bb RSS", "anon",
                  "threads", "fds", "cpu s", "scrapes", "inserts"))
        print(hdr)
        print("-" * len(hdr), flush=True)
        nxt = t0
        while True:
            now = time.monotonic() - t0
            if poh.poll() is not None:
                failures.append("poh_exporter exited with %s" % poh.returncode)
                break
            s = proc_sample(ppid)
            b = proc_sample(bb.pid) if bb else None
            row = (now, s, b, scraper.scrapes, scraper.changes)
            rows.append(row)
            print("%6.0f | %8.1f %8.1f %7d %4d %6.1f | %8s %8s %7s %4s %6s | %7d %9.0f" % (
                now, s["rss"], s["anon"], s["threads"], s["fds"], s["cpu"] - base["poh"]["cpu"],
                "%.1f" % b["rss"] if b else "-", "%.1f" % b["anon"] if b else "-",
                b["threads"] if b else "-", b["fds"] if b else "-",
                "%.1f" % (b["cpu"] - base["bb"]["cpu"]) if b else "-",
                scraper.scrapes, scraper.changes), flush=True)
            if now >= a.duration:
                break
            nxt += a.sample
            time.sleep(max(0.0, min(nxt, t0 + a.duration) - time.monotonic()))
        stop_ev.set()
        scraper.join(70)
        if driver:
            driver.join()

        csv_path = os.path.join(out, "soak.csv")
        with open(csv_path, "w") as f:
            f.write("seconds,poh_vmrss_mb,poh_rssanon_mb,poh_threads,poh_fds,poh_cpu_s,"
                    "bb_vmrss_mb,bb_rssanon_mb,bb_threads,bb_fds,bb_cpu_s,scrapes,inserts\n")
            for now, s, b, sc, ch in rows:
                f.write("%.1f,%.2f,%.2f,%d,%d,%.2f,%s,%s,%s,%s,%s,%d,%.0f\n" % (
                    now, s["rss"], s["anon"], s["threads"], s["fds"],
                    s["cpu"] - base["poh"]["cpu"],
                    "%.2f" % b["rss"] if b else "", "%.2f" % b["anon"] if b else "",
                    b["threads"] if b else "", b["fds"] if b else "",
                    "%.2f" % (b["cpu"] - base["bb"]["cpu"]) if b else "", sc, ch))
        svg = plot(out, csv_path, bb is not None)

        half = [r for r in rows if r[0] >= a.duration / 2]
        g_poh = slope_mb_per_min([(r[0], r[1]["rss"]) for r in half])
        g_poh_anon = slope_mb_per_min([(r[0], r[1]["anon"]) for r in half])
        last = rows[-1]
        print()
        print("poh_exporter: VmRSS %.1f MB at the end (max %.1f), RssAnon %.1f MB; growth over "
              "the last half %+.3f MB/min (RssAnon %+.3f); CPU %.1f s"
              % (last[1]["rss"], max(r[1]["rss"] for r in rows), last[1]["anon"], g_poh,
                 g_poh_anon, last[1]["cpu"] - base["poh"]["cpu"]))
        if bb:
            g_bb = slope_mb_per_min([(r[0], r[2]["rss"]) for r in half])
            print("blackbox:     VmRSS %.1f MB at the end (max %.1f), RssAnon %.1f MB; growth "
                  "over the last half %+.3f MB/min; CPU %.1f s"
                  % (last[2]["rss"], max(r[2]["rss"] for r in rows), last[2]["anon"], g_bb,
                     last[2]["cpu"] - base["bb"]["cpu"]))
            print("ratio poh/blackbox VmRSS at the end: %.2f (RssAnon %.2f)"
                  % (last[1]["rss"] / last[2]["rss"],
                     last[1]["anon"] / last[2]["anon"] if last[2]["anon"] else float("inf")))
            print("blackbox probes: %d ok, %d failed" % (driver.ok, driver.failed))
        print("poh_exporter scrapes: %d (%d failed); last scrape: %d/%d probes ok (best %d); "
              "inserts counted: %.0f (%.0f/s per stream over the run)"
              % (scraper.scrapes, scraper.errors, scraper.probe_ok, scraper.probe_total,
                 scraper.best_ok,
                 scraper.changes,
                 scraper.changes / max(1, a.streams) / max(1.0, a.duration)))
        print("poh_exporter probe calls: %.0f, failed: %s; scrapes with a failed probe: %d"
              % (scraper.requests, ", ".join("%s %.0f" % kv for kv in sorted(
                  scraper.failures.items())) or "none", scraper.short_scrapes))
        print("csv: %s" % csv_path)
        if svg:
            print("plot: %s" % svg)

        # A sanitizer build is several times slower: it must still keep up
        # with most of the load, or its leak report would be of an idle run.
        keep = 0.2 if a.asan else 0.5
        # Probes work: one scrape at least had (nearly) all of them ok. On a
        # machine loaded by other work a scrape's 1 s deadline cuts probes
        # that wait for a CPU, so later scrapes may have fewer ok: that is
        # allowed, but only as DEADLINE_EXCEEDED; any other code is a fault.
        if a.targets and scraper.best_ok < a.targets * (0.9 if a.asan else 0.99):
            failures.append("at most %d of %d probes succeeded in one scrape"
                            % (scraper.best_ok, a.targets))
        other = {k: v for k, v in scraper.failures.items() if k != "DEADLINE_EXCEEDED" and v}
        if other:
            failures.append("probes failed with %s" % other)
        if a.streams and scraper.changes < a.rate * a.streams * a.duration * keep:
            failures.append("change events not flowing: %.0f inserts counted" % scraper.changes)
        if scraper.scrapes < a.duration / a.scrape_interval * 0.5:
            failures.append("only %d scrapes in %gs" % (scraper.scrapes, a.duration))
        if not a.asan:
            if a.max_rss_mb is not None and last[1]["rss"] > a.max_rss_mb:
                failures.append("VmRSS %.1f MB over the bound %.1f MB"
                                % (last[1]["rss"], a.max_rss_mb))
            if a.max_growth_mb_min is not None and g_poh > a.max_growth_mb_min:
                failures.append("growth %.3f MB/min over the bound %.3f MB/min"
                                % (g_poh, a.max_growth_mb_min))
    finally:
        stop_ev.set()
        if ppid and ppid != poh.pid:
            try:
                os.kill(ppid, signal.SIGTERM)
            except OSError:
                pass
        if poh:
            stop(poh, 120)
        stop(bb)
        for pr in procs:
            stop(pr)
    if a.asan and poh is not None:
        reports = [f for f in os.listdir(tmp) if f.startswith("asan")]
        text = "".join(open(os.path.join(tmp, f), errors="replace").read() for f in reports)
        if "LeakSanitizer" in text or "ERROR: AddressSanitizer" in text:
            print(text[:20000])
            failures.append("the sanitizer reported at exit (above)")
        else:
            print("sanitizer: no leak and no error reported at exit (exit code %s)"
                  % poh.returncode)
        if poh.returncode != 0:
            failures.append("poh_exporter exited with %s" % poh.returncode)
    if failures:
        print("SOAK FAILED: " + "; ".join(failures))
        print("logs kept in %s" % tmp)
        sys.exit(1)
    if out != tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print("soak: ok")


if __name__ == "__main__":
    main()
