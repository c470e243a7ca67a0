# SPDX-License-Identifier: Apache-2.0
"""Command line of the real binary: --version, --help, --config.check, flag errors."""
import os
import subprocess
import tempfile
import unittest

import pohtest


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([pohtest.EXPORTER, *args], capture_output=True, text=True,
                          timeout=30, env=e)


class CliTest(unittest.TestCase):
    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^poh_exporter, version \d+\.\d+\.\d+ \(revision: \S+\)\n$")

    def test_help(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--config.file", "--config.check", "--web.listen-address",
                     "--web.telemetry-path", "--log.level", "--log.format", "--version"):
            self.assertIn(flag, r.stdout)

    def test_unknown_flag(self):
        r = run("--no-such-flag")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--no-such-flag", r.stderr)

    def test_shipped_config_is_valid(self):
        path = os.path.join(pohtest.SOURCE, "etc", "poh_exporter.yml")
        r = run(f"--config.file={path}", "--config.check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_embedded_default_is_valid(self):
        r = run("--config.check")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_config_check_reports_every_error(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("web:\n  listen_adress: 1.2.3.4:80\n  idle_timeout: 5 minutes\n"
                    "state_dir: /tmp\nlogg: {}\n")
        try:
            r = run(f"--config.file={f.name}", "--config.check")
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{f.name}:2:3: web.listen_adress: unknown key", r.stderr)
        self.assertIn('did you mean "listen_address"', r.stderr)
        self.assertIn(f"{f.name}:3:17: web.idle_timeout", r.stderr)
        self.assertIn(f"{f.name}:5:1: logg: unknown key", r.stderr)
        self.assertIn("FAILED", r.stderr)

    def test_missing_file(self):
        r = run("--config.file=/nonexistent/poh.yml", "--config.check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/poh.yml", r.stderr)

    def test_bad_flag_values(self):
        for args, needle in ((["--log.level=loud"], "--log.level"),
                             (["--log.format=xml"], "--log.format"),
                             (["--web.listen-address=nonsense"], "--web.listen-address"),
                             (["--web.listen-address=127.0.0.1:70000"], "--web.listen-address"),
                             (["--web.telemetry-path=metrics"], "--web.telemetry-path")):
            r = run(*args, "--config.check")
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(needle, r.stderr)

    def test_listen_failure_exits(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = subprocess.run([pohtest.EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)

    def test_prometheus_bind_env(self):
        port = pohtest.free_port()
        # PROMETHEUS_BIND is the default address when neither flag nor file sets it.
        e = dict(os.environ, PROMETHEUS_BIND=f"127.0.0.1:{port}")
        p = subprocess.Popen([pohtest.EXPORTER], stderr=subprocess.PIPE, text=True, env=e)
        try:
            line = ""
            for _ in range(50):
                line = p.stderr.readline()
                if "listening on" in line:
                    break
            self.assertIn(f"listening on 127.0.0.1:{port}", line)
        finally:
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    pohtest.main()
