# SPDX-License-Identifier: Apache-2.0
"""The real exporter probing real gRPC servers (issue 3): poh_node_sim in every
fault mode, a python3-grpcio health server (interoperability), unreachable
and unresolvable targets. Exact counts after N scrapes on both sides (the
exporter's counters and the servers' own call counts), scrape deadlines,
/probe, the landing page, TLS, and configuration errors."""
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import pohtest
from pohtest import Exporter, value, find
import grpcsim
from grpcsim import HEALTH_METHOD, STATE_METHOD, NodeSim, PyHealthServer

TOKEN = "Bearer e2e-t0ken"

# listener -> (options, health code label or None for an ack)
LISTENERS = [
    (["--tick-rate", "0", "--tick-height", "4096", "--leader-offset", "-5"], None),
    (["--mode", "slow:100"], None),
    (["--mode", "not_serving"], "NOT_SERVING"),
    (["--mode", "unimplemented"], "UNIMPLEMENTED"),
    (["--mode", "abort:UNAVAILABLE:draining"], "UNAVAILABLE"),
    (["--mode", "blackhole"], "DEADLINE_EXCEEDED"),
    (["--mode", "close"], "UNAVAILABLE"),
    (["--require-metadata", "authorization=" + TOKEN], None),
]
GRPC_LISTENERS = [i for i, (o, _) in enumerate(LISTENERS) if "blackhole" not in o and "close" not in o]


def scrape(exp, timeout="5"):
    return exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": timeout})


class ExactCounts(unittest.TestCase):
    N = 4  # scrapes; the poh group's 2 s timeout (500 ms let the 100-ms slow node
           # fail once under ASan with a CPU hog: 3 acks of 4) is also the blackhole's cost

    @classmethod
    def setUpClass(cls):
        cls.sim = NodeSim([opts for opts, _ in LISTENERS])
        cls.py = PyHealthServer({"presence.Presence": "SERVING"})
        cls.tmp = tempfile.TemporaryDirectory()
        token = os.path.join(cls.tmp.name, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        cls.refused = "127.0.0.1:%d" % pohtest.free_port()
        cls.unresolvable = "no-such-node.invalid:50051"
        cls.poh_targets = [cls.sim.addr(i) for i in range(len(LISTENERS) - 1)] + [
            cls.refused, cls.unresolvable]
        cls.auth_target = cls.sim.addr(len(LISTENERS) - 1)
        cfg = """
grpc:
  - name: poh
    targets: [%s]
    health_service: poh.PoH
    timeout: 2s
    state:
      method: /poh.PoH/GetState
      fields:
        - {path: "1", metric: poh_node_tick_height, help: "Current PoH tick height", type: uint64}
        - {path: "5.2", metric: poh_node_leader_offset, type: sint64}
        - {path: "42", metric: poh_node_absent}
  - name: secured
    targets: [%s]
    metadata: {authorization_file: %s}
  - name: presence
    targets: [%s]
    health_service: presence.Presence
""" % (", ".join(cls.poh_targets), cls.auth_target, token, cls.py.addr)
        cls.sim.reset()
        cls.exp = Exporter(cfg)
        cls.samples = [scrape(cls.exp) for _ in range(cls.N)]

    @classmethod
    def tearDownClass(cls):
        rc = cls.exp.stop()
        cls.py.stop()
        cls.sim.stop()
        cls.tmp.cleanup()
        # a clean exit: under ASan a leak or error would make it non-zero
        assert rc == 0, "exporter exit %s:\n%s" % (rc, cls.exp.log_text()[-3000:])

    def last(self, name, **labels):
        return value(self.samples[-1], name, **labels)

    def test_requests_are_n_for_every_target_and_method(self):
        for t in self.poh_targets:
            for m in (HEALTH_METHOD, STATE_METHOD):
                self.assertEqual(self.last("poh_requests_total", group="poh", target=t, method=m),
                                 self.N, (t, m))
        self.assertEqual(self.last("poh_requests_total", group="secured", target=self.auth_target,
                                   method=HEALTH_METHOD), self.N)
        self.assertEqual(self.last("poh_requests_total", group="presence", target=self.py.addr,
                                   method=HEALTH_METHOD), self.N)
        # counters grow by one per scrape
        for k in range(self.N):
            self.assertEqual(value(self.samples[k], "poh_requests_total", group="poh",
                                   target=self.poh_targets[0], method=HEALTH_METHOD), k + 1)

    def test_servers_saw_exactly_n_calls(self):
        counts = self.sim.counts()
        for i in GRPC_LISTENERS:
            self.assertEqual(counts.get((i, HEALTH_METHOD)), self.N, (i, counts))
            if i != len(LISTENERS) - 1:
                self.assertEqual(counts.get((i, STATE_METHOD)), self.N, (i, counts))
        self.assertEqual(self.py.count(), self.N)
        # channels are kept: one connection per target for all scrapes
        for i in GRPC_LISTENERS:
            self.assertEqual(len(self.sim.peers(i)), 1, self.sim.peers(i))

    def test_acks_and_failure_codes_match_each_mode(self):
        for i, (opts, code) in enumerate(LISTENERS[:-1]):
            t = self.sim.addr(i)
            with self.subTest(mode=opts):
                ack = self.last("poh_ack_total", group="poh", target=t, method=HEALTH_METHOD)
                fails = find(self.samples[-1], "poh_request_failures_total", group="poh",
                             target=t, method=HEALTH_METHOD)
                if code is None:
                    self.assertEqual(ack, self.N)
                    self.assertEqual(fails, {})
                else:
                    self.assertEqual(ack, 0)
                    self.assertEqual({dict(k[1])["code"]: v for k, v in fails.items()},
                                     {code: self.N})
                self.assertEqual(self.last("poh_probe_success", group="poh", target=t),
                                 1 if code is None else 0)
        self.assertEqual(self.last("poh_request_failures_total", group="poh",
                                   target=self.refused, method=HEALTH_METHOD,
                                   code="UNAVAILABLE"), self.N)
        unres = find(self.samples[-1], "poh_request_failures_total", group="poh",
                     target=self.unresolvable, method=HEALTH_METHOD)
        self.assertEqual(sum(unres.values()), self.N)
        self.assertLessEqual({dict(k[1])["code"] for k in unres},
                             {"UNAVAILABLE", "DEADLINE_EXCEEDED"})
        # NOT_SERVING answers the state call fine; the health check fails
        t = self.sim.addr(2)
        self.assertEqual(self.last("poh_ack_total", group="poh", target=t, method=STATE_METHOD),
                         self.N)
        self.assertEqual(self.last("poh_grpc_health_status", group="poh", target=t,
                                   status="NOT_SERVING"), 1)
        self.assertEqual(self.last("poh_ack_total", group="secured", target=self.auth_target,
                                   method=HEALTH_METHOD), self.N)
        self.assertEqual(self.last("poh_ack_total", group="presence", target=self.py.addr,
                                   method=HEALTH_METHOD), self.N)

    def test_metadata_from_file_reaches_the_server(self):
        self.assertEqual(self.sim.lastmd(len(LISTENERS) - 1, "authorization"), TOKEN)
        self.assertNotIn("e2e-t0ken", self.exp.log_text())

    def test_health_status_and_state_gauges(self):
        t0 = self.sim.addr(0)
        statuses = {dict(k[1])["status"]: v for k, v in
                    find(self.samples[-1], "poh_grpc_health_status", target=t0).items()}
        self.assertEqual(statuses, {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 0,
                                    "SERVICE_UNKNOWN": 0})
        self.assertEqual(self.last("poh_node_tick_height", group="poh", target=t0), 4096)
        self.assertEqual(self.last("poh_node_leader_offset", group="poh", target=t0), -5)
        # a field the node does not send: no gauge, one counted error per scrape
        self.assertEqual(find(self.samples[-1], "poh_node_absent"), {})
        self.assertEqual(self.last("poh_grpc_state_field_errors_total", group="poh", target=t0,
                                   metric="poh_node_absent", reason="missing_field"), self.N)
        # failed state calls write no gauges
        self.assertEqual(find(self.samples[-1], "poh_node_tick_height", target=self.refused), {})

    def test_latency_histogram(self):
        for i in (0, 1):
            t = self.sim.addr(i)
            self.assertEqual(self.last("poh_grpc_method_latency_seconds_count", group="poh",
                                       target=t, method=HEALTH_METHOD), self.N)
        slow_sum = self.last("poh_grpc_method_latency_seconds_sum", group="poh",
                             target=self.sim.addr(1), method=HEALTH_METHOD)
        self.assertGreaterEqual(slow_sum, 0.1 * self.N)
        self.assertEqual(self.last("poh_grpc_method_latency_seconds_bucket", group="poh",
                                   target=self.sim.addr(1), method=HEALTH_METHOD, le="0.05"), 0)

    def test_collectors_succeed(self):
        for g in ("poh", "secured", "presence"):
            self.assertEqual(self.last("poh_exporter_collector_success", collector="grpc/" + g), 1)

    def test_landing_page_lists_targets(self):
        status, _, body = self.exp.request("/")
        page = body.decode()
        self.assertEqual(status, 200)
        for t in self.poh_targets:
            self.assertIn("<td>%s</td>" % t, page)
        self.assertIn("<td>DEADLINE_EXCEEDED</td>", page)
        self.assertIn("<td>NOT_SERVING</td>", page)
        self.assertIn("draining", page)


class Deadlines(unittest.TestCase):
    def test_scrape_deadline_caps_slow_and_blackholed_targets(self):
        with NodeSim([[], ["--mode", "blackhole"], ["--mode", "slow:10000"]]) as sim:
            cfg = """
grpc:
  - name: poh
    targets: [%s, %s, %s]
    timeout: 10s
""" % (sim.addr(0), sim.addr(1), sim.addr(2))
            with Exporter(cfg) as exp:
                # 1.5 s scrape timeout - 0.5 s default offset: a 1 s deadline. The
                # slow target answers after 10 s and the blackhole never: a scrape
                # under 5 s was cut by the deadline (margin for a loaded machine),
                # and one over 0.8 s waited for it.
                t0 = time.monotonic()
                s = scrape(exp, timeout="1.5")
                took = time.monotonic() - t0
                self.assertLess(took, 5.0)
                self.assertGreater(took, 0.8)
                self.assertEqual(value(s, "poh_exporter_collector_success", collector="grpc/poh"), 1)
                self.assertEqual(value(s, "poh_probe_success", group="poh", target=sim.addr(0)), 1)
                for i in (1, 2):
                    self.assertEqual(value(s, "poh_request_failures_total", group="poh",
                                           target=sim.addr(i), method=HEALTH_METHOD,
                                           code="DEADLINE_EXCEEDED"), 1)


class Probe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = NodeSim([["--tick-rate", "0", "--tick-height", "99"], ["--mode", "blackhole"],
                           ["--mode", "not_serving"]])
        cfg = """
grpc:
  - name: poh
    targets: [%s]
    timeout: 800ms
    probe: {allow: ["127.0.0.0/8"]}   # the other listeners: unlisted targets
    state:
      method: /poh.PoH/GetState
      fields: [{path: "1", metric: poh_node_tick_height, type: uint64}]
""" % cls.sim.addr(0)
        cls.exp = Exporter(cfg)

    @classmethod
    def tearDownClass(cls):
        rc = cls.exp.stop()
        cls.sim.stop()
        assert rc == 0, "exporter exit %s:\n%s" % (rc, cls.exp.log_text()[-3000:])

    def probe(self, **params):
        status, hdrs, body = self.exp.request("/probe?" + urllib.parse.urlencode(params))
        return status, body.decode()

    def test_probe_one_target(self):
        before = self.sim.count(0)
        status, body = self.probe(target=self.sim.addr(0), module="poh")
        self.assertEqual(status, 200, body)
        s = pohtest.parse_exposition(body)
        self.assertEqual(value(s, "poh_probe_success"), 1)
        self.assertEqual(value(s, "poh_node_tick_height"), 99)
        self.assertEqual(value(s, "poh_grpc_status_code", method=HEALTH_METHOD), 0)
        self.assertEqual(value(s, "poh_grpc_health_status", status="SERVING"), 1)
        self.assertEqual(self.sim.count(0), before + 1)
        # only this probe's metrics: no counters, no exporter self-metrics
        names = {k[0] for k in s}
        self.assertFalse([n for n in names if n.startswith(("poh_exporter_", "process_"))], names)
        self.assertNotIn("poh_requests_total", names)

    def test_probe_failures_and_other_targets(self):
        t0 = time.monotonic()
        status, body = self.probe(target=self.sim.addr(1), module="poh")
        self.assertLess(time.monotonic() - t0, 2.5)
        s = pohtest.parse_exposition(body)
        self.assertEqual(status, 200)
        self.assertEqual(value(s, "poh_probe_success"), 0)
        self.assertEqual(value(s, "poh_grpc_status_code", method=HEALTH_METHOD), 4)
        status, body = self.probe(target=self.sim.addr(2), module="poh")
        s = pohtest.parse_exposition(body)
        self.assertEqual(value(s, "poh_probe_success"), 0)
        self.assertEqual(value(s, "poh_grpc_health_status", status="NOT_SERVING"), 1)

    def test_probe_does_not_touch_scrape_counters(self):
        before = scrape(self.exp)
        for _ in range(3):
            self.probe(target=self.sim.addr(0), module="poh")
        after = scrape(self.exp)
        self.assertEqual(value(after, "poh_requests_total", group="poh", target=self.sim.addr(0),
                               method=HEALTH_METHOD),
                         value(before, "poh_requests_total", group="poh",
                               target=self.sim.addr(0), method=HEALTH_METHOD) + 1)

    def test_probe_bad_requests(self):
        self.assertEqual(self.probe(target=self.sim.addr(0), module="nope")[0], 400)
        self.assertEqual(self.probe(module="poh")[0], 400)
        for bad in ("nohost", "host:0", "host:70000", "a b:1", "::1:50051"):
            status, body = self.probe(target=bad, module="poh")
            self.assertEqual(status, 400, (bad, body))


class Tls(unittest.TestCase):
    def test_tls_and_mutual_tls(self):
        with tempfile.TemporaryDirectory() as d:
            c = grpcsim.make_certs(d)
            with NodeSim([["--tls-cert", c["server"], "--tls-key", c["server_key"]],
                          ["--tls-cert", c["server"], "--tls-key", c["server_key"],
                           "--tls-client-ca", c["ca"]]]) as sim:
                cfg = """
grpc:
  - name: tls
    targets: [%(a)s]
    tls: {ca_file: %(ca)s, server_name: poh-node}
  - name: mtls
    targets: [%(b)s]
    tls: {ca_file: %(ca)s, server_name: poh-node, cert_file: %(cert)s, key_file: %(key)s}
  - name: wrongname
    targets: [%(a)s]
    tls: {ca_file: %(ca)s}
  - name: plaintext
    targets: [%(a)s]
""" % {"a": sim.addr(0), "b": sim.addr(1), "ca": c["ca"], "cert": c["client"],
                    "key": c["client_key"]}
                with Exporter(cfg) as exp:
                    s = scrape(exp)
                    for g, ok in (("tls", 1), ("mtls", 1), ("wrongname", 0), ("plaintext", 0)):
                        t = sim.addr(1 if g == "mtls" else 0)
                        self.assertEqual(value(s, "poh_probe_success", group=g, target=t), ok, g)


class ConfigErrors(unittest.TestCase):
    CASES = [
        ("targets: [poh-1]", "targets", "host:port"),
        ("targets: [\"poh-1:99999\"]", "targets", "port must be a number from 1 to 65535"),
        ("targets: [\"poh-1:0\"]", "targets", "port must be a number"),
        ("targets: [\"::1:50051\"]", "targets", "[addr]:port"),
        ("targets: [a:1, a:1]", "targets", "listed twice"),
        ("targets: []", "targets", ""),
        ("targets: [a:1]\n    timeout: 0s", "timeout", ""),
        ("targets: [a:1]\n    metadata: {Authorization: x}", "metadata", "lowercase"),
        ("targets: [a:1]\n    metadata: {grpc-timeout: x}", "metadata", "reserved"),
        ("targets: [a:1]\n    state: {method: GetState}", "method", "/package.Service/Method"),
        ("targets: [a:1]\n    state: {method: /a.B/C, request_hex: xyz}", "request_hex", "hex"),
        ("targets: [a:1]\n    state: {fields: [{path: \"1\", metric: m}]}", "fields",
         "need a method"),
        ("targets: [a:1]\n    state: {method: /a.B/C, fields: [{path: \"1.x\", metric: m}]}",
         "path", "field numbers"),
        ("targets: [a:1]\n    state: {method: /a.B/C, fields: [{path: \"1\", metric: poh_ack_total}]}",
         "metric", "writes itself"),
        ("targets: [a:1]\n    state: {method: /a.B/C, fields: [{path: \"1\", metric: m, type: string}]}",
         "type", ""),
        ("targets: [a:1]\n    tls: {cert_file: /x}", "cert_file", "together"),
        ("targets: [a:1]\n    metadata: {authorization_file: /nonexistent/token}", "metadata",
         "cannot read"),
    ]

    def test_grpc_section_is_known(self):
        # A build whose config schema or collector table lost the grpc entry
        # rejects the section as an unknown key: a failure, never a skip.
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.yml")
            with open(path, "w") as f:
                f.write("grpc:\n  - {name: a, targets: [\"127.0.0.1:1\"]}\n")
            p = subprocess.run([pohtest.EXPORTER, "--config.check", "--config.file=" + path],
                               capture_output=True, text=True, timeout=30)
            out = p.stdout + p.stderr
            self.assertNotIn("unknown key", out,
                             "the grpc collector is not registered (src/appconfig/app_schema.c, "
                             "src/collectors/collectors.c)")
            self.assertEqual(p.returncode, 0, out)

    def test_config_check_rejects_with_position(self):
        for body, key, msg in self.CASES:
            with self.subTest(body=body), tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "c.yml")
                with open(path, "w") as f:
                    f.write("grpc:\n  - name: poh\n    " + body + "\n")
                p = subprocess.run([pohtest.EXPORTER, "--config.check", "--config.file=" + path],
                                   capture_output=True, text=True, timeout=30)
                out = p.stdout + p.stderr
                self.assertNotEqual(p.returncode, 0, out)
                self.assertRegex(out, r"c\.yml:\d+:\d+: grpc\[0\]\.[a-z_.\[\]0-9]*%s" % key)
                self.assertIn(msg, out)

    def test_duplicate_group_names(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.yml")
            with open(path, "w") as f:
                f.write("grpc:\n  - {name: a, targets: [x:1]}\n  - {name: a, targets: [y:1]}\n")
            p = subprocess.run([pohtest.EXPORTER, "--config.check", "--config.file=" + path],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    pohtest.main()
