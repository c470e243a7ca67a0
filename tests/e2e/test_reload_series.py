# SPDX-License-Identifier: Apache-2.0
"""A reload that drops a target, group, cluster or stream drops its series
too; what stays keeps counting from where it was (no reset)."""
import signal
import time
import unittest

import grpcsim
import mongoexp
import mongosim
import pohtest


def grpc_cfg(groups):
    out = "web:\n  enable_reload: true\ngrpc:\n"
    for name, targets in groups:
        out += f"  - name: {name}\n    targets: [{', '.join(targets)}]\n"
    return out


class ReloadSeriesTest(unittest.TestCase):
    def reload(self, ex, text):
        with open(ex.config_path, "w") as f:
            f.write(text)
        st, _, body = ex.request("/-/reload", method="POST", data=b"")
        self.assertEqual(st, 200, body)

    def test_grpc_targets(self):
        with grpcsim.NodeSim([[], [], []]) as sim:
            a, b, c = (sim.addr(i) for i in range(3))
            with pohtest.Exporter(grpc_cfg([("poh", [a, b]), ("presence", [c])])) as ex:
                for _ in range(3):
                    ex.scrape()
                m = ex.metrics()
                req = "poh_requests_total"
                hc = "/grpc.health.v1.Health/Check"
                self.assertEqual(pohtest.value(m, req, group="poh", target=b, method=hc), 4)
                self.reload(ex, grpc_cfg([("poh", [a])]))
                m = ex.metrics()
                # a keeps its count (4 scrapes before, this one makes 5).
                self.assertEqual(pohtest.value(m, req, group="poh", target=a, method=hc), 5)
                self.assertEqual(pohtest.find(m, req, target=b), {})
                self.assertEqual(pohtest.find(m, req, group="presence"), {})
                self.assertEqual(pohtest.find(m, "poh_grpc_method_latency_seconds_count",
                                              target=b), {})
                self.assertTrue(ex.wait_log(r"dropped \d+ series of targets no longer"))
                # Putting b back starts it again from zero: an honest reset.
                self.reload(ex, grpc_cfg([("poh", [a, b])]))
                m = ex.metrics()
                self.assertEqual(pohtest.value(m, req, group="poh", target=b, method=hc), 1)

    def test_mongodb_stream(self):
        state = mongoexp.StateDir()
        with mongosim.MongoSim() as sim:
            two = mongoexp.TX_STREAM + mongoexp.TX_STREAM.replace("name: tx", "name: tx2")
            cfg = lambda streams: "web:\n  enable_reload: true\n" + mongoexp.config(
                [{"name": "main", "uri": sim.uri, "streams": [streams]}], state.path)
            ex = pohtest.Exporter(cfg(two))
            try:
                self.assertTrue(mongoexp.wait_stream_up(ex, stream="tx"))
                self.assertTrue(mongoexp.wait_stream_up(ex, stream="tx2"))
                sim.insert(5)
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", 5,
                                                     cluster="main", stream="tx2",
                                                     operation="insert"), 5)
                self.reload(ex, cfg(mongoexp.TX_STREAM))
                m = ex.metrics()
                self.assertEqual(pohtest.find(m, "poh_mongodb_changes_total", stream="tx2"), {})
                self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", cluster="main",
                                               stream="tx", operation="insert"), 5)
            finally:
                mongoexp.stop_checked(ex)
        state.cleanup()

    def test_mongodb_cluster(self):
        """SIGHUP with one of two clusters gone: none of its series is left
        (the cluster's own, its streams', its latency histograms'), the other
        cluster keeps its series and keeps counting, and the removed
        cluster's simulator is sent nothing more."""
        state = mongoexp.StateDir()
        with mongosim.MongoSim() as sim_a, mongosim.MongoSim() as sim_b:
            def cfg(clusters):
                return "web:\n  enable_reload: true\n" + mongoexp.config(
                    [{"name": n, "uri": s.uri, "streams": [mongoexp.TX_STREAM]} for n, s in clusters],
                    state.path)
            ex = pohtest.Exporter(cfg([("a", sim_a), ("b", sim_b)]))
            try:
                for c in ("a", "b"):
                    self.assertTrue(mongoexp.wait_stream_up(ex, cluster=c))
                sim_a.insert(5)
                sim_b.insert(7)
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", 7, cluster="b",
                                                     stream="tx", operation="insert"), 7)
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", 5, cluster="a",
                                                     stream="tx", operation="insert"), 5)
                before = ex.scrape()
                self.assertIn('poh_mongodb_up{cluster="b"} 1', before)
                self.assertIn('poh_storage_latency_seconds_count{cluster="b",stream="tx"} 7', before)
                with open(ex.config_path, "w") as f:
                    f.write(cfg([("a", sim_a)]))
                ex.proc.send_signal(signal.SIGHUP)
                self.assertTrue(ex.wait_log(r'msg="reloaded ', timeout=20), ex.log_text()[-2000:])
                text = ex.scrape()
                left = [l for l in text.splitlines() if 'cluster="b"' in l]
                self.assertEqual(left, [])
                self.assertIn('poh_mongodb_up{cluster="a"} 1', text)
                m = pohtest.parse_exposition(text)
                self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", cluster="a",
                                               stream="tx", operation="insert"), 5)
                self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                               cluster="a", stream="tx"), 5)
                sim_a.insert(3)
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", 8, cluster="a",
                                                     stream="tx", operation="insert"), 8)
                # b's clients are gone: once its connections are closed (the old
                # collector's teardown may still be ending b's cursors and sessions
                # right after the reload on a loaded machine), a few scrapes later
                # b has seen no new command
                end = time.monotonic() + 20
                while sim_b.status()["connections"] > 0 and time.monotonic() < end:
                    time.sleep(0.1)
                self.assertEqual(sim_b.status()["connections"], 0, sim_b.status())
                n_b = sum(sim_b.commands().values())
                for _ in range(3):
                    ex.scrape()
                    time.sleep(0.3)
                self.assertEqual(sum(sim_b.commands().values()), n_b, sim_b.commands())
            finally:
                mongoexp.stop_checked(ex)
        state.cleanup()


if __name__ == "__main__":
    pohtest.main()
