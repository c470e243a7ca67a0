# SPDX-License-Identifier: Apache-2.0
"""The Grafana dashboard and the alert rules against a live demo stack.

The stack: mongo_rs_sim generating transactions and approvals, a second
mongo_rs_sim with two shards behind its mongos (cluster "sharded"), poh_node_sim
serving two PoH nodes, a Presence service and one PoH node that reports
NOT_SERVING, otlp_sink receiving spans, and the real exporter; a real
Prometheus server scrapes it every second and evaluates alerts.yml and recording_rules.yml (the heavier panels read the recorded series).

Every query of every dashboard panel (variables substituted: $cluster, $group,
$job -> .*, $__rate_interval -> 1m) runs through Prometheus' HTTP API and must
return data; the variables' label_values queries must list the stack's names;
a few panels must show the numbers the stack is known to produce; every
metric the alert rules use exists, every rule evaluates without error,
PohNodeDown is active for exactly the NOT_SERVING node and
PohMongoDBShardNoPrimary for a shard whose primary steps down."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import pohtest

PROMETHEUS = pohtest.which("prometheus")
OBS = os.path.join(pohtest.SOURCE, "docs", "observability")
DASHBOARD = os.path.join(OBS, "grafana_dash.json")
ALERTS = os.path.join(OBS, "alerts.yml")
RECORDING = os.path.join(OBS, "recording_rules.yml")
TX_RATE = 40          # generated inserts per second
APPROVE_AFTER_MS = 150


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dash):
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def substitute(expr, variables):
    """Grafana's substitution for an instant test query: every query variable
    matches everything, $__rate_interval is a window with several samples."""
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    for v in variables:
        expr = expr.replace("${%s}" % v, ".*").replace("$" + v, ".*")
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        raise AssertionError(f"unknown variable {left} in {expr}")
    return expr


class Prometheus:
    """A real Prometheus on loopback scraping the exporter every second and
    evaluating the given rule file every second."""

    def __init__(self, target, rule_files, tmp):
        self.port = pohtest.free_port()
        cfg = os.path.join(tmp, "prometheus.yml")
        rules = []
        for f in rule_files:
            rules.append(os.path.join(tmp, os.path.basename(f)))
            shutil.copy(f, rules[-1])
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    f"rule_files: {json.dumps(rules)}\n"
                    "scrape_configs:\n  - job_name: poh_exporter\n    static_configs:\n"
                    f"      - targets: [{json.dumps(target)}]\n")
        self.log = open(os.path.join(tmp, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                d = json.load(r)
        except OSError:
            return None
        return d["data"] if d.get("status") == "success" else None

    def query(self, q):
        d = self.api("query", query=q)
        return d["result"] if d else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpcsim
        import mongosim
        import otlpsink
        cls.tmp = tempfile.mkdtemp(prefix="poh-dash-")
        cls.stack = []
        try:
            cls.mongo = mongosim.MongoSim("--rate", str(TX_RATE),
                                          "--approve-after", str(APPROVE_AFTER_MS),
                                          "--secondaries", "2").start()
            cls.stack.append(lambda: cls.mongo.stop(check=False))
            cls.mongo.lag("1", 3)
            cls.sharded = mongosim.MongoSim("--shards", "2", "--rate", "10").start()
            cls.stack.append(lambda: cls.sharded.stop(check=False))
            # listeners: PoH, PoH, Presence, PoH that says NOT_SERVING
            cls.nodes = grpcsim.NodeSim([[], [], ["--service", "presence.Presence=SERVING"],
                                         ["--mode", "not_serving"]])
            cls.stack.append(cls.nodes.stop)
            cls.sink = otlpsink.Sink()
            cls.stack.append(cls.sink.stop)
            cls.down_target = cls.nodes.addr(3)
            poh = [cls.nodes.addr(0), cls.nodes.addr(1), cls.down_target]
            state = os.path.join(cls.tmp, "state")
            os.mkdir(state)
            # Prometheus scrapes every second with a 1s timeout; the exporter
            # answers 100ms before it.
            config = f"""
state_dir: {state}
web:
  scrape_timeout_offset: 100ms
grpc:
  - name: poh
    targets: [{", ".join(poh)}]
    health_service: poh.PoH
    timeout: 500ms
    state:
      method: /poh.PoH/GetState
      fields:
        - {{path: "1", metric: poh_node_tick_height, help: "Current PoH tick height", type: uint64}}
  - name: presence
    targets: [{cls.nodes.addr(2)}]
    health_service: presence.Presence
    timeout: 500ms
mongodb:
  - name: main
    uri: "{cls.mongo.uri}"
    change_streams:
      - name: tx
        database: dag
        collection: transactions
        latencies:
          - {{name: storage, from_field: created_at, to: commit}}
          - {{name: approval, from_field: created_at, to_field: approved_at}}
  - name: sharded
    uri: "mongodb://{cls.sharded.address}/"
tracing:
  endpoint: {cls.sink.endpoint}
  sample_ratio: 1.0
"""
            cls.exp = pohtest.Exporter(config)
            cls.stack.append(cls.exp.stop)
            # the dashboard's heavier panels read the recording rules' series
            cls.prom = Prometheus(f"127.0.0.1:{cls.exp.port}", (ALERTS, RECORDING), cls.tmp)
            cls.stack.append(cls.prom.stop)
            cls.dash = load_dashboard()
            cls.variables = [v["name"] for v in cls.dash["templating"]["list"]]
            cls.queries = [(p["title"], t["refId"], substitute(t["expr"], cls.variables))
                           for p in all_panels(cls.dash) for t in p.get("targets", [])]
            # Resumes and history loss happen in the demo too, so their panel has data.
            pohtest.wait_until(lambda: cls.prom.query('poh_mongodb_changes_total'),
                               timeout=60, interval=0.5)
            cls.mongo.fail_getmore(91)
            pohtest.wait_until(
                lambda: cls.prom.query('poh_mongodb_change_stream_resumes_total > 0'),
                timeout=60, interval=0.5)
            cls.mongo.fail_getmore(286)
            cls.results = cls.wait_for_data(timeout=120)
        except BaseException:
            cls.teardown_stack()
            raise

    @classmethod
    def wait_for_data(cls, timeout):
        """Poll until every panel query has data (bounded); returns the last
        result of each query."""
        end = time.monotonic() + timeout
        results = {}
        while True:
            for key in cls.queries:
                if not results.get(key):
                    results[key] = cls.prom.query(key[2])
            if all(results.values()) or time.monotonic() > end:
                return results
            time.sleep(1)

    @classmethod
    def teardown_stack(cls):
        for stop in reversed(cls.stack):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                print(f"teardown: {e}")
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.teardown_stack()

    # -- the dashboard itself ------------------------------------------------
    def test_structure(self):
        d = self.dash
        self.assertGreaterEqual(d["schemaVersion"], 37)
        self.assertIsNone(d["id"])
        self.assertTrue(d["uid"])
        self.assertEqual(d["__inputs"][0]["pluginId"], "prometheus")
        tmpl = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(tmpl["datasource"]["type"], "datasource")
        self.assertEqual(tmpl["datasource"]["query"], "prometheus")
        for name, metric in (("cluster", "poh_mongodb_up"), ("group", "poh_probe_success")):
            self.assertEqual(tmpl[name]["type"], "query")
            self.assertEqual(tmpl[name]["query"]["query"], f"label_values({metric}, {name})")
            self.assertEqual(tmpl[name]["datasource"]["uid"], "${datasource}")
        ids = [p["id"] for p in all_panels(d)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for p in all_panels(d):
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
        titles = " | ".join(p["title"] for p in all_panels(d)).lower()
        for want in ("tx/s", "requests and acks", "storage latency p50 / p90 / p99",
                     "approval latency", "presence success rate", "probe latency heatmap",
                     "per-target up/down", "replication lag", "oplog window",
                     "change-stream lag", "collector success", "spans exported and dropped"):
            self.assertIn(want, titles)
        heat = [p for p in all_panels(d) if p["type"] == "heatmap"]
        self.assertTrue(heat and heat[0]["targets"][0]["format"] == "heatmap")

    def test_layout_picture(self):
        """docs/images/dashboard_layout.svg (in the README) is the panels as
        the JSON lays them out: scripts/dashboard_layout.py's output, and no
        two panels overlap."""
        script = os.path.join(pohtest.SOURCE, "scripts", "dashboard_layout.py")
        r = subprocess.run(["/usr/bin/python3", script, "-"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(pohtest.SOURCE, "docs", "images", "dashboard_layout.svg")) as f:
            self.assertEqual(f.read(), r.stdout,
                             "rerun scripts/dashboard_layout.py after changing the dashboard")
        cells = set()
        for p in self.dash["panels"]:
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps another panel")
                    cells.add((x, y))
        for p in self.dash["panels"]:
            self.assertIn(">%s<" % p["title"].replace("&", "&amp;").replace("<", "&lt;"),
                          r.stdout)

    # -- against the live stack ----------------------------------------------
    def test_every_panel_query_returns_data(self):
        empty = [f"{title} [{ref}]: {q}" for (title, ref, q), r in self.results.items() if not r]
        print(f"{len(self.results) - len(empty)} of {len(self.results)} panel queries have data")
        self.assertEqual(empty, [], "panel queries without data")

    def test_variables_list_the_stack(self):
        for var, metric, want in (("cluster", "poh_mongodb_up", {"main", "sharded"}),
                                  ("group", "poh_probe_success", {"poh", "presence"}),
                                  ("job", "poh_exporter_build_info", {"poh_exporter"})):
            got = set(self.prom.api(f"label/{var}/values", **{"match[]": metric}) or [])
            self.assertEqual(got, want, var)

    def panel(self, title, ref="A"):
        """The panel query's result now (not the first one that had data)."""
        for t, r, q in self.queries:
            if t == title and r == ref:
                res = self.prom.query(q)
                self.assertTrue(res, title)
                return res
        raise AssertionError(f"no panel {title!r} [{ref}]")

    def values(self, title, ref="A"):
        return [float(s["value"][1]) for s in self.panel(title, ref)]

    def by_label(self, title, label, ref="A"):
        return {s["metric"][label]: float(s["value"][1]) for s in self.panel(title, ref)}

    def eventually(self, fn, want, what):
        """Gauges of one scrape can flicker when a loaded machine makes a probe
        miss its deadline: retry a bounded while until fn() == want."""
        got = pohtest.wait_until(lambda: (g := fn()) == want and [g], timeout=30, interval=0.5)
        self.assertEqual(got[0] if got else fn(), want, what)

    def test_panels_show_the_stack(self):
        self.eventually(lambda: (self.values("Targets up", "A"), self.values("Targets up", "B")),
                        ([3.0], [4.0]), "targets up / probed")
        self.eventually(lambda: {t for t, v in self.by_label("Per-target up/down",
                                                             "target").items() if v == 0},
                        {self.down_target}, "targets down")
        self.assertEqual(len(self.by_label("Per-target up/down", "target")), 4)
        self.eventually(lambda: self.by_label("Collector success", "collector"),
                        {"grpc/poh": 1.0, "grpc/presence": 1.0, "mongodb/main": 1.0,
                         "mongodb/sharded": 1.0},
                        "collector success")
        self.eventually(lambda: self.values("MongoDB up"), [1.0, 1.0], "MongoDB up")
        self.check_shard_row()
        # Rates over 5m keep a missed probe for 5 minutes: Presence is healthy
        # (every probe acked unless the machine is overloaded), the PoH group
        # is not (its NOT_SERVING node fails its health checks: 5 of 6 calls ack).
        self.assertGreaterEqual(self.values("Presence success rate")[0], 0.9)
        rates = self.by_label("Success rate by group", "group")
        self.assertGreaterEqual(rates["presence"], 0.9)
        self.assertGreater(rates["poh"], 0.5)
        self.assertLess(rates["poh"], 0.9)
        self.assertEqual(set(self.by_label("Failures by gRPC code /s", "code")), {"NOT_SERVING"})
        self.assertIn(3.0, self.by_label("Replication lag", "member").values())

        self.assertGreater(self.values("Tx/s")[0], 0)
        # rate() over a window longer than the stack has run is diluted; a
        # short window shows the generator's rate.
        q = 'sum(rate(poh_mongodb_changes_total{operation="insert"}[10s]))'

        def tx_rate():
            r = self.prom.query(q)
            return r and abs(float(r[0]["value"][1]) - TX_RATE) <= TX_RATE * 0.3 and r
        self.assertTrue(pohtest.wait_until(tx_rate, timeout=30, interval=0.5),
                        f"{q} = {self.prom.query(q)}, generator: {TX_RATE}/s")
        p50 = self.values("Storage latency p50 / p90 / p99", "A")[0]
        p99 = self.values("Storage latency p50 / p90 / p99", "C")[0]
        self.assertLessEqual(p50, p99)
        approval = self.values("Approval latency p50 / p90 / p99", "A")[0]
        self.assertGreater(approval, APPROVE_AFTER_MS / 1000 * 0.5)
        # Spans reach the sink; the drop counters exist for every reason.
        self.assertTrue(pohtest.wait_until(
            lambda: self.values("Spans exported and dropped /s", "A")[0] > 0,
            timeout=30, interval=0.5))
        self.assertEqual(set(self.by_label("Spans exported and dropped /s", "reason", "B")),
                         {"queue_full", "export_failed", "rejected", "shutdown"})
        self.assertTrue(self.sink.spans())

    def check_shard_row(self):
        """The sharded cluster's row shows what its simulator holds."""
        self.eventually(lambda: self.by_label("Shards with a primary", "shard"),
                        {"shard0": 1.0, "shard1": 1.0}, "shards with a primary")
        status = self.sharded.status()
        self.assertEqual(sum(self.values("Chunks per shard", "A")), status["chunks"])
        self.assertEqual(sum(self.values("Chunks per shard", "B")), 0)
        self.assertEqual(self.values("Balancer", "A"), [1.0])
        self.assertIn(self.values("Balancer", "B")[0], (0.0, 1.0))
        self.assertEqual(set(self.by_label("Chunk migrations /s", "result")), {"succeeded", "failed"})
        self.assertEqual(set(self.by_label("Replication lag by shard", "shard")), {"shard0", "shard1"})
        self.assertEqual(set(self.by_label("Oplog window by shard", "shard")), {"shard0", "shard1"})

    def test_alert_metrics_exist_and_rules_evaluate(self):
        with open(ALERTS) as f:
            text = f.read()
        exprs = re.findall(r"expr: (?:\|\n)?((?:.|\n)*?)\n\s+(?:for|labels):", text)
        self.assertTrue(exprs)
        names = set()
        for e in exprs:
            e = re.sub(r'"[^"]*"', '""', e)  # label values are not metric names
            names |= set(re.findall(r"\b((?:poh|process)_[a-z_]+)", e))
        names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
        missing = []
        for n in sorted(names):
            series = self.prom.api("series", **{"match[]": f'{{__name__=~"{n}(_bucket)?"}}'})
            if not series:
                missing.append(n)
        self.assertEqual(missing, [], "alert rules use metrics the exporter does not expose")

        def rules_ok():
            d = self.prom.api("rules")
            rules = [r for g in (d or {}).get("groups", []) for r in g["rules"]]
            if not rules or any(r.get("lastEvaluation", "").startswith("0001") for r in rules):
                return None
            return rules
        rules = pohtest.wait_until(rules_ok, timeout=30, interval=0.5)
        self.assertTrue(rules)
        for r in rules:
            self.assertEqual(r["health"], "ok", f"{r['name']}: {r.get('lastError')}")
        active = pohtest.wait_until(
            lambda: [a for a in (self.prom.api("alerts") or {}).get("alerts", [])
                     if a["labels"]["alertname"] == "PohNodeDown"], timeout=30, interval=0.5)
        self.assertEqual({a["labels"]["target"] for a in active}, {self.down_target})
        # A shard whose primary steps down: its alert becomes pending for that shard only.
        self.sharded.control("SHARD shard1 STEPDOWN 0")
        try:
            noprim = pohtest.wait_until(
                lambda: [a for a in (self.prom.api("alerts") or {}).get("alerts", [])
                         if a["labels"]["alertname"] == "PohMongoDBShardNoPrimary"],
                timeout=30, interval=0.5)
            self.assertEqual({(a["labels"]["cluster"], a["labels"]["shard"]) for a in noprim},
                             {("sharded", "shard1")})
        finally:
            self.sharded.control("SHARD shard1 STEPUP")
        # The demo's history loss is visible to its alert too.
        lost = pohtest.wait_until(
            lambda: [a for a in (self.prom.api("alerts") or {}).get("alerts", [])
                     if a["labels"]["alertname"] == "PohChangeStreamHistoryLost"],
            timeout=30, interval=0.5)
        self.assertEqual([(a["labels"]["stream"], a["state"]) for a in lost], [("tx", "firing")])


if __name__ == "__main__":
    pohtest.require(PROMETHEUS, "no prometheus on PATH (Debian package prometheus)")
    pohtest.main()
