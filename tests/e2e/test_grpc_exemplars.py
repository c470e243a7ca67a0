# SPDX-License-Identifier: Apache-2.0
"""Exemplars on the gRPC probe latency histogram (issue 19 item 5), by
tracing setting. test_exemplars_openmetrics.py checks the exemplars of a
fully sampled run against the spans the collector received; this checks
when there are none. The same two poh_node_sim targets are probed three
times under each setting and the OpenMetrics scrape
(Accept: application/openmetrics-text) is read with prometheus_client's
parser:

- tracing on, sample_ratio 1: every target's latency histogram carries a
  trace_id/span_id exemplar, and each is a CLIENT probe span the OTLP sink
  received;
- tracing on, sample_ratio 0: the same histograms (3 observations each)
  carry no exemplar and no probe span is exported;
- tracing off: no exemplar either."""
import unittest

import grpcsim
import otlpsink
import pohtest

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
FAMILY = "poh_grpc_method_latency_seconds"
PROBE_SPAN = "grpc.health.v1.Health/Check"


class GrpcExemplarTest(unittest.TestCase):
    def run_probes(self, node, tracing):
        cfg = tracing + (f"grpc:\n  - name: poh\n    timeout: 2s\n"
                         f"    targets: [{node.addr(0)}, {node.addr(1)}]\n")
        with pohtest.Exporter(cfg) as ex:
            for _ in range(2):
                ex.scrape()
            m = ex.metrics(openmetrics=True)  # the third scrape probes too
        targets = (node.addr(0), node.addr(1))
        for t in targets:
            self.assertEqual(pohtest.value(m, FAMILY + "_count", group="poh", target=t,
                                           method=grpcsim.HEALTH_METHOD), 3)
        ex_by_target = {}
        for key, e in m.exemplars.items():
            if key[0] == FAMILY + "_bucket":
                ex_by_target.setdefault(dict(key[1])["target"], []).append(e)
        return targets, ex_by_target

    def tracing(self, sink, ratio):
        return (f"tracing:\n  enabled: true\n  endpoint: {sink.endpoint}\n"
                f"  batch_timeout: 100ms\n  shutdown_timeout: 3s\n  sample_ratio: {ratio}\n")

    def test_sampled(self):
        with otlpsink.Sink() as sink, grpcsim.NodeSim([[], []]) as node:
            targets, got = self.run_probes(node, self.tracing(sink, "1.0"))
            self.assertEqual(set(got), set(targets))
            ids = {(e.labels["trace_id"], e.labels["span_id"]) for es in got.values() for e in es}

            def exported():
                return {(s["trace_id"], s["span_id"]) for s in sink.spans()
                        if s["name"] == PROBE_SPAN and s["kind"] == 3}
            self.assertTrue(pohtest.wait_until(lambda: ids <= exported(), 15), ids - exported())

    def test_unsampled(self):
        with otlpsink.Sink() as sink, grpcsim.NodeSim([[], []]) as node:
            _, got = self.run_probes(node, self.tracing(sink, "0"))
            self.assertEqual(got, {})
            self.assertEqual([s for s in sink.spans() if s["name"] == PROBE_SPAN], [])

    def test_tracing_off(self):
        with grpcsim.NodeSim([[], []]) as node:
            _, got = self.run_probes(node, "")
            self.assertEqual(got, {})


if __name__ == "__main__":
    pohtest.main()
