# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for end-to-end tests: start the real poh_exporter on a
loopback port, scrape it, parse the exposition, find real peers (promtool,
prometheus). Every wait is bounded."""
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

BUILD = os.environ.get("POH_BUILD_DIR", "build")
SOURCE = os.environ.get("POH_SOURCE_DIR", ".")
EXPORTER = os.environ.get("POH_EXPORTER", os.path.join(BUILD, "poh_exporter"))

SANITIZER_RE = re.compile(r"runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer")
LISTEN_RE = re.compile(r'listening on ([^"]+):(\d+)"')


def in_ci():
    """CI is set to a true value (.ci/run sets CI=true; so do GitHub Actions and
    most CI services): there scripts/deps.sh has installed every tool the
    tests use, so none may be missing."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def require(present, reason, testcase=None, allowed_in_ci=None):
    """The one skip policy of the end-to-end tests. Returns present when it is
    truthy (a tool's path, an imported module...). When it is not:

    - in CI (in_ci()), the test FAILS: "FAILED: <reason>; ..." and exit 1,
      or testcase.fail() inside a test, because scripts/deps.sh installs
      every tool there and a missing one is a broken environment, not a pass;
    - outside CI, or when allowed_in_ci gives why this requirement can never
      be met in CI (only a real mongod: no Debian package provides one), it
      skips visibly: one line "SKIPPED: <reason>" and exit 77 (CTest's
      SKIP_RETURN_CODE, set for every e2e test in CMakeLists.txt), or
      testcase.skipTest() inside a test, which main() turns into the same
      SKIPPED line and exit 77.

    testcase: the unittest.TestCase to skip or fail (one test of a program);
    without it the whole program stops here."""
    if present:
        return present
    if in_ci() and not allowed_in_ci:
        why = f"{reason}; CI is set, and scripts/deps.sh installs it there"
        if testcase is not None:
            testcase.fail(why)
        print(f"FAILED: {why}")
        sys.stdout.flush()
        sys.exit(1)
    if allowed_in_ci:
        reason = f"{reason} (a skip allowed in CI: {allowed_in_ci})"
    if testcase is not None:
        testcase.skipTest(reason)
    print(f"SKIPPED: {reason}")
    sys.stdout.flush()
    sys.exit(77)


class Exporter:
    """The real binary on 127.0.0.1 with an ephemeral port (listen :0 and read
    the port back from its log line)."""

    def __init__(self, config_text=None, args=(), env=None, config_path=None):
        self.tmp = tempfile.mkdtemp(prefix="poh-e2e-")
        self.config_path = config_path
        if config_text is not None:
            self.config_path = os.path.join(self.tmp, "poh_exporter.yml")
            with open(self.config_path, "w") as f:
                f.write(config_text)
        cmd = [EXPORTER, "--web.listen-address=127.0.0.1:0", "--log.level=debug"]
        if self.config_path:
            cmd.append(f"--config.file={self.config_path}")
        cmd += list(args)
        e = dict(os.environ)
        e.update(env or {})
        self.log_lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=e)
        self._port_ready = threading.Event()
        self.port = None
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._port_ready.wait(15) or self.port is None:
            self.stop()
            raise RuntimeError("exporter did not start:\n" + "\n".join(self.log_lines))
        self.base = f"http://127.0.0.1:{self.port}"

    def _read_log(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.log_lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(2))
                self._port_ready.set()
        self._port_ready.set()

    def log_text(self):
        return "\n".join(self.log_lines)

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(rx.search(l) for l in list(self.log_lines)):
                return True
            time.sleep(0.05)
        return False

    def request(self, path, method="GET", headers=None, data=None, timeout=30):
        """Returns (status, headers dict lower-cased, body bytes)."""
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {},
                                     data=data)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def scrape(self, openmetrics=False, headers=None):
        h = dict(headers or {})
        if openmetrics:
            h["Accept"] = "application/openmetrics-text;version=1.0.0"
        status, hdrs, body = self.request("/metrics", headers=h)
        if status != 200:
            raise AssertionError(f"scrape returned {status}: {body[:200]!r}")
        if hdrs.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return body.decode()

    def metrics(self, **kw):
        return parse_exposition(self.scrape(**kw))

    def stop(self, sig=None):
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        shutil.rmtree(self.tmp, ignore_errors=True)
        bad = [l for l in self.log_lines if SANITIZER_RE.search(l)]
        if bad:
            raise AssertionError("sanitizer report from the exporter:\n" + self.log_text())
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels.items())): float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"unparseable sample line: {line!r}")
        labels = {}
        if m.group(3):
            for k, v in LABEL_RE.findall(m.group(3)):
                labels[k] = v.encode().decode("unicode_escape")
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def find(samples, name, **labels):
    """All samples of a name whose labels include the given ones."""
    want = set(labels.items())
    return {k: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def which(name, *extra_dirs):
    p = shutil.which(name)
    if p:
        return p
    for d in extra_dirs:
        c = os.path.join(d, name)
        if os.access(c, os.X_OK):
            return c
    return None


def wait_until(fn, timeout=10, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = fn()
        if r:
            return r
        time.sleep(interval)
    return fn()


def main():
    """unittest main that prints a one-line summary; exits 1 on a failure, 77
    (a skip, with one SKIPPED line per skipped test) when a test was skipped
    (require()), 0 when every test ran and passed."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    print(f"SUMMARY: {r.testsRun} tests, {len(r.failures)} failures, {len(r.errors)} errors, "
          f"{len(r.skipped)} skipped")
    sys.stdout.flush()
    if not r.wasSuccessful():
        sys.exit(1)
    if r.skipped:
        # A skipped test must not read as a pass: the program reports a skip
        # (CTest's SKIP_RETURN_CODE) with one line per skipped test saying why.
        for test, reason in r.skipped:
            print(f"SKIPPED: {test.id()}: {reason}")
        sys.stdout.flush()
        sys.exit(77)
    sys.exit(0)
