# SPDX-License-Identifier: Apache-2.0
"""OTLP over TLS: otlp_sink with a self-signed certificate made by openssl
at test time; the exporter verifies it with tracing.tls.ca_file and
server_name, refuses it without, and accepts it with insecure_skip_verify."""
import shutil
import tempfile
import unittest

from otlpsink import Sink, emit, make_cert
from pohtest import main, require

QUICK = ("--scenario", "types", "--retry-initial-ms", "50", "--retry-max-ms", "100",
         "--retry-max-elapsed-ms", "300", "--export-timeout-ms", "3000")


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="otlp-tls-")
        cls.cert, cls.key = make_cert(cls.tmp)

    def tls_sink(self):
        return Sink("--tls-cert", self.cert, "--tls-key", self.key)

    def test_verified_with_ca_file(self):
        with self.tls_sink() as sink:
            run = emit(*QUICK, "--tls-ca", self.cert, "--tls-server-name", "localhost",
                       endpoint=f"https://127.0.0.1:{sink.port}")
        self.assertEqual(len(sink.spans()), 1)
        self.assertEqual(run.stats["exported"], 1)
        self.assertIn("over TLS", run.stderr)

    def test_scheme_less_endpoint_with_tls_settings_uses_tls(self):
        with self.tls_sink() as sink:
            run = emit(*QUICK, "--tls-ca", self.cert, "--tls-server-name", "localhost",
                       endpoint=sink.endpoint)
        self.assertEqual(run.stats["exported"], 1)

    def test_unknown_ca_is_refused(self):
        with self.tls_sink() as sink:
            run = emit(*QUICK, endpoint=f"https://127.0.0.1:{sink.port}")
        self.assertEqual(sink.requests(), [])
        self.assertEqual(run.stats["exported"], 0)
        self.assertEqual(run.stats["dropped"]["export_failed"], 1)

    def test_insecure_skip_verify(self):
        with self.tls_sink() as sink:
            run = emit(*QUICK, "--tls-insecure", endpoint=f"https://127.0.0.1:{sink.port}")
        self.assertEqual(run.stats["exported"], 1)
        self.assertEqual(len(sink.spans()), 1)

    def test_plaintext_client_to_tls_server_fails(self):
        with self.tls_sink() as sink:
            run = emit(*QUICK, endpoint=f"http://127.0.0.1:{sink.port}")
        self.assertEqual(run.stats["exported"], 0)
        self.assertEqual(sink.requests(), [])

    def test_missing_ca_file_is_a_clear_error(self):
        run = emit(*QUICK, "--tls-ca", "/nonexistent/ca.pem", endpoint="https://127.0.0.1:9")
        self.assertFalse(run.enabled)
        self.assertIn("tracing.tls.ca_file: cannot read /nonexistent/ca.pem", run.stderr)


if __name__ == "__main__":
    require(shutil.which("openssl"), "no openssl on PATH (Debian package openssl)")
    main()
