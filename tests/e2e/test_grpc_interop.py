# SPDX-License-Identifier: Apache-2.0
"""Interoperability: the exporter's C probe engine against a gRPC server the
project did not write (python3-grpcio, stubs generated at test time with
grpc_tools.protoc from the upstream-numbered health.proto)."""
import sys
import unittest

import grpc

import grpcsim
from grpcsim import HEALTH_METHOD, STATE_METHOD, PyHealthServer, run_cli

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class EngineAgainstGrpcio(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = PyHealthServer({"": "SERVING", "poh.PoH": "SERVING",
                                  "presence.Presence": "NOT_SERVING", "old": "UNKNOWN"},
                                 state=True)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_statuses(self):
        for service, code, serving in (("", "OK", "SERVING"), ("poh.PoH", "OK", "SERVING"),
                                       ("presence.Presence", "OK", "NOT_SERVING"),
                                       ("old", "OK", "UNKNOWN"),
                                       ("missing", "NOT_FOUND", "INVALID")):
            with self.subTest(service=service):
                calls, _ = run_cli(["--timeout", "2", "--service", service, self.srv.addr])
                self.assertEqual((calls[0]["code"], calls[0]["serving"]), (code, serving),
                                 calls[0]["details"])

    def test_counts_metadata_and_traceparent(self):
        before = self.srv.count()
        calls, _ = run_cli(["--timeout", "2", "--rounds", "4", "--md",
                            "authorization=Bearer s3cret", "--traceparent", TRACEPARENT,
                            self.srv.addr])
        self.assertEqual([c["code"] for c in calls], ["OK"] * 4)
        self.assertEqual(self.srv.count() - before, 4)
        md = self.srv.last_metadata
        self.assertEqual(md.get("authorization"), "Bearer s3cret")
        self.assertEqual(md.get("traceparent"), TRACEPARENT)
        self.assertTrue(md.get("user-agent", "").startswith("poh_exporter/"), md)

    def test_state_call(self):
        calls, _ = run_cli(["--method", STATE_METHOD, "--field", "1:uint64", "--field", "2",
                            "--field", "3", "--field", "5.2:sint64", self.srv.addr])
        c = calls[0]
        self.assertEqual(c["code"], "OK", c["details"])
        self.assertEqual(float(c["field.1:uint64"]), 777)
        self.assertEqual(float(c["field.2"]), 12)
        self.assertEqual(float(c["field.3"]), 1.25e6)
        self.assertEqual(float(c["field.5.2:sint64"]), -3)

    def test_abort_and_slow(self):
        with PyHealthServer(abort=(grpc.StatusCode.UNAVAILABLE, "draining")) as srv:
            calls, _ = run_cli(["--timeout", "2", srv.addr])
            self.assertEqual((calls[0]["code"], calls[0]["details"]), ("UNAVAILABLE", "draining"))
        with PyHealthServer(delay=1.0) as srv:
            calls, _ = run_cli(["--timeout", "0.3", srv.addr])
            self.assertEqual(calls[0]["code"], "DEADLINE_EXCEEDED")
            self.assertLess(calls[0]["latency"], 0.9)

    def test_reply_size_cap(self):
        # gRPC's 4 MiB receive limit, applied by the engine itself (its
        # channels run gRPC's minimal stack, without the message-size filter)
        with PyHealthServer(state=True, version_bytes=5 << 20) as srv:
            calls, _ = run_cli(["--timeout", "10", "--method", STATE_METHOD, srv.addr])
            self.assertEqual(calls[0]["code"], "RESOURCE_EXHAUSTED", calls[0]["details"])
            self.assertIn("larger than max", calls[0]["details"])
            self.assertEqual(int(calls[0]["bytes"]), 0)
        with PyHealthServer(state=True, version_bytes=3 << 20) as srv:
            calls, _ = run_cli(["--timeout", "10", "--method", STATE_METHOD, srv.addr])
            self.assertEqual(calls[0]["code"], "OK", calls[0]["details"])
            self.assertGreater(int(calls[0]["bytes"]), 3 << 20)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    print("SUMMARY test_grpc_interop: %d run, %d failures, %d errors, %d skipped"
          % (r.testsRun, len(r.failures), len(r.errors), len(r.skipped)))
    grpcsim.cleanup_stubs()
    sys.exit(0 if r.wasSuccessful() else 1)
