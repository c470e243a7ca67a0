# SPDX-License-Identifier: Apache-2.0
"""A whole OpenMetrics scrape with exemplars from every histogram that has
them, read with prometheus_client's strict OpenMetrics parser.

The real exporter runs with tracing on (sample_ratio 1, spans to otlp_sink),
a gRPC group of two poh_node_sim targets (one SERVING, one NOT_SERVING) and
a change stream on mongo_rs_sim whose documents carry a traceparent and are
approved later. /metrics is fetched with
Accept: application/openmetrics-text;version=1.0.0 and the full body is
parsed (pohtest.parse_exposition, openmetrics=True: prometheus_client's
OpenMetrics parser plus no repeated series). Checked:

- the body is OpenMetrics: its content type, and # EOF ends it;
- every histogram family is known here: either it must carry exemplars
  (gRPC probe latency: the probe's CLIENT span; storage and approval
  latency: the document's traceparent) or it is listed with the reason it
  has none, so a new histogram cannot slip by;
- every series of an exemplar family that has observations has at least
  one exemplar; every exemplar in the body is on a histogram bucket, holds
  exactly trace_id (32 lowercase hex, not all zero) and span_id (16), a
  value inside its bucket, and a timestamp within the test's run;
- the ids are real: a gRPC exemplar is a probe span the sink received, for
  that target; a MongoDB exemplar is
  a document's traceparent, and its value is that document's latency
  (commit - created_at, approved_at - created_at) read with pymongo;
  and a gRPC exemplar's value is at most its span's duration (the span
  starts just before the call is timed and ends when the call does);
- the text format of the same exporter carries no exemplar and the same
  histogram families."""
import gzip
import math
import re
import time
import unittest

import grpcsim
import mongoexp
import mongosim
import otlpsink
import pohtest

try:
    import pymongo
except ImportError:  # pragma: no cover
    pymongo = None

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
COMMIT_DELAY_MS = 37
APPROVE_AFTER_MS = 150
DOCS = 30
PROBE_SPAN = "grpc.health.v1.Health/Check"

# Histogram families that must carry exemplars, and where their ids come from.
WITH_EXEMPLARS = {
    "poh_grpc_method_latency_seconds": "grpc",
    "poh_storage_latency_seconds": "document",
    "poh_approval_latency_seconds": "document",
}
# Histogram families without exemplars, and why.
WITHOUT_EXEMPLARS = {
    "poh_mongodb_command_duration_seconds":
        "libmongoc APM durations are observed without a span (src/collectors/mongodb.c)",
}
TRACE_RE = re.compile(r"[0-9a-f]{32}")
SPAN_RE = re.compile(r"[0-9a-f]{16}")


def config(sim, node, sink, state_dir):
    tracing = (f"tracing:\n  enabled: true\n  endpoint: {sink.endpoint}\n"
               f"  batch_timeout: 100ms\n  shutdown_timeout: 3s\n  sample_ratio: 1.0\n")
    grpc = (f"grpc:\n  - name: poh\n    targets: [{node.addr(0)}, {node.addr(1)}]\n"
            f"    health_service: poh.PoH\n    timeout: 1s\n")
    return mongoexp.config([{"name": "main", "uri": sim.uri, "streams": [mongoexp.TX_STREAM]}],
                           state_dir, tracing + grpc)


def documents(sim):
    """(trace_id, span_id) -> the document, for every generated document."""
    client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
    try:
        out = {}
        for d in client.dag.transactions.find({}):
            _, trace_id, span_id, _ = d["traceparent"].split("-")
            out[(trace_id, span_id)] = d
        return out
    finally:
        client.close()


def seconds(a, b):
    return (b - a).total_seconds()


class ExemplarScrapeTest(unittest.TestCase):
    def test_openmetrics_body_with_exemplars(self):
        pohtest.require(pymongo, "no pymongo module (Debian package python3-pymongo)", self)
        state = mongoexp.StateDir()
        t_start = time.time()
        with mongosim.MongoSim("--commit-delay-ms", str(COMMIT_DELAY_MS),
                               "--approve-after", str(APPROVE_AFTER_MS)) as sim, \
                otlpsink.Sink() as sink, \
                grpcsim.NodeSim([[], ["--mode", "not_serving"]]) as node:
            ex = pohtest.Exporter(config(sim, node, sink, state.path))
            try:
                self.assertTrue(mongoexp.wait_stream_up(ex))
                sim.insert(DOCS)
                self.assertTrue(pohtest.wait_until(
                    lambda: sim.counts()["approved"] == DOCS, 30))
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", DOCS,
                                                     cluster="main", stream="tx",
                                                     operation="update"), DOCS)
                for _ in range(3):  # more probes, more gRPC exemplars
                    ex.scrape()
                status, headers, body = ex.request("/metrics", headers={"Accept": OPENMETRICS})
                text = ex.scrape()
                t_end = time.time()
                self.assertEqual(status, 200)
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                body = body.decode("utf-8")
                self.assertEqual(headers["content-type"],
                                 "application/openmetrics-text; version=1.0.0; charset=utf-8")
                self.assertTrue(body.endswith("\n# EOF\n"), body[-200:])
                self.assertEqual(body.count("# EOF"), 1)

                m = pohtest.parse_exposition(body, openmetrics=True)
                self.check_families(m)
                self.check_exemplars(m, t_start, t_end)
                self.check_ids(m, sim, node, sink)

                t = pohtest.parse_exposition(text, openmetrics=False)
                self.assertFalse(t.openmetrics)
                self.assertEqual(t.exemplars, {})
                self.assertNotRegex(text, r'\} \S+ # \{')
                self.assertEqual({f.name for f in t.families if f.type == "histogram"},
                                 {f.name for f in m.families if f.type == "histogram"})
            finally:
                mongoexp.stop_checked(ex)
        state.cleanup()

    def check_families(self, m):
        hist = {f.name for f in m.families if f.type == "histogram"}
        self.assertEqual(hist - set(WITH_EXEMPLARS) - set(WITHOUT_EXEMPLARS), set(),
                         "a histogram family this test does not know: decide whether it "
                         "carries exemplars and add it to WITH_EXEMPLARS or WITHOUT_EXEMPLARS")
        self.assertEqual(set(WITH_EXEMPLARS) - hist, set(), "an exemplar family is missing")
        with_ex = {k[0][:-len("_bucket")] for k in m.exemplars}
        self.assertEqual(with_ex, set(WITH_EXEMPLARS))
        for fam in m.families:
            if fam.name not in WITH_EXEMPLARS:
                continue
            # every series with observations has at least one exemplar
            series = {}
            for s in fam.samples:
                labels = frozenset((k, v) for k, v in s.labels.items() if k != "le")
                g = series.setdefault(labels, {"count": 0, "exemplars": 0})
                if s.name == fam.name + "_count":
                    g["count"] = s.value
                if s.exemplar is not None:
                    g["exemplars"] += 1
            observed = {l: g for l, g in series.items() if g["count"] > 0}
            self.assertTrue(observed, f"{fam.name}: no observations")
            for labels, g in observed.items():
                self.assertGreater(g["exemplars"], 0, f"{fam.name}{dict(labels)}: no exemplar")
        # both gRPC targets, the SERVING and the NOT_SERVING one
        targets = {dict(k[1])["target"] for k in m.exemplars
                   if k[0] == "poh_grpc_method_latency_seconds_bucket"}
        self.assertEqual(len(targets), 2, targets)

    def check_exemplars(self, m, t_start, t_end):
        for k, e in m.exemplars.items():
            name, labels = k[0], dict(k[1])
            where = f"{name}{labels}: {e}"
            self.assertTrue(name.endswith("_bucket") and m.types[name] == "histogram", where)
            self.assertEqual(set(e.labels), {"trace_id", "span_id"}, where)
            self.assertRegex(e.labels["trace_id"], TRACE_RE)
            self.assertRegex(e.labels["span_id"], SPAN_RE)
            self.assertNotEqual(e.labels["trace_id"].strip("0"), "", where)
            self.assertNotEqual(e.labels["span_id"].strip("0"), "", where)
            self.assertIsNotNone(e.timestamp, where)
            self.assertTrue(t_start - 1 <= e.timestamp <= t_end + 1, where)
            # inside its bucket: (next lower le, le]
            le = float(labels["le"])
            rest = {(a, b) for a, b in k[1] if a != "le"}
            lower = [float(dict(o[1])["le"]) for o in m
                     if o[0] == name and {(a, b) for a, b in o[1] if a != "le"} == rest]
            lower = [x for x in lower if x < le]
            lo = max(lower) if lower else -math.inf
            self.assertTrue(lo < e.value <= le, f"{where}: outside ({lo}, {le}]")

    def check_ids(self, m, sim, node, sink):
        docs = documents(sim)
        self.assertEqual(len(docs), DOCS)
        grpc = {}
        for k, e in m.exemplars.items():
            ids = (e.labels["trace_id"], e.labels["span_id"])
            family = k[0][:-len("_bucket")]
            if WITH_EXEMPLARS[family] == "grpc":
                grpc[ids] = (dict(k[1]), e)
                continue
            self.assertIn(ids, docs, f"{k[0]}: exemplar ids are no document's traceparent")
            d = docs[ids]
            if family == "poh_storage_latency_seconds":
                # commit - created_at; the simulator commits COMMIT_DELAY_MS after created_at
                self.assertAlmostEqual(e.value, COMMIT_DELAY_MS / 1000, delta=0.0015)
            else:
                self.assertAlmostEqual(e.value, seconds(d["created_at"], d["approved_at"]),
                                       delta=1e-9)

        def probe_spans():
            return {(s["trace_id"], s["span_id"]): s for s in sink.spans()
                    if s["name"] == PROBE_SPAN}
        self.assertTrue(pohtest.wait_until(lambda: set(grpc) <= set(probe_spans()), 15),
                        "gRPC exemplars whose span never reached the collector")
        spans = probe_spans()
        for ids, (labels, e) in grpc.items():
            s = spans[ids]
            self.assertEqual(s["kind"], 3)  # CLIENT
            self.assertEqual(f"{s['attributes']['server.address']}:"
                             f"{s['attributes']['server.port']}", labels["target"])
            # the span starts before the call is timed (src/collectors/grpc.c:
            # the span, then t0; microseconds, milliseconds on a loaded machine)
            # and ends at t0 + latency: the latency is at most its duration
            took = (s["end"] - s["start"]) / 1e9
            self.assertTrue(0 < e.value <= took + 1e-6, (e.value, took))


if __name__ == "__main__":
    pohtest.main()
