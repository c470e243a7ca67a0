# SPDX-License-Identifier: Apache-2.0
"""Scrape deadlines a client cannot abuse (issue 15, item 3): the scrape
timeout header is capped at web.max_scrape_timeout, and a scrape never joins
a collector run whose deadline is later than its own.

Before, one request with X-Prometheus-Scrape-Timeout-Seconds: 86400 against a
cluster that never answers made every later 5 s scrape join that day-long run
and report poh_exporter_collector_success{collector="mongodb/main"} 0."""
import socket
import threading
import time
import unittest

import grpcsim
import pohtest
from pohtest import main


class Silent:
    """A TCP listener on 127.0.0.1 that never accepts nor answers: the kernel
    completes the handshakes, nothing ever replies (a hung mongod)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def scrape(exp, timeout_header, out, key):
    t0 = time.monotonic()
    st, hdrs, body = exp.request("/metrics", headers={
        "X-Prometheus-Scrape-Timeout-Seconds": str(timeout_header)}, timeout=120)
    out[key] = (time.monotonic() - t0, pohtest.parse_exposition(body.decode()))


class DeadlineTest(unittest.TestCase):
    def test_a_long_header_cannot_hold_shorter_scrapes(self):
        silent = Silent()
        exp = pohtest.Exporter(
            "web:\n  max_scrape_timeout: 8s\n"
            "mongodb:\n  - name: main\n"
            f"    uri: \"mongodb://127.0.0.1:{silent.port}/?directConnection=true\"\n")
        try:
            out = {}
            long = threading.Thread(target=scrape, args=(exp, 86400, out, "long"))
            long.start()
            time.sleep(0.5)
            scrape(exp, 5, out, "short")
            took, m = out["short"]
            print(f"  5 s scrape beside a one-day one: {took:.2f} s")
            self.assertLess(took, 5.0)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 0)
            self.assertEqual(pohtest.value(m, "poh_exporter_collector_success",
                                           collector="mongodb/main"), 1)
            long.join(30)
            took, m = out["long"]
            print(f"  one-day header capped at max_scrape_timeout 8s: {took:.2f} s")
            # capped: 8 s minus the 0.5 s offset, not a day
            self.assertLess(took, 9.0)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 0)
            self.assertEqual(pohtest.value(m, "poh_exporter_collector_success",
                                           collector="mongodb/main"), 1)
            # and scrapes of the same deadline still share one run
            both = {}
            ths = [threading.Thread(target=scrape, args=(exp, 3, both, k)) for k in ("a", "b")]
            for t in ths:
                t.start()
            for t in ths:
                t.join(30)
            for k in ("a", "b"):
                self.assertEqual(pohtest.value(both[k][1], "poh_exporter_collector_success",
                                               collector="mongodb/main"), 1)
        finally:
            exp.stop()
            silent.close()


SLOW_MS = 3000    # the slow target delays every reply this long
OFFSET = 2.0      # web.scrape_timeout_offset


class HeaderOnSlowTargetTest(unittest.TestCase):
    """What X-Prometheus-Scrape-Timeout-Seconds does to a gRPC target slower
    than the deadline (issue 19 item 5). With a 4 s header the deadline is
    4 - 2 s offset = 2 s, below the target's 3 s: the scrape answers 200 in
    about 2 s (well before the target would) with that target failed
    (DEADLINE_EXCEEDED) and the fast one, and the collector, fine. The header
    alone (4 s) is above 3 s, so the failure shows the offset is subtracted.
    With an 8 s header (deadline 6 s) the same target succeeds and the scrape
    takes at least its 3 s. The group's own per-call timeout is 30 s (the
    default 2 s would cut both calls), so the scrape deadline is what limits.
    Bounds keep about a second of margin on each side for a loaded 2-core
    machine."""

    def scrape(self, exp, header):
        t0 = time.monotonic()
        st, _, body = exp.request("/metrics", headers={
            "X-Prometheus-Scrape-Timeout-Seconds": str(header)}, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(st, 200, body[:300])
        return took, pohtest.parse_exposition(body.decode())

    def test_header_minus_offset_bounds_a_slow_target(self):
        with grpcsim.NodeSim([["--mode", f"slow:{SLOW_MS}"], []]) as node:
            slow, fast = node.addr(0), node.addr(1)
            cfg = (f"web:\n  scrape_timeout_offset: {int(OFFSET * 1000)}ms\n"
                   f"grpc:\n  - name: poh\n    timeout: 30s\n    targets: [{slow}, {fast}]\n")
            with pohtest.Exporter(cfg) as exp:
                took, m = self.scrape(exp, 4)
                self.assertGreater(took, 4 - OFFSET - 0.5, "the deadline was cut short")
                self.assertLess(took, SLOW_MS / 1000, "the scrape waited for the slow target")
                self.assertEqual(pohtest.value(m, "poh_probe_success", group="poh", target=slow), 0)
                self.assertEqual(pohtest.value(m, "poh_request_failures_total", group="poh", target=slow,
                                               method=grpcsim.HEALTH_METHOD, code="DEADLINE_EXCEEDED"), 1)
                self.assertEqual(pohtest.value(m, "poh_probe_success", group="poh", target=fast), 1)
                self.assertEqual(pohtest.value(m, "poh_exporter_collector_success", collector="grpc/poh"), 1)
                self.assertEqual(node.count(0), 1)   # the call was made, not skipped

                took, m = self.scrape(exp, 8)
                self.assertGreaterEqual(took, SLOW_MS / 1000)
                self.assertLess(took, 8 - OFFSET)
                self.assertEqual(pohtest.value(m, "poh_probe_success", group="poh", target=slow), 1)
                self.assertEqual(pohtest.value(m, "poh_ack_total", group="poh", target=slow,
                                               method=grpcsim.HEALTH_METHOD), 1)
                self.assertEqual(pohtest.value(m, "poh_request_failures_total", group="poh", target=slow,
                                               method=grpcsim.HEALTH_METHOD, code="DEADLINE_EXCEEDED"), 1)


if __name__ == "__main__":
    main()
