# SPDX-License-Identifier: Apache-2.0
"""Tracing through the real exporter: a root span per scrape and a CLIENT span
per gRPC probe arrive at otlp_sink with the right names, kinds, attributes and
parent links; a blackholed collector costs scrapes nothing and drops are
counted."""
import statistics
import time
import unittest

import grpcsim
import otlpsink
import pohtest


def tracing_cfg(endpoint, extra=""):
    return (f"tracing:\n  enabled: true\n  endpoint: {endpoint}\n  batch_timeout: 100ms\n"
            f"  shutdown_timeout: 2s\n  export_timeout: 1s\n{extra}")


def grpc_cfg(ports):
    targets = ", ".join(f"127.0.0.1:{p}" for p in ports)
    return (f"grpc:\n  - name: poh\n    targets: [{targets}]\n    health_service: poh.PoH\n"
            f"    timeout: 1s\n")


def scrape_times(ex, n):
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        ex.scrape()
        out.append(time.monotonic() - t0)
    return out


class TracingExporterTest(unittest.TestCase):
    def test_scrape_and_probe_spans(self):
        with grpcsim.NodeSim([[], ["--mode", "not_serving"]]) as sim, \
                otlpsink.Sink() as sink:
            ex = pohtest.Exporter(tracing_cfg(sink.endpoint) + grpc_cfg(sim.ports))
            try:
                for _ in range(3):
                    ex.scrape()
            finally:
                ex.stop()  # flushes the queue within shutdown_timeout
            spans = sink.spans()
            roots = [s for s in spans if s["name"] == "scrape"]
            self.assertEqual(len(roots), 3)
            for r in roots:
                self.assertEqual(r["kind"], 2)  # SERVER
                self.assertEqual(r.get("parent_span_id", ""), "")
            self.assertEqual(len({r["trace_id"] for r in roots}), 3)
            probes = [s for s in spans if s["name"] == "grpc.health.v1.Health/Check"]
            self.assertEqual(len(probes), 6)
            by_span = {r["span_id"]: r for r in roots}
            for p in probes:
                self.assertEqual(p["kind"], 3)  # CLIENT
                parent = by_span[p["parent_span_id"]]
                self.assertEqual(p["trace_id"], parent["trace_id"])
                self.assertGreaterEqual(p["start"], parent["start"])
                self.assertLessEqual(p["end"], parent["end"])
                a = p["attributes"]
                self.assertEqual(a["rpc.system"], "grpc")
                self.assertEqual(a["rpc.service"], "grpc.health.v1.Health")
                self.assertEqual(a["rpc.method"], "Check")
                self.assertEqual(a["server.address"], "127.0.0.1")
                self.assertIn(a["server.port"], sim.ports)
                self.assertEqual(a["rpc.grpc.status_code"], 0)
                failed = a["server.port"] == sim.ports[1]  # NOT_SERVING is an error
                self.assertEqual(p["status"]["code"], 2 if failed else 0)
            # The probe carried its span's traceparent to the node.
            tp = sim.lastmd(0, "traceparent")
            self.assertRegex(tp or "", r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")

    def test_blackholed_collector_costs_nothing(self):
        with otlpsink.Sink("--blackhole") as sink:
            cfg = tracing_cfg(sink.endpoint, "  queue_size: 4\n  batch_size: 2\n")
            with pohtest.Exporter("") as base, pohtest.Exporter(cfg) as ex:
                # Both run at once and are scraped in turn, so a loaded machine
                # slows both alike; waiting for the blackholed collector would
                # cost the export timeout (seconds) per scrape.
                scrape_times(base, 5)
                scrape_times(ex, 5)
                tb, tx = [], []
                for _ in range(30):
                    tb += scrape_times(base, 1)
                    tx += scrape_times(ex, 1)
                t_base, t_bh = statistics.median(tb), statistics.median(tx)
                m = ex.metrics()
                dropped = pohtest.value(m, "poh_exporter_spans_dropped_total",
                                        reason="queue_full")
                exported = pohtest.value(m, "poh_exporter_spans_exported_total")
            print(f"median scrape: {t_base * 1e3:.2f} ms without tracing, "
                  f"{t_bh * 1e3:.2f} ms with a blackholed collector")
            self.assertLess(t_bh, t_base * 2 + 0.02)
            self.assertGreater(dropped, 0)
            self.assertEqual(exported, 0)


if __name__ == "__main__":
    pohtest.main()
