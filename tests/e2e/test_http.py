# SPDX-License-Identifier: Apache-2.0
"""HTTP surface of the real exporter: routes, methods, negotiation, gzip,
limits, reload and shutdown."""
import gzip
import os
import signal
import socket
import time
import unittest

import pohtest
from pohtest import Exporter

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
OM_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,"
               "application/openmetrics-text;version=0.0.1;q=0.4,"
               "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ex = Exporter("web:\n  idle_timeout: 1s\n  max_request_bytes: 4096\n")

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()

    def test_metrics_text(self):
        st, h, body = self.ex.request("/metrics")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], TEXT_CT)
        text = body.decode()
        self.assertNotIn("# EOF", text)
        s = pohtest.parse_exposition(text)
        bi = pohtest.find(s, "poh_exporter_build_info")
        self.assertEqual(len(bi), 1)
        self.assertEqual(list(bi.values())[0], 1.0)
        self.assertEqual(pohtest.value(s, "poh_exporter_config_last_reload_successful"), 1.0)
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                     "process_start_time_seconds"):
            self.assertIsNotNone(pohtest.value(s, name), name)
        self.assertGreater(pohtest.value(s, "process_resident_memory_bytes"), 1e5)
        start = pohtest.value(s, "process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 3600)

    def test_openmetrics_negotiated(self):
        for accept in (PROM_ACCEPT, "application/openmetrics-text;version=1.0.0"):
            st, h, body = self.ex.request("/metrics", headers={"Accept": accept})
            self.assertEqual(st, 200)
            self.assertEqual(h["content-type"], OM_CT)
            self.assertTrue(body.decode().endswith("# EOF\n"))
            self.assertIn("# TYPE process_cpu_seconds counter", body.decode())
        st, h, body = self.ex.request("/metrics", headers={"Accept": "text/plain"})
        self.assertEqual(h["content-type"], TEXT_CT)

    def test_gzip(self):
        st, h, body = self.ex.request("/metrics", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(st, 200)
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertIn("poh_exporter_build_info", gzip.decompress(body).decode())
        st, h, body = self.ex.request("/metrics", headers={"Accept-Encoding": "gzip;q=0, br"})
        self.assertIsNone(h.get("content-encoding"))
        self.assertIn(b"poh_exporter_build_info", body)

    def test_head(self):
        st, h, body = self.ex.request("/metrics", method="HEAD")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        self.assertEqual(h["content-type"], TEXT_CT)

    def test_methods_and_routes(self):
        for m in ("POST", "PUT", "DELETE"):
            st, h, _ = self.ex.request("/metrics", method=m, data=b"" if m != "DELETE" else None)
            self.assertEqual(st, 405, m)
            self.assertEqual(h.get("allow"), "GET, HEAD")
        st, _, _ = self.ex.request("/nope")
        self.assertEqual(st, 404)
        st, _, _ = self.ex.request("/metrics/extra")
        self.assertEqual(st, 404)
        st, _, body = self.ex.request("/-/healthy")
        self.assertEqual(st, 200)
        st, _, body = self.ex.request("/-/ready")
        self.assertEqual(st, 200)
        st, h, body = self.ex.request("/")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'href="/metrics"', body)
        st, _, _ = self.ex.request("/-/reload")
        self.assertEqual(st, 405)
        st, _, _ = self.ex.request("/-/reload", method="POST", data=b"")
        self.assertEqual(st, 403)  # web.enable_reload is off

    def test_probe_requires_params(self):
        st, _, body = self.ex.request("/probe")
        self.assertEqual(st, 400)
        self.assertIn(b"target", body)
        st, _, body = self.ex.request("/probe?target=127.0.0.1:1&module=nosuch")
        self.assertEqual(st, 400)
        self.assertIn(b"unknown module", body)

    def test_scrape_timeout_header(self):
        for v in ("0.2", "garbage", "-1", "1e9"):
            st, _, _ = self.ex.request("/metrics",
                                       headers={"X-Prometheus-Scrape-Timeout-Seconds": v})
            self.assertEqual(st, 200, v)

    def test_oversized_body_rejected(self):
        st, _, _ = self.ex.request("/metrics", method="POST", data=b"x" * 100000)
        self.assertEqual(st, 413)

    def test_oversized_headers_rejected(self):
        st, _, _ = self.ex.request("/metrics", headers={"X-Big": "a" * 20000})
        self.assertIn(st, (413, 431))

    def test_idle_connection_closed(self):
        s = socket.create_connection(("127.0.0.1", self.ex.port), timeout=10)
        t0 = time.monotonic()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes the request
        data = s.recv(100)
        took = time.monotonic() - t0
        s.close()
        self.assertLess(took, 8)  # idle_timeout is 1s
        self.assertIn(data[:12], (b"", b"HTTP/1.1 408"))

    def test_slow_clients_do_not_block_scrapes(self):
        socks = [socket.create_connection(("127.0.0.1", self.ex.port), timeout=5)
                 for _ in range(5)]
        for s in socks:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
        t0 = time.monotonic()
        self.ex.scrape()
        self.assertLess(time.monotonic() - t0, 2)
        for s in socks:
            s.close()

    def test_garbage_request(self):
        s = socket.create_connection(("127.0.0.1", self.ex.port), timeout=5)
        s.sendall(b"\x00\x01\x02 NOT HTTP\r\n\r\n")
        data = s.recv(100)
        s.close()
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 400"), data)
        self.ex.scrape()  # still serving


class ConnectionLimitTest(unittest.TestCase):
    def test_connection_limit(self):
        with Exporter("web:\n  max_connections: 4\n  idle_timeout: 5s\n") as ex:
            held = [socket.create_connection(("127.0.0.1", ex.port), timeout=5)
                    for _ in range(6)]
            for s in held:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
            time.sleep(0.3)
            # Over the limit a connection is not served: libmicrohttpd (on
            # poll(), since descriptors above 1023 must work) accepts and
            # closes it at once (reset or EOF); on select() it waited in the
            # listen backlog with no answer while the slots were held.
            extra = socket.create_connection(("127.0.0.1", ex.port), timeout=1)
            try:
                extra.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                data = extra.recv(100)
            except socket.timeout:
                data = None
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            self.assertIn(data, (None, b""), "a connection over the limit was served")
            for s in held:
                s.close()
            # Slots free again once the held connections are gone.
            ok = pohtest.wait_until(lambda: self._healthy(ex), timeout=10)
            self.assertTrue(ok)
            extra.close()

    @staticmethod
    def _healthy(ex):
        try:
            return ex.request("/-/healthy", timeout=2)[0] == 200
        except OSError:
            return False


class TelemetryPathTest(unittest.TestCase):
    def test_custom_path_flag(self):
        with Exporter(args=["--web.telemetry-path=/stats"]) as ex:
            st, _, body = ex.request("/stats")
            self.assertEqual(st, 200)
            self.assertIn(b"poh_exporter_build_info", body)
            st, _, _ = ex.request("/metrics")
            self.assertEqual(st, 404)
            st, _, body = ex.request("/")
            self.assertIn(b'href="/stats"', body)


class ReloadTest(unittest.TestCase):
    GOOD = "web:\n  enable_reload: true\nlog:\n  level: info\n"

    def test_reload_post_and_sighup(self):
        with Exporter(self.GOOD) as ex:
            st, _, body = ex.request("/-/reload", method="POST", data=b"")
            self.assertEqual(st, 200, body)
            m = ex.metrics()
            self.assertEqual(pohtest.value(m, "poh_exporter_config_last_reload_successful"), 1)
            ts1 = pohtest.value(m, "poh_exporter_config_last_reload_success_timestamp_seconds")
            self.assertGreater(ts1, 1e9)

            with open(ex.config_path, "w") as f:
                f.write("web:\n  enable_reload: true\n  listn_address: x\n")
            st, _, body = ex.request("/-/reload", method="POST", data=b"")
            self.assertEqual(st, 500)
            self.assertIn(b":3:3: web.listn_address", body)
            m = ex.metrics()
            self.assertEqual(pohtest.value(m, "poh_exporter_config_last_reload_successful"), 0)

            with open(ex.config_path, "w") as f:
                f.write(self.GOOD)
            ex.proc.send_signal(signal.SIGHUP)
            ok = pohtest.wait_until(lambda: pohtest.value(
                ex.metrics(), "poh_exporter_config_last_reload_successful") == 1, timeout=10)
            self.assertTrue(ok)

            with open(ex.config_path, "w") as f:
                f.write("web: [not, a, map]\n")
            ex.proc.send_signal(signal.SIGHUP)
            ok = pohtest.wait_until(lambda: pohtest.value(
                ex.metrics(), "poh_exporter_config_last_reload_successful") == 0, timeout=10)
            self.assertTrue(ok)
            self.assertTrue(ex.wait_log(r"reload failed"))
            self.assertEqual(ex.proc.poll(), None)

    def test_sigterm_clean_exit(self):
        ex = Exporter()
        ex.scrape()
        rc = ex.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertIn("stopped", ex.log_text())

    def test_json_logs(self):
        with Exporter(args=["--log.format=json"]) as ex:
            ex.scrape()
            first = ex.log_lines[0]
            self.assertTrue(first.startswith("{") and first.endswith("}"), first)
            import json
            d = json.loads(first)
            self.assertIn(d["level"], ("info", "debug"))


if __name__ == "__main__":
    pohtest.main()
