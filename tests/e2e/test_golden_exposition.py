# SPDX-License-Identifier: Apache-2.0
"""An independent oracle for the golden exposition files.

tests/unit/golden/<case>.prom and <case>.om are what test_render.c compares
the renderer's output with byte for byte, and POH_UPDATE_GOLDEN=1 rewrites
them from the renderer: on their own they only say the output did not
change, not that it is right. Here every golden file is read by parsers
nobody in this project wrote and compared with expectations written by hand
in this file from the inputs of test_render.c's build_* functions (which
values were observed or set, with which labels), never from the renderer:

- prometheus_client's text parser (.prom) and its strict OpenMetrics 1.0
  parser (.om), through pohtest.parse_exposition (which adds: no repeated
  series, valid sample and label names): family names, types and HELP
  text; every sample's name, labels (unescaped) and value, the whole set,
  so a missing or extra series fails; +Inf/-Inf/NaN and the sign of -0;
  histogram buckets in increasing le order with non-decreasing counts, +Inf
  last and equal to _count; in OpenMetrics _sum and _count only where the
  spec allows them; exemplars exactly where expected, within their bucket,
  trace_id/span_id in W3C form, none in the text format.
- promtool check metrics (.prom): Prometheus' own text parser and linter;
  no problem at all, except the three lint findings merge.prom exists to
  carry.
- promtool tsdb create-blocks-from openmetrics, then promtool tsdb dump
  (.om): Prometheus' OpenMetrics parser, the one a scrape uses (promtool
  check metrics only reads the text format), and the samples Prometheus
  stored from each file compared with the same expectations.

tests/unit/golden/README.md says why each odd case in the files is right.
A negative self-test feeds corrupted copies of the golden bodies to the same
check functions and asserts each is rejected."""
import math
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import pohtest

GOLDEN = os.path.join(pohtest.SOURCE, "tests", "unit", "golden")
PROMTOOL = pohtest.which("promtool")

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
FORMATS = ("prom", "om")


def key(name, **labels):
    return (name, frozenset(labels.items()))


def histogram(name, labels, bounds, le_text, le_om, observations, om_sum=True):
    """Expected samples of one histogram series in both formats, from its
    bucket bounds and the values observed. le_text/le_om: the le label of
    each bound as each format must write it (hand-written: Go's %g for the
    text format, OpenMetrics "Canonical Numbers" with .0 for integers).
    om_sum=False: no _sum and _count in OpenMetrics (negative buckets or a
    negative sum; see README.md)."""
    assert len(bounds) == len(le_text) == len(le_om)
    out = {"prom": {}, "om": {}}
    for fmt, les in (("prom", le_text), ("om", le_om)):
        for b, le in zip(bounds, les):
            out[fmt][key(name + "_bucket", le=le, **labels)] = float(
                sum(1 for v in observations if v <= b))
        out[fmt][key(name + "_bucket", le="+Inf", **labels)] = float(len(observations))
        if fmt == "prom" or om_sum:
            total = 0.0
            for v in observations:
                total += v
            out[fmt][key(name + "_sum", **labels)] = total
            out[fmt][key(name + "_count", **labels)] = float(len(observations))
    return out


def merge(*parts):
    out = {"prom": {}, "om": {}}
    for p in parts:
        for fmt in FORMATS:
            out[fmt].update(p[fmt])
    return out


def same(samples):
    return {"prom": dict(samples), "om": dict(samples)}


# ---- expectations, per golden case --------------------------------------------
# families: (name as prometheus_client reports it, type, HELP) per format;
# prometheus_client names a counter family without _total in both formats.

HEALTH = "/grpc.health.v1.Health/Check"
COUNTERS = {
    "families": {f: [("poh_exporter_spans_exported", "counter", "Spans sent to the OTLP collector."),
                     ("poh_requests", "counter", "Probe requests issued.")] for f in FORMATS},
    "samples": same({
        key("poh_exporter_spans_exported_total"): 1e18,
        key("poh_requests_total", group="poh", target="poh-1:50051", method=HEALTH): 42.0,
        # created, never incremented: exposed at 0
        key("poh_requests_total", group="poh", target="poh-2:50051", method=HEALTH): 0.0,
        # 2 + 0.5; the -3 and the NaN added after are refused (a counter only rises)
        key("poh_requests_total", group="presence", target="presence:50052",
            method="/poh.PoH/GetState"): 2.5,
    }),
}

GAUGES = {
    "families": {f: [("poh_mongodb_up", "gauge", "1 if the cluster answered this scrape."),
                     ("poh_test_value", "gauge", "Edge-case values.")] for f in FORMATS},
    "samples": same({
        key("poh_mongodb_up"): 1.0,  # set 5, add -4
        key("poh_test_value", case="zero"): 0.0,
        key("poh_test_value", case="one"): 1.0,
        key("poh_test_value", case="negative"): -1.5,
        key("poh_test_value", case="tenth"): 0.1,
        key("poh_test_value", case="sum_0.1_0.2"): 0.30000000000000004,
        key("poh_test_value", case="third"): 1 / 3,
        key("poh_test_value", case="pinf"): math.inf,
        key("poh_test_value", case="ninf"): -math.inf,
        key("poh_test_value", case="nan"): math.nan,
        key("poh_test_value", case="tiny"): 1e-300,
        key("poh_test_value", case="denormal"): 5e-324,
        key("poh_test_value", case="max"): 1.7976931348623157e308,
        key("poh_test_value", case="huge"): 1e21,
        key("poh_test_value", case="two53"): 9007199254740992.0,
        key("poh_test_value", case="negzero"): -0.0,
        key("poh_test_value", case="1e-4"): 0.0001,
        key("poh_test_value", case="1e-5"): 0.00001,
        key("poh_test_value", case="timestamp"): 1700000000.123,
        key("poh_test_value", case="pi"): 3.141592653589793,
        key("poh_test_value", case="negative_tiny"): -2.5e-10,
    }),
}

LAT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]  # the default buckets
LAT_TEXT = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"]
LAT_OM = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0"]
HISTOGRAMS = {
    "families": {f: [("poh_clock_skew_seconds", "histogram",
                      "Clock skew; negative buckets, so no _sum in OpenMetrics."),
                     ("poh_le_rendering", "histogram", "le rendering."),
                     ("poh_payload_bytes", "histogram", "Payload size."),
                     ("poh_storage_latency_seconds", "histogram",
                      "Document timestamp to commit.")] for f in FORMATS},
    "samples": merge(
        histogram("poh_storage_latency_seconds", {"cluster": "main", "stream": "tx"},
                  LAT, LAT_TEXT, LAT_OM, [0.003, 0.02, 0.02, 0.7, 3, 42, 0.005]),
        # a series never observed: all zero, still exposed
        histogram("poh_storage_latency_seconds", {"cluster": "main", "stream": "approvals"},
                  LAT, LAT_TEXT, LAT_OM, []),
        # one negative observation: counted in every bucket; the sum is -2,
        # so OpenMetrics has no _sum (and then no _count) for this series
        histogram("poh_storage_latency_seconds", {"cluster": "main", "stream": "skewed"},
                  LAT, LAT_TEXT, LAT_OM, [-2], om_sum=False),
        histogram("poh_payload_bytes", {}, [100, 1000, 1e4, 1e5, 1e6, 1e7],
                  ["100", "1000", "10000", "100000", "1e+06", "1e+07"],
                  ["100.0", "1000.0", "10000.0", "100000.0", "1e+06", "1e+07"],
                  [50, 5e5, 2e7]),
        # bounds given with an explicit +Inf, which must not make a second +Inf
        # bucket; negative bounds: no _sum/_count in OpenMetrics
        histogram("poh_clock_skew_seconds", {}, [-1, -0.5, 0, 0.5, 1],
                  ["-1", "-0.5", "0", "0.5", "1"], ["-1.0", "-0.5", "0.0", "0.5", "1.0"],
                  [-0.7, 0.25, 0], om_sum=False),
        # the NaN observation is refused (a NaN sum is not allowed in OpenMetrics)
        histogram("poh_le_rendering", {}, [1e-5, 1e-4, 1e-3, 1, 2.5, 123456, 1e10],
                  ["1e-05", "0.0001", "0.001", "1", "2.5", "123456", "1e+10"],
                  ["1e-05", "0.0001", "0.001", "1.0", "2.5", "123456.0", "1e+10"],
                  [1e-5, 1, 1e300]),
    ),
}

ESCAPING = {
    # the same HELP text in both formats once unescaped (the text format does
    # not escape the double quote in HELP, OpenMetrics does)
    "families": {f: [("poh_escape_multi", "gauge", "Three labels."),
                     ("poh_escape_test", "gauge",
                      'Backslash \\ quote " newline \n end, tab\tkept, unicode é ✓.')]
                 for f in FORMATS},
    "samples": same({
        key("poh_escape_test", value="back\\slash"): 0.0,
        key("poh_escape_test", value='quo"te'): 1.0,
        key("poh_escape_test", value="new\nline"): 2.0,
        key("poh_escape_test", value='all \\ " \n three'): 3.0,
        key("poh_escape_test", value="utf8 ✓ é 日本"): 4.0,
        # "bad \xff\xfe byte": each invalid byte becomes one U+FFFD
        key("poh_escape_test", value="bad \ufffd\ufffd byte"): 5.0,
        # "truncated \xe2\x9c": two bytes of a three-byte sequence, two U+FFFD
        key("poh_escape_test", value="truncated \ufffd\ufffd"): 6.0,
        key("poh_escape_test", value=""): 7.0,
        key("poh_escape_test", value="{braces},=comma # hash"): 8.0,
        key("poh_escape_multi", a="x\\", b='"y"', c=""): 1.0,
    }),
}

EXEMPLARS = {
    "families": {f: [("poh_ack", "counter", "Probes answered OK."),
                     ("poh_grpc_method_latency_seconds", "histogram", "Probe round trip.")]
                 for f in FORMATS},
    "samples": merge(
        same({
            key("poh_ack_total", target="poh-1:50051"): 2.0,
            key("poh_ack_total", target="poh-2:50051"): 3.0,
            # 2 + 2 + 1, each counted though its exemplar was refused
            key("poh_ack_total", target="poh-3:50051"): 5.0,
        }),
        histogram("poh_grpc_method_latency_seconds", {"target": "poh-1:50051"}, [0.01, 0.1, 1],
                  ["0.01", "0.1", "1"], ["0.01", "0.1", "1.0"], [0.005, 0.05, 5, 0.5]),
    ),
    # OpenMetrics only; the text format has no exemplars
    "exemplars": {
        # the second exemplar replaced the first (trace ...0a, 1699999999)
        key("poh_ack_total", target="poh-1:50051"):
            ({"trace_id": TRACE, "span_id": SPAN}, 1.0, 1700000000.123),
        key("poh_grpc_method_latency_seconds_bucket", target="poh-1:50051", le="0.1"):
            ({"trace_id": TRACE}, 0.05, None),
        key("poh_grpc_method_latency_seconds_bucket", target="poh-1:50051", le="+Inf"):
            ({"span_id": SPAN}, 5.0, 1700000001.5),
        # 0.5 with trace "xyz" was counted in le="1.0" without an exemplar
    },
}

MERGE_FAMILIES = [("a_gauge", "gauge", "Only in B."), ("a_without_help", "counter", ""),
                  ("b_gauge", "gauge", "Help from A."), ("c", "counter", "Counter in A."),
                  ("d", "gauge", "Gauge d in A."), ("d", "counter", "Counter d in B."),
                  ("removed_series", "gauge", "One of two removed.")]
MERGE_SAMPLES = {
    key("a_gauge"): 3.0,
    key("a_without_help_total"): 0.001,
    key("b_gauge", x="1"): 1.0,  # A's; B's 99 for the same series is dropped
    key("b_gauge", x="2"): 2.0,
    key("c_total"): 1.0,         # A's counter; B's gauge c_total (5) clashes and is dropped
    key("d"): 4.0,
    key("d_total"): 6.0,         # text only: in OpenMetrics counter d_total is family d
    key("removed_series", x="kept"): 7.0,
    # absent: removed_series{x="gone"}, z_all_removed (all removed), empty_family
}
MERGE = {
    "families": {"prom": MERGE_FAMILIES,
                 "om": [f for f in MERGE_FAMILIES if f[1:] != ("counter", "Counter d in B.")]},
    "samples": {"prom": dict(MERGE_SAMPLES),
                "om": {k: v for k, v in MERGE_SAMPLES.items() if k[0] != "d_total"}},
}

CASES = {"counters": COUNTERS, "gauges": GAUGES, "histograms": HISTOGRAMS, "escaping": ESCAPING,
         "exemplars": EXEMPLARS, "merge": MERGE}

# promtool check metrics findings (text format); merge exists to carry them.
PROMTOOL_LINT = {
    "merge": ["a_gauge metric name should not include type 'gauge'",
              "a_without_help_total no help text",
              "b_gauge metric name should not include type 'gauge'"],
}

HEX = {"trace_id": re.compile(r"[0-9a-f]{32}"), "span_id": re.compile(r"[0-9a-f]{16}")}


def read_golden(case, fmt):
    with open(os.path.join(GOLDEN, f"{case}.{fmt}"), "rb") as f:
        return f.read().decode("utf-8")  # strict: invalid UTF-8 raises


# ---- checks (raise AssertionError) ---------------------------------------------

def fail(msg):
    raise AssertionError(msg)


def same_value(got, want, zero_sign=True):
    if math.isnan(want):
        return math.isnan(got)
    if got != want:
        return False
    return not zero_sign or math.copysign(1, got) == math.copysign(1, want)  # -0 stays -0


def compare_samples(got, want, where, sums_close=True, zero_sign=True):
    """got/want: {(name, frozenset(labels)): value}. _sum values may differ
    in the last bits from the order of additions; every other value exactly,
    the sign of a zero too unless zero_sign is false."""
    missing = "; ".join(sorted(f"{n}{dict(sorted(l))}" for n, l in set(want) - set(got)))
    extra = "; ".join(sorted(f"{n}{dict(sorted(l))}" for n, l in set(got) - set(want)))
    if missing or extra:
        fail(f"{where}: missing [{missing}], unexpected [{extra}]")
    for k, w in want.items():
        g = got[k]
        ok = same_value(g, w, zero_sign)
        if not ok and sums_close and k[0].endswith("_sum"):
            ok = math.isclose(g, w, rel_tol=1e-12)
        if not ok:
            fail(f"{where}: {k[0]}{dict(k[1])} is {g!r}, expected {w!r}")


def check_body_shape(body, fmt, where):
    if "\r" in body:
        fail(f"{where}: carriage return")
    if not body.endswith("\n"):
        fail(f"{where}: the last line does not end with a line feed")
    if fmt == "om" and not body.endswith("\n# EOF\n"):
        fail(f"{where}: does not end with # EOF")
    if fmt == "prom" and "# EOF" in body.split("\n"):
        fail(f"{where}: # EOF in the text format")


def check_histograms(m, fmt, where):
    """Structure of every histogram series, whatever the expectation says:
    le increasing, counts non-decreasing, +Inf last, _count == +Inf, and in
    OpenMetrics _sum/_count only as the spec allows."""
    for fam in m.families:
        if fam.type != "histogram":
            continue
        series = {}
        for s in fam.samples:
            labels = {k: v for k, v in s.labels.items() if k != "le"}
            g = series.setdefault(frozenset(labels.items()), {"buckets": [], "sum": None,
                                                              "count": None})
            if s.name == fam.name + "_bucket":
                g["buckets"].append((s.labels["le"], float(s.value)))
            elif s.name == fam.name + "_sum":
                g["sum"] = float(s.value)
            elif s.name == fam.name + "_count":
                g["count"] = float(s.value)
        for labels, g in series.items():
            w = f"{where}: {fam.name}{dict(labels)}"
            les = [float(le) for le, _ in g["buckets"]]
            counts = [c for _, c in g["buckets"]]
            if not les or les[-1] != math.inf or les.count(math.inf) != 1:
                fail(f"{w}: one +Inf bucket, last, expected; le {[le for le, _ in g['buckets']]}")
            if any(b <= a for a, b in zip(les, les[1:])):
                fail(f"{w}: le not increasing: {les}")
            if any(b < a for a, b in zip(counts, counts[1:])):
                fail(f"{w}: bucket counts decrease: {counts}")
            if any(c != int(c) or c < 0 for c in counts):
                fail(f"{w}: bucket counts not non-negative integers: {counts}")
            if (g["sum"] is None) != (g["count"] is None):
                fail(f"{w}: _sum and _count must come together")
            if g["count"] is not None and g["count"] != counts[-1]:
                fail(f"{w}: _count {g['count']} != +Inf bucket {counts[-1]}")
            if fmt == "prom" and g["count"] is None:
                fail(f"{w}: no _count in the text format")
            if fmt == "om" and g["sum"] is not None and (les[0] < 0 or g["sum"] < 0):
                fail(f"{w}: _sum with negative buckets or a negative sum in OpenMetrics")


def check_exemplars(m, fmt, want, where):
    got = {k: (e.labels, e.value, e.timestamp) for k, e in m.exemplars.items()}
    if fmt == "prom":
        want = {}
    if got != want:
        fail(f"{where}: exemplars {got}, expected {want}")
    for k, (labels, value, ts) in got.items():
        if sum(len(n) + len(v) for n, v in labels.items()) > 128:
            fail(f"{where}: exemplar labels over 128 characters: {labels}")
        for n, v in labels.items():
            if n not in HEX or not HEX[n].fullmatch(v) or not v.strip("0"):
                fail(f"{where}: exemplar label {n}={v!r} is not a W3C trace/span id")
        if ts is not None and not (0 < ts < 1e13):
            fail(f"{where}: exemplar timestamp {ts}")
        if k[0].endswith("_bucket"):
            # within its bucket: (next lower le, le]
            le = float(dict(k[1])["le"])
            rest = {(n, v) for n, v in k[1] if n != "le"}
            lower = [float(dict(o[1])["le"]) for o in m if o[0] == k[0]
                     and {(n, v) for n, v in o[1] if n != "le"} == rest
                     and float(dict(o[1])["le"]) < le]
            lo = max(lower) if lower else -math.inf
            if not lo < value <= le:
                fail(f"{where}: exemplar {value} outside its bucket ({lo}, {le}]")


def check_client(case, fmt, body):
    """prometheus_client's parser of the format against the expectation."""
    where = f"{case}.{fmt} (prometheus_client)"
    want = CASES[case]
    check_body_shape(body, fmt, where)
    m = pohtest.parse_exposition(body, openmetrics=(fmt == "om"))
    fams = [(f.name, f.type, f.documentation) for f in m.families]
    if fams != want["families"][fmt]:
        fail(f"{where}: families {fams}, expected {want['families'][fmt]}")
    # prometheus_client's OpenMetrics parser reads "-0" as the integer 0
    # (int() before float()), so the sign of zero is checked there by
    # Prometheus' parser only (check_promtool), here in the text format.
    compare_samples(m, want["samples"][fmt], where, zero_sign=(fmt == "prom"))
    check_histograms(m, fmt, where)
    check_exemplars(m, fmt, want.get("exemplars", {}), where)
    return m


def run_promtool(args, stdin=None):
    r = subprocess.run([PROMTOOL] + args, input=stdin, capture_output=True, text=True,
                       timeout=120)
    return r.returncode, [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]


def value_end(line):
    """Index just past the sample value of an OpenMetrics sample line (label
    values may hold spaces, braces and " # ")."""
    i, n = 0, len(line)
    while i < n and line[i] not in " {":
        i += 1
    if i < n and line[i] == "{":
        quoted = False
        i += 1
        while i < n:
            c = line[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "}" and not quoted:
                break
            i += 1
        i += 1
    i += 1  # the space before the value
    while i < n and line[i] != " ":
        i += 1
    return i


def with_timestamps(body, ts="1700000000"):
    """promtool's OpenMetrics backfill needs a timestamp on every sample: one
    after each value, before any exemplar."""
    out = []
    for line in body.split("\n"):
        if line and not line.startswith("#"):
            e = value_end(line)
            line = line[:e] + " " + ts + line[e:]
        out.append(line)
    return "\n".join(out)


GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'"}
GO_ESCAPE_RE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"\'])')
DUMP_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def go_unquote(s):
    """The inside of a Go strconv.Quote string (how promtool tsdb dump writes
    label values)."""
    def one(m):
        e = m.group(1)
        return chr(int(e[1:], 16)) if e[0] in "xuU" else GO_ESCAPES[e]
    return GO_ESCAPE_RE.sub(one, s)


def parse_dump(lines):
    """promtool tsdb dump lines: {__name__="x", a="b"} value timestamp_ms."""
    out = {}
    for line in lines:
        brace = line.rindex("} ")
        labels = {n: go_unquote(v) for n, v in DUMP_LABEL_RE.findall(line[1:brace])}
        value, ts = line[brace + 2:].split(" ")
        name = labels.pop("__name__")
        k = (name, frozenset(labels.items()))
        if k in out:
            fail(f"promtool tsdb dump: {k} twice")
        out[k] = (float(value), int(ts))
    return out


def check_promtool(case, fmt, body):
    """Prometheus' own parsers: the text linter, or the OpenMetrics parser
    and the samples it stored."""
    where = f"{case}.{fmt} (promtool)"
    if fmt == "prom":
        rc, problems = run_promtool(["check", "metrics"], body)
        want = PROMTOOL_LINT.get(case, [])
        if sorted(problems) != sorted(want) or rc != (3 if want else 0):
            fail(f"{where}: check metrics rc={rc} {problems}, expected {want}")
        return
    tmp = tempfile.mkdtemp(prefix="poh-golden-")
    try:
        src = os.path.join(tmp, "in.om")
        with open(src, "w", encoding="utf-8") as f:
            f.write(with_timestamps(body))
        db = os.path.join(tmp, "db")
        rc, out = run_promtool(["tsdb", "create-blocks-from", "openmetrics", src, db])
        if rc != 0:
            fail(f"{where}: create-blocks-from openmetrics rc={rc}: {out}")
        os.makedirs(os.path.join(db, "wal"), exist_ok=True)  # dump opens the WAL too
        r = subprocess.run([PROMTOOL, "tsdb", "dump", db], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            fail(f"{where}: tsdb dump rc={r.returncode}: {r.stderr}")
        stored = parse_dump([l for l in r.stdout.splitlines() if l.strip()])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if any(ts != 1700000000000 for _, ts in stored.values()):
        fail(f"{where}: unexpected timestamps in the dump")
    # Prometheus drops a label whose value is empty (OpenMetrics: treated as
    # absent); it stores no exemplars here.
    want = {}
    for (name, labels), v in CASES[case]["samples"]["om"].items():
        want[(name, frozenset((k, x) for k, x in labels if x != ""))] = v
    compare_samples({k: v for k, (v, _) in stored.items()}, want, where)


# ---- tests -----------------------------------------------------------------------------

class GoldenOracleTest(unittest.TestCase):
    def test_every_golden_file_has_an_expectation(self):
        files = sorted(f for f in os.listdir(GOLDEN) if f.endswith((".prom", ".om")))
        self.assertEqual(files, sorted(f"{c}.{x}" for c in CASES for x in FORMATS))

    def test_prometheus_client(self):
        for case in CASES:
            for fmt in FORMATS:
                with self.subTest(f"{case}.{fmt}"):
                    check_client(case, fmt, read_golden(case, fmt))

    def test_promtool(self):
        pohtest.require(PROMTOOL, "no promtool on PATH (Debian package prometheus)", self)
        for case in CASES:
            for fmt in FORMATS:
                with self.subTest(f"{case}.{fmt}"):
                    check_promtool(case, fmt, read_golden(case, fmt))

    def test_both_formats_agree(self):
        """The two files of a case hold the same series, but for what the
        text format writes differently (le) and what OpenMetrics leaves out
        (README.md)."""
        for case in CASES:
            with self.subTest(case):
                t = pohtest.parse_exposition(read_golden(case, "prom"), openmetrics=False)
                o = pohtest.parse_exposition(read_golden(case, "om"), openmetrics=True)

                def canon(m):
                    return {(n, frozenset((k, str(float(v)) if k == "le" else v) for k, v in l))
                            for n, l in m}
                only_om = canon(o) - canon(t)
                self.assertEqual(only_om, set())

    def test_corrupted_copies_are_rejected(self):
        """The same checks on golden bodies with one deliberate error each,
        each rejected for that error."""
        C, P = "client", "promtool"
        bad = [
            # (case, fmt, old, new, {check: what its message must say})
            ("escaping", "prom", "new\\nline", "new\\\\nline",  # wrong escape
             {C: r"missing \[poh_escape_test\{'value': 'new\\nline'\}\]"}),
            ("escaping", "om", 'quo\\"te', "quo'te",  # wrong escape
             {C: r"missing .*quo\"te", P: r"missing .*quo\"te"}),
            ("escaping", "om", "utf8 \u2713", "utf8 \u2714",  # another UTF-8 character
             {C: "missing .*utf8 \u2713", P: "missing .*utf8 \u2713"}),
            ("histograms", "prom", "poh_payload_bytes_count 3", "poh_payload_bytes_count 4",
             {C: r"poh_payload_bytes_count\{\} is 4.0, expected 3.0"}),
            ("histograms", "om", "poh_payload_bytes_count 3", "poh_payload_bytes_count 4",
             {C: "Count does not match", P: r"poh_payload_bytes_count\{\} is 4.0, expected 3.0"}),
            ("histograms", "prom", 'stream="tx",le="0.5"} 4', 'stream="tx",le="0.5"} 1',
             {C: "le': '0.5'.* is 1.0, expected 4.0"}),
            ("histograms", "om", 'poh_clock_skew_seconds_bucket{le="+Inf"} 3\n',
             'poh_clock_skew_seconds_bucket{le="+Inf"} 3\npoh_clock_skew_seconds_sum -0.45\n'
             'poh_clock_skew_seconds_count 3\n', {C: "cannot be negative"}),
            ("gauges", "om", "} NaN", "} 0", {C: "'nan'.* is 0.0, expected nan",
                                              P: "'nan'.* is 0.0, expected nan"}),
            ("gauges", "prom", 'case="negzero"} -0', 'case="negzero"} 0',
             {C: "'negzero'.* is 0.0, expected -0.0"}),
            ("gauges", "prom", 'case="pinf"} +Inf', 'case="pinf"} 1.7976931348623157e+308',
             {C: "'pinf'.* expected inf"}),
            ("exemplars", "om", "} 0.05\n", "} 0.5\n", {C: "exemplars .*0.5"}),
            ("exemplars", "om", ' # {span_id="00f067aa0ba902b7"} 5 1700000001.500', "",
             {C: "exemplars "}),
            ("exemplars", "prom", 'target="poh-1:50051"} 2\n',
             f'target="poh-1:50051"}} 2 # {{trace_id="{TRACE}"}} 1\n',
             {C: "bad label name", P: "parsing error"}),
            ("counters", "om", "# EOF\n", "", {C: "does not end with # EOF", P: "# EOF"}),
            ("merge", "prom", 'b_gauge{x="2"} 2\n', 'b_gauge{x="2"} 2\nb_gauge{x="1"} 99\n',
             {C: "duplicate series b_gauge"}),
            ("merge", "prom", 'removed_series{x="kept"}', 'removed_series{x="ke\\qpt"}',
             {C: "missing .*kept", P: "invalid escape sequence"}),
            ("merge", "om", 'removed_series{x="kept"} 7\n',
             'removed_series{x="kept"} 7\nremoved_series{x="gone"} 8\n',
             {C: "unexpected .*gone", P: "unexpected .*gone"}),
        ]
        for case, fmt, old, new, checks in bad:
            body = read_golden(case, fmt)
            self.assertIn(old, body, (case, fmt, old))
            body = body.replace(old, new, 1)
            for check, why in checks.items():
                if check == P and PROMTOOL is None:
                    continue
                with self.subTest(f"{case}.{fmt}: {old!r} -> {new!r} ({check})"):
                    fn = check_client if check == C else check_promtool
                    with self.assertRaisesRegex(AssertionError, why):
                        fn(case, fmt, body)

    def test_structure_checks_reject(self):
        """The checks that hold whatever the expectation says (histogram
        structure, exemplar placement) reject on their own."""
        def hist(body, fmt):
            check_histograms(pohtest.parse_exposition(body, openmetrics=(fmt == "om")), fmt, "t")

        text = read_golden("histograms", "prom")
        for old, new, why in [
                ("poh_payload_bytes_count 3", "poh_payload_bytes_count 4",
                 r"_count 4.0 != \+Inf bucket 3.0"),
                ('stream="tx",le="0.5"} 4', 'stream="tx",le="0.5"} 1', "counts decrease"),
                ('poh_le_rendering_bucket{le="+Inf"} 3\n', "", "one \\+Inf bucket"),
                ('poh_le_rendering_bucket{le="2.5"} 2\npoh_le_rendering_bucket{le="123456"} 2\n',
                 'poh_le_rendering_bucket{le="123456"} 2\npoh_le_rendering_bucket{le="2.5"} 2\n',
                 "le not increasing"),
                ("poh_payload_bytes_count 3\n", "", "_sum and _count must come together")]:
            with self.subTest(new or old):
                self.assertIn(old, text)
                with self.assertRaisesRegex(AssertionError, why):
                    hist(text.replace(old, new, 1), "prom")

        om = read_golden("exemplars", "om")
        for old, new, why in [
                ("} 0.05\n", "} 0.5\n", "outside its bucket"),
                ('{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.05',
                 '{trace_id="4BF92F3577B34DA6A3CE929D0E0E4736"} 0.05', "not a W3C"),
                ('{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.05',
                 '{trace_id="00000000000000000000000000000000"} 0.05', "not a W3C"),
                ('{span_id="00f067aa0ba902b7"}', '{span_id="00f067aa0ba902"}', "not a W3C")]:
            with self.subTest(new):
                self.assertIn(old, om)
                m = pohtest.parse_exposition(om.replace(old, new, 1), openmetrics=True)
                mine = {k: (e.labels, e.value, e.timestamp) for k, e in m.exemplars.items()}
                with self.assertRaisesRegex(AssertionError, why):
                    check_exemplars(m, "om", mine, "t")


if __name__ == "__main__":
    pohtest.main()
