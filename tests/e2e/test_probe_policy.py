# SPDX-License-Identifier: Apache-2.0
"""The /probe policy (issue 15, item 2): /probe cannot be aimed at the network.

By default a module probes only the targets its group lists: anything else
gets 403 and no connection is opened. probe.allow (CIDRs, host-name
patterns) opens it wider, checked after name resolution; the group's
metadata (a bearer token here) and client certificate go only to its listed
targets unless probe.send_credentials says otherwise. /probe requests have
their own limit (web.max_concurrent_probes) and get 503 beyond it.

Before, /probe?module=poh&target=ANY:PORT connected anywhere and sent the
token along; a listener captured it."""
import select
import socket
import threading
import time
import unittest
import urllib.parse

import grpcsim
import pohtest
from pohtest import main

TOKEN = "Bearer s3cret-probe-token"


class Silent:
    """A listener that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def connected(self, wait=0.5):
        r, _, _ = select.select([self.sock], [], [], wait)
        return bool(r)

    def close(self):
        self.sock.close()


def config(node, probe="", web=""):
    return (web + "grpc:\n  - name: poh\n    timeout: 3s\n"
            f"    targets: [\"{node.addr(0)}\"]\n"
            f"    metadata: {{authorization: \"{TOKEN}\"}}\n" + probe)


def probe(exp, target):
    st, _, body = exp.request("/probe?" + urllib.parse.urlencode(
        {"module": "poh", "target": target}), timeout=30)
    return st, body.decode()


class PolicyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # 0: listed; 1: not listed; 2: slow (for the concurrency limit)
        cls.node = grpcsim.NodeSim([[], [], ["--mode", "slow:1500"]])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def setUp(self):
        self.node.reset()

    def test_default_only_listed_targets(self):
        silent = Silent()
        with pohtest.Exporter(config(self.node)) as exp:
            st, body = probe(exp, self.node.addr(0))
            self.assertEqual(st, 200)
            self.assertEqual(pohtest.value(pohtest.parse_exposition(body), "poh_probe_success"), 1)
            self.assertEqual(self.node.lastmd(0, "authorization"), TOKEN)
            for target in (silent.addr, self.node.addr(1), "localhost:%s" % silent.addr.split(":")[1],
                           "[::1]:%s" % silent.addr.split(":")[1]):
                with self.subTest(target=target):
                    st, body = probe(exp, target)
                    self.assertEqual(st, 403, body)
                    self.assertIn("not allowed", body)
            self.assertFalse(silent.connected(), "a refused /probe opened a connection")
            self.assertEqual(self.node.count(1), 0)
        silent.close()

    def test_allow_cidr_without_credentials(self):
        cfg = config(self.node, "    probe: {allow: [\"127.0.0.0/8\"]}\n")
        with pohtest.Exporter(cfg) as exp:
            st, body = probe(exp, self.node.addr(1))
            self.assertEqual(st, 200, body)
            self.assertEqual(pohtest.value(pohtest.parse_exposition(body), "poh_probe_success"), 1)
            self.assertEqual(self.node.count(1), 1)
            # the token stayed home: the allowed but unlisted host saw none
            self.assertIsNone(self.node.lastmd(1, "authorization"))
            # a name is checked by what it resolves to (localhost: 127.0.0.1 is in the network)
            st, body = probe(exp, "localhost:%d" % self.node.ports[1])
            self.assertEqual(st, 200, body)
            self.assertEqual(self.node.count(1), 2)

    def test_allow_elsewhere_refuses_loopback(self):
        silent = Silent()
        cfg = config(self.node, "    probe: {allow: [\"10.0.0.0/8\", \"fd00::/8\"]}\n")
        with pohtest.Exporter(cfg) as exp:
            for target in (silent.addr, "localhost:%s" % silent.addr.split(":")[1]):
                st, body = probe(exp, target)
                self.assertEqual(st, 403, body)
            self.assertFalse(silent.connected())
        silent.close()

    def test_send_credentials(self):
        cfg = config(self.node, "    probe: {allow: [\"127.0.0.1/32\"], send_credentials: true}\n")
        with pohtest.Exporter(cfg) as exp:
            st, _ = probe(exp, self.node.addr(1))
            self.assertEqual(st, 200)
            self.assertEqual(self.node.lastmd(1, "authorization"), TOKEN)

    def test_host_pattern(self):
        cfg = config(self.node, "    probe: {allow: [\"*.localdomain.invalid\", \"LOCALHOST\"]}\n")
        with pohtest.Exporter(cfg) as exp:
            # a name allowed by its pattern (any case) is probed as it is
            st, body = probe(exp, "localhost:%d" % self.node.ports[1])
            self.assertEqual(st, 200, body)
            self.assertEqual(pohtest.value(pohtest.parse_exposition(body), "poh_probe_success"), 1)
            st, body = probe(exp, "x.localdomain.invalid:1")
            self.assertEqual(st, 200, body)  # allowed; the name does not resolve
            self.assertEqual(pohtest.value(pohtest.parse_exposition(body), "poh_probe_success"), 0)
            # an address is not a name: patterns never allow it
            st, _ = probe(exp, self.node.addr(1))
            self.assertEqual(st, 403)

    def test_concurrent_probe_limit(self):
        cfg = ("web:\n  max_concurrent_probes: 2\n" + "grpc:\n  - name: poh\n    timeout: 5s\n"
               f"    targets: [\"{self.node.addr(2)}\"]\n")
        with pohtest.Exporter(cfg) as exp:
            out = [None] * 3

            def one(i):
                out[i] = probe(exp, self.node.addr(2))[0]

            ths = [threading.Thread(target=one, args=(i,)) for i in range(3)]
            for t in ths:
                t.start()
                time.sleep(0.1)
            # /-/healthy answers while the probes are held
            t0 = time.monotonic()
            st, _, _ = exp.request("/-/healthy", timeout=5)
            self.assertEqual(st, 200)
            self.assertLess(time.monotonic() - t0, 1.0)
            for t in ths:
                t.join(30)
            self.assertEqual(sorted(out), [200, 200, 503], out)

    def test_debug(self):
        cfg = config(self.node, "    probe: {allow: [\"127.0.0.0/8\"]}\n")
        with pohtest.Exporter(cfg) as exp:
            def dbg(target):
                st, hdrs, body = exp.request("/probe?" + urllib.parse.urlencode(
                    {"module": "poh", "target": target, "debug": "true"}))
                return st, hdrs.get("content-type", ""), body.decode()

            st, ctype, body = dbg(self.node.addr(0))
            self.assertEqual(st, 200)
            self.assertTrue(ctype.startswith("text/plain"), ctype)
            for want in ("Logs for the probe:\n", "msg=\"Beginning probe of " + self.node.addr(0),
                         "is one of the group's targets",
                         "/grpc.health.v1.Health/Check: OK (0) after ",
                         "serving status SERVING", "Probe succeeded in ",
                         "Metrics that would have been returned:\n", "\npoh_probe_success 1\n",
                         "Module configuration:\n", "metadata: authorization=<secret>",
                         "probe.allow: 127.0.0.0/8"):
                self.assertIn(want, body)
            self.assertNotIn("s3cret", body)
            st, _, body = dbg(self.node.addr(1))
            self.assertEqual(st, 200)
            self.assertIn("allowed by probe.allow entry 127.0.0.0/8: connecting to "
                          f"{self.node.addr(1)}, without the group's metadata", body)
            st, _, body = dbg("127.0.0.1:1")
            self.assertIn("UNAVAILABLE (14)", body)
            self.assertIn("Probe failed", body)
            st, _, body = dbg("10.0.0.1:1")
            self.assertEqual(st, 403)

    def test_bad_patterns_are_config_errors(self):
        for bad in ("10.0.0.0/33", "::1/129", "10.0.0.0/x", "a b", "http://x", ""):
            with self.subTest(pattern=bad):
                with self.assertRaises(RuntimeError) as e:
                    pohtest.Exporter(config(self.node, f"    probe: {{allow: [\"{bad}\"]}}\n"))
                self.assertIn("probe.allow", str(e.exception))


if __name__ == "__main__":
    main()
