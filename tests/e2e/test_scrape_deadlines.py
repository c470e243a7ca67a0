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


if __name__ == "__main__":
    main()
