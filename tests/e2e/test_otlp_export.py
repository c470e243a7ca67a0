# SPDX-License-Identifier: Apache-2.0
"""OTLP export end to end: the exporter's tracer (driven by otlp_emit) sends
to otlp_sink (gRPC C core + protobuf-c); assert span names, kinds,
attributes, parent/child links, timing, resource, headers, the traceparent
join, sampling on and off, and endpoint / service name precedence."""
import socket
import time
import unittest

from otlpsink import Sink, emit, traceparent_ids
from pohtest import main

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER = 1, 2, 3, 4
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


class TreeTest(unittest.TestCase):
    """One scrape-shaped trace: a SERVER root with CLIENT children."""

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink()
        cls.t0 = time.time_ns()
        cls.res = emit("--scenario", "tree", "--child-ms", "40",
                       "--header", "X-Scope-OrgID=tenant-1",
                       "--resource", "deployment.environment=e2e",
                       endpoint=cls.sink.endpoint,
                       env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20tok%2C1,x-extra=2",
                            "OTEL_RESOURCE_ATTRIBUTES": "team=dag,deployment.environment=ignored"})
        cls.t1 = time.time_ns()
        cls.sink.stop()
        cls.spans = cls.sink.spans()
        cls.reqs = cls.sink.requests()

    def by_name(self, name):
        return [s for s in self.spans if s["name"] == name]

    def test_all_spans_arrive_once(self):
        self.assertEqual(len(self.spans), 4)
        self.assertEqual(len({s["span_id"] for s in self.spans}), 4)
        self.assertEqual(self.res.stats["exported"], 4)
        self.assertEqual(sum(self.res.stats["dropped"].values()), 0)
        self.assertEqual(self.sink.summary["spans"], 4)

    def test_names_and_kinds(self):
        root, = self.by_name("scrape")
        self.assertEqual(root["kind"], KIND_SERVER)
        checks = self.by_name("grpc.health.v1.Health/Check")
        self.assertEqual(len(checks), 2)
        for c in checks:
            self.assertEqual(c["kind"], KIND_CLIENT)
        mongo, = self.by_name("replSetGetStatus")
        self.assertEqual(mongo["kind"], KIND_CLIENT)

    def test_parent_child_links(self):
        root, = self.by_name("scrape")
        self.assertEqual(root["parent_span_id"], "")
        self.assertEqual(len(root["trace_id"]), 32)
        self.assertEqual(len(root["span_id"]), 16)
        for s in self.spans:
            self.assertEqual(s["trace_id"], root["trace_id"])
            if s is not root:
                self.assertEqual(s["parent_span_id"], root["span_id"])
        # The ids the producer saw (its traceparents) are the ids exported.
        made_root = self.res.made_by("scrape")[0]
        tid, sid, flags = traceparent_ids(made_root["traceparent"])
        self.assertEqual((tid, sid, flags), (root["trace_id"], root["span_id"], 1))
        exported = {s["span_id"] for s in self.spans}
        for m in self.res.made:
            self.assertIn(traceparent_ids(m["traceparent"])[1], exported)

    def test_attributes_and_types(self):
        ok = [c for c in self.by_name("grpc.health.v1.Health/Check")
              if c["attributes"]["server.address"] == "poh-1"][0]
        self.assertEqual(ok["attributes"], {
            "rpc.system": "grpc", "rpc.service": "grpc.health.v1.Health", "rpc.method": "Check",
            "server.address": "poh-1", "server.port": 50051, "rpc.grpc.status_code": 0})
        self.assertEqual(ok["attribute_types"]["server.port"], "int")
        self.assertEqual(ok["attribute_types"]["rpc.system"], "string")
        self.assertEqual(ok["status"]["code"], STATUS_UNSET)
        mongo, = self.by_name("replSetGetStatus")
        self.assertEqual(mongo["attributes"], {"db.system": "mongodb",
                                               "db.operation": "replSetGetStatus",
                                               "db.name": "admin"})
        root, = self.by_name("scrape")
        self.assertEqual(root["attributes"]["http.request.method"], "GET")

    def test_error_status(self):
        bad = [c for c in self.by_name("grpc.health.v1.Health/Check")
               if c["attributes"]["server.address"] == "poh-2"][0]
        self.assertEqual(bad["status"], {"code": STATUS_ERROR, "message": "NOT_SERVING"})

    def test_flags(self):
        for s in self.spans:
            # W3C sampled bit, plus "parent is-remote known" (0x100), parent local.
            self.assertEqual(s["flags"], 0x101)

    def test_timing(self):
        root, = self.by_name("scrape")
        for s in self.spans:
            self.assertLessEqual(s["start"], s["end"])
            self.assertGreaterEqual(s["start"], self.t0)
            self.assertLessEqual(s["end"], self.t1)
            self.assertGreaterEqual(s["start"], root["start"])
            self.assertLessEqual(s["end"], root["end"])
        slow = [c for c in self.by_name("grpc.health.v1.Health/Check")
                if c["attributes"]["server.address"] == "poh-1"][0]
        dur = (slow["end"] - slow["start"]) / 1e9
        self.assertGreaterEqual(dur, 0.040)
        self.assertLess(dur, 5.0)
        # Children run one after the other.
        children = sorted((s for s in self.spans if s is not root), key=lambda s: s["start"])
        for a, b in zip(children, children[1:]):
            self.assertLessEqual(a["end"], b["start"])

    def test_resource_and_scope(self):
        self.assertEqual(len(self.reqs), 1)
        r = self.reqs[0]
        res = r["resource"]
        self.assertEqual(res["service.name"], "poh-exporter")
        self.assertRegex(res["service.version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(res["host.name"], socket.gethostname())
        self.assertEqual(res["team"], "dag")                     # OTEL_RESOURCE_ATTRIBUTES
        self.assertEqual(res["deployment.environment"], "e2e")  # config beats env
        self.assertEqual(list(res)[0], "service.name")
        self.assertEqual(r["scope"]["name"], "poh_exporter")
        self.assertEqual(r["resource_spans"], 1)

    def test_headers(self):
        md = self.reqs[0]["metadata"]
        self.assertEqual(md["x-scope-orgid"], "tenant-1")        # lowercased
        self.assertEqual(md["authorization"], "Bearer tok,1")    # URL-decoded env
        self.assertEqual(md["x-extra"], "2")
        self.assertIn("poh_exporter/", md["user-agent"])

    def test_header_values_not_logged(self):
        self.assertNotIn("tok", self.res.stderr)
        self.assertNotIn("Bearer", self.res.stderr)


class JoinTest(unittest.TestCase):
    """A storage.commit span joined to an application's trace."""

    APP_TRACE = "0af7651916cd43dd8448eb211c80319c"
    APP_SPAN = "b7ad6b7169203331"

    def join(self, flags, ratio):
        with Sink() as sink:
            start, end = 1700000000123456789, 1700000000456789012
            run = emit("--scenario", "join", "--sample-ratio", ratio,
                       "--traceparent", f"00-{self.APP_TRACE}-{self.APP_SPAN}-{flags}",
                       "--start-ns", start, "--end-ns", end, endpoint=sink.endpoint)
        return run, sink.spans(), start, end

    def test_join_sampled_parent(self):
        run, spans, start, end = self.join("01", "1")
        self.assertEqual(len(spans), 1)
        s = spans[0]
        self.assertEqual(s["name"], "storage.commit")
        self.assertEqual(s["kind"], KIND_INTERNAL)
        self.assertEqual(s["trace_id"], self.APP_TRACE)
        self.assertEqual(s["parent_span_id"], self.APP_SPAN)
        self.assertNotEqual(s["span_id"], self.APP_SPAN)
        self.assertEqual((s["start"], s["end"]), (start, end))
        self.assertEqual(s["flags"], 0x301)  # sampled, parent is remote
        self.assertEqual(s["attributes"]["db.system"], "mongodb")

    def test_join_follows_parent_even_at_ratio_zero(self):
        run, spans, _, _ = self.join("01", "0")
        self.assertEqual(len(spans), 1)
        self.assertEqual(spans[0]["trace_id"], self.APP_TRACE)

    def test_unsampled_parent_is_not_exported(self):
        run, spans, _, _ = self.join("00", "1")
        self.assertEqual(spans, [])
        self.assertFalse(run.made[0]["sampled"])
        tid, _, flags = traceparent_ids(run.made[0]["traceparent"])
        self.assertEqual((tid, flags), (self.APP_TRACE, 0))
        self.assertEqual(run.stats["exported"], 0)

    def test_invalid_traceparent_refused(self):
        with self.assertRaises(AssertionError):
            emit("--scenario", "join", "--traceparent",
                 f"00-{self.APP_TRACE.upper()}-{self.APP_SPAN}-01", endpoint="127.0.0.1:9")


class SamplingTest(unittest.TestCase):
    def test_ratio_zero_exports_nothing(self):
        with Sink() as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--sample-ratio", "0",
                       endpoint=sink.endpoint)
        self.assertEqual(sink.spans(), [])
        self.assertEqual(sink.requests(), [])
        self.assertTrue(all(not m["sampled"] for m in run.made))
        # Unsampled spans still carry a valid context to propagate (flags 00).
        tids = {traceparent_ids(m["traceparent"])[0] for m in run.made}
        self.assertEqual(len(tids), 1)
        self.assertEqual(run.stats["exported"], 0)
        self.assertEqual(sum(run.stats["dropped"].values()), 0)

    def test_ratio_quarter(self):
        n = 4000
        with Sink() as sink:
            run = emit("--scenario", "flood", "--count", n, "--sample-ratio", "0.25",
                       "--queue-size", n, endpoint=sink.endpoint)
        got = len(sink.spans())
        self.assertEqual(got, run.stats["exported"])
        # Binomial(4000, 0.25): mean 1000, sd 27; 6 sd either side.
        self.assertGreater(got, 1000 - 165)
        self.assertLess(got, 1000 + 165)


class PrecedenceTest(unittest.TestCase):
    def got_spans(self, env, args=()):
        with Sink() as sink:
            run = emit("--scenario", "types", "--enabled", "auto", *args,
                       env={k: v.replace("PORT", str(sink.port)) for k, v in env.items()})
        return run, sink

    def test_traces_endpoint_wins(self):
        run, sink = self.got_spans({
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:PORT",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "OTLP_GRPC_ENDPOINT": "127.0.0.1:9"})
        self.assertEqual(len(sink.spans()), 1)

    def test_generic_endpoint_beats_legacy(self):
        run, sink = self.got_spans({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:PORT/",
                                    "OTLP_GRPC_ENDPOINT": "127.0.0.1:9"})
        self.assertEqual(len(sink.spans()), 1)

    def test_legacy_endpoint(self):
        run, sink = self.got_spans({"OTLP_GRPC_ENDPOINT": "127.0.0.1:PORT"})
        self.assertEqual(len(sink.spans()), 1)

    def test_config_beats_environment(self):
        with Sink() as sink:
            emit("--scenario", "types", endpoint=sink.endpoint,
                 env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9"})
        self.assertEqual(len(sink.spans()), 1)

    def test_auto_without_endpoint_is_off(self):
        run = emit("--scenario", "types", "--enabled", "auto")
        self.assertFalse(run.enabled)
        self.assertIn("tracing is off", run.stderr)

    def test_service_name(self):
        run, sink = self.got_spans({"OTLP_GRPC_ENDPOINT": "127.0.0.1:PORT",
                                    "OTEL_SERVICE_NAME": "svc-from-env"})
        self.assertEqual(sink.requests()[0]["resource"]["service.name"], "svc-from-env")
        run, sink = self.got_spans({"OTLP_GRPC_ENDPOINT": "127.0.0.1:PORT",
                                    "OTEL_SERVICE_NAME": "svc-from-env"},
                                   ("--service-name", "svc-from-config"))
        self.assertEqual(sink.requests()[0]["resource"]["service.name"], "svc-from-config")


class TypesTest(unittest.TestCase):
    def test_attribute_types_and_edges(self):
        with Sink() as sink:
            emit("--scenario", "types", endpoint=sink.endpoint)
        s, = sink.spans()
        self.assertEqual(s["kind"], KIND_PRODUCER)
        self.assertEqual(s["status"]["code"], STATUS_OK)
        a, t = s["attributes"], s["attribute_types"]
        self.assertEqual(a["str"], 'h\u00e9llo \u2713 "quoted"\\')
        self.assertEqual(a["empty"], "")
        self.assertEqual(a["int.max"], 2**63 - 1)
        self.assertEqual(a["int.min"], -2**63)
        self.assertEqual(a["int.zero"], 0)
        self.assertEqual(a["double"], 0.1)
        self.assertEqual(a["double.neg"], -2.5e-300)
        self.assertEqual(a["double.whole"], 3.0)
        self.assertIs(a["bool.true"], True)
        self.assertIs(a["bool.false"], False)
        self.assertEqual(t["int.zero"], "int")
        self.assertEqual(t["double.whole"], "double")
        self.assertEqual(t["bool.false"], "bool")


if __name__ == "__main__":
    main()
