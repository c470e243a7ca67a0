# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for end-to-end tests: start the real poh_exporter on a
loopback port, scrape it, parse the exposition, find real peers (promtool,
prometheus). Every wait is bounded."""
import collections
import gzip
import os
import re
import shutil
import signal
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
        """The scrape parsed by parse_exposition (OpenMetrics with
        openmetrics=True, then # EOF must end it)."""
        return parse_exposition(self.scrape(**kw), openmetrics=kw.get("openmetrics") or None)

    def kill9(self):
        """SIGKILL, as a crash (no shutdown code runs), then the cleanup and
        log checks of stop()."""
        return self.stop(signal.SIGKILL)

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


METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
COUNTER_TYPE_RE = re.compile(r"^#[ \t]+TYPE[ \t]+(\S+)[ \t]+counter[ \t]*$", re.M)


# An exemplar as parse_exposition reports it: labels (dict), value (float),
# timestamp (float seconds, or None).
Exemplar = collections.namedtuple("Exemplar", "labels value timestamp")


class Exposition(dict):
    """What parse_exposition returns. As a dict it is what every caller has
    always used: {(sample name, frozenset(labels.items())): float}, one entry
    per series, label values unescaped (UTF-8 as str). value() and find()
    read it. (prometheus_client's OpenMetrics parser reads "-0" as the
    integer 0: the sign of a zero is lost there.) In addition:

    openmetrics  True when the body was parsed as OpenMetrics
    families     prometheus_client Metric objects in body order (.name, .type,
                 .documentation, .samples); for the text format, counter
                 families are named without _total, as prometheus_client does
    exemplars    {key: Exemplar} for the samples that carry one (OpenMetrics)
    types        {sample name: type of its family}
    duplicates   {key: [every value, in body order]} for repeated series, only
                 filled with allow_duplicates=True (otherwise they raise)
    """

    def __init__(self):
        super().__init__()
        self.openmetrics = False
        self.families = []
        self.exemplars = {}
        self.types = {}
        self.duplicates = {}


def client_parsers():
    """prometheus_client's two parsers, under require()'s policy: missing in
    CI fails, missing elsewhere skips (unittest.SkipTest inside a test, which
    main() reports as SKIPPED and exit 77)."""
    try:
        from prometheus_client import parser as text_parser
        from prometheus_client.openmetrics import parser as om_parser
    except ImportError:
        reason = "no prometheus_client module (Debian package python3-prometheus-client)"
        if in_ci():
            raise AssertionError(f"{reason}; CI is set, and scripts/deps.sh installs it")
        raise unittest.SkipTest(reason)
    return text_parser, om_parser


def _series_id(name, labels):
    """A series' identity as Prometheus ingests it: an empty label value is
    the same as no label (OpenMetrics 1.0, "Label": empty label values SHOULD
    be treated as if the label was not present)."""
    return name, frozenset((k, v) for k, v in labels.items() if v != "")


def _sample_lines(text):
    return [l for l in text.split("\n") if l.strip() and not l.lstrip().startswith("#")]


def parse_exposition(text, openmetrics=None, allow_duplicates=False):
    """Parse an exposition body with prometheus_client's parsers: the
    OpenMetrics 1.0 parser (strict: # EOF, exemplars, histogram rules) when
    openmetrics is true, or, with openmetrics=None, when a line is exactly
    "# EOF"; otherwise its Prometheus text 0.0.4 parser. Returns an
    Exposition (a dict {(name, frozenset(labels.items())): float}).

    Raises AssertionError on anything a scrape would reject or ingest wrongly:
    a parse error; in the text format a sample or label name that is not
    one (what an exemplar or a stray brace turns into with prometheus_client's
    lax text parser); and a series that appears twice. The text format spec
    leaves ingestion of a repeated series undefined ("Each line must have a
    unique combination of metric name and labels"), OpenMetrics forbids it
    ("Every Metric within a MetricFamily MUST have a unique LabelSet"),
    Prometheus drops all but one as "duplicate sample for timestamp", and
    prometheus_client's OpenMetrics parser silently keeps the first: so a
    duplicate is an exporter bug and fails here. Series that differ only by
    a label with an empty value are duplicates (Prometheus ingests them as one
    series). With allow_duplicates=True the first value is kept and every
    value is listed in .duplicates instead."""
    text_parser, om_parser = client_parsers()
    if openmetrics is None:
        openmetrics = any(l == "# EOF" for l in text.split("\n"))
    out = Exposition()
    out.openmetrics = bool(openmetrics)
    kind = "OpenMetrics" if openmetrics else "text"
    try:
        if openmetrics:
            out.families = list(om_parser.text_string_to_metric_families(text))
        else:
            out.families = list(text_parser.text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise AssertionError(f"unparseable {kind} exposition: {e!r}") from None

    renamed = set()
    if not openmetrics:
        # prometheus_client's text parser appends _total to the samples of a
        # counter whose # TYPE name lacks it; report the names as written.
        renamed = {n for n in COUNTER_TYPE_RE.findall(text) if not n.endswith("_total")}

    seen = {}
    nsamples = 0
    for fam in out.families:
        for s in fam.samples:
            nsamples += 1
            name = s.name
            if fam.type == "counter" and name.endswith("_total") and name[:-6] in renamed:
                name = name[:-6]
            if not METRIC_NAME_RE.fullmatch(name):
                raise AssertionError(f"bad metric name {name!r} in the {kind} exposition")
            for k in s.labels:
                if not LABEL_NAME_RE.fullmatch(k):
                    raise AssertionError(f"bad label name {k!r} in {name} (an exemplar or a "
                                         f"stray brace in the {kind} format?)")
            key = (name, frozenset(s.labels.items()))
            value = float(s.value)
            sid = _series_id(name, s.labels)
            if sid in seen:
                first = seen[sid]
                if not allow_duplicates:
                    raise AssertionError(f"duplicate series {name}{dict(s.labels)}: values "
                                         f"{out[first]!r} and {value!r}")
                out.duplicates.setdefault(first, [out[first]]).append(value)
                continue
            seen[sid] = key
            out[key] = value
            out.types[name] = fam.type
            if getattr(s, "exemplar", None) is not None:
                ts = s.exemplar.timestamp
                out.exemplars[key] = Exemplar(dict(s.exemplar.labels), float(s.exemplar.value),
                                              None if ts is None else float(ts))

    lines = _sample_lines(text)
    if openmetrics and len(lines) != nsamples:
        # prometheus_client's OpenMetrics parser drops a repeated series
        # within a MetricPoint group without a word: find it line by line.
        _om_duplicates(om_parser, lines, out, allow_duplicates)
    elif not openmetrics and len(lines) != nsamples:
        raise AssertionError(f"{len(lines)} sample lines but {nsamples} samples parsed")
    return out


def _om_duplicates(om_parser, lines, out, allow_duplicates):
    parse_line = getattr(om_parser, "_parse_sample", None)
    if parse_line is None:
        raise AssertionError("the OpenMetrics parser dropped a sample line (a repeated series)")
    values = {}
    for line in lines:
        s = parse_line(line)
        values.setdefault(_series_id(s.name, s.labels), []).append((s, float(s.value)))
    for sid, got in values.items():
        if len(got) < 2:
            continue
        s = got[0][0]
        if not allow_duplicates:
            raise AssertionError(f"duplicate series {s.name}{dict(s.labels)}: values "
                                 f"{', '.join(repr(v) for _, v in got)}")
        out.duplicates[(s.name, frozenset(s.labels.items()))] = [v for _, v in got]


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
