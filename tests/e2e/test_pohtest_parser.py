# SPDX-License-Identifier: Apache-2.0
"""pohtest.parse_exposition, the exposition parser every end-to-end test
reads /metrics with, checked against hand-written expectations: exemplars
(OpenMetrics), the three escapes of label values and HELP, UTF-8 label
values (two-, three- and four-byte characters), label values holding the
characters a regex trips on ({ } , = # and " # {"), NaN/+Inf/-Inf, and
repeated series, which fail (allow_duplicates=True keeps the first and lists
them all). The same series written in both formats must parse to the same
samples.

The regex parser this one replaced failed these checks: it decoded label
values with "unicode_escape" (é became Ã©), took everything up to the last
brace of a line as labels (an exemplar's trace_id became a label of the
series and its value the sample's), and kept the last of two repeated
series without a word."""
import math
import unittest

import pohtest

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACE2 = "0af7651916cd43dd8448eb211c80319c"

# Label values as Python strings, unescaped.
UTF8 = "é ✓ 日本 🚀"                 # 2-, 3- and 4-byte UTF-8 sequences
ESCAPES = 'a\\b "q" new\nline'        # backslash, double quote, line feed
AWKWARD = "{braces},=comma # {hash}"  # what a regex splitting on } or " # " trips on

OM_BODY = (
    '# TYPE poh_ack counter\n'
    '# HELP poh_ack Acks with \\"quotes\\", a \\\\ and a\\nline feed; ✓.\n'
    'poh_ack_total{target="poh-1:50051",note="é ✓ 日本 🚀"} 2'
    f' # {{trace_id="{TRACE}",span_id="{SPAN}"}} 1 1700000000.123\n'
    'poh_ack_total{target="poh-2:50051",note="a\\\\b \\"q\\" new\\nline"} 3\n'
    'poh_ack_total{target="poh-3:50051",note="{braces},=comma # {hash}"} 5'
    f' # {{trace_id="{TRACE2}"}} 1\n'
    '# TYPE lat_seconds histogram\n'
    '# HELP lat_seconds Latency.\n'
    f'lat_seconds_bucket{{target="poh-1:50051",le="0.1"}} 1 # {{trace_id="{TRACE}",'
    f'span_id="{SPAN}"}} 0.05 1700000001.5\n'
    'lat_seconds_bucket{target="poh-1:50051",le="1.0"} 2\n'
    'lat_seconds_bucket{target="poh-1:50051",le="+Inf"} 3 # {} 7\n'
    'lat_seconds_sum{target="poh-1:50051"} 7.55\n'
    'lat_seconds_count{target="poh-1:50051"} 3\n'
    '# TYPE edge gauge\n'
    'edge{v="nan"} NaN\n'
    'edge{v="pinf"} +Inf\n'
    'edge{v="ninf"} -Inf\n'
    'edge{v="empty",w=""} -0.5\n'
    'edge 0\n'
    '# EOF\n')

TEXT_BODY = (
    '# HELP poh_ack_total Acks with "quotes", a \\\\ and a\\nline feed; ✓.\n'
    '# TYPE poh_ack_total counter\n'
    'poh_ack_total{target="poh-1:50051",note="é ✓ 日本 🚀"} 2\n'
    'poh_ack_total{target="poh-2:50051",note="a\\\\b \\"q\\" new\\nline"} 3\n'
    'poh_ack_total{target="poh-3:50051",note="{braces},=comma # {hash}"} 5\n'
    '# HELP lat_seconds Latency.\n'
    '# TYPE lat_seconds histogram\n'
    'lat_seconds_bucket{target="poh-1:50051",le="0.1"} 1\n'
    'lat_seconds_bucket{target="poh-1:50051",le="1"} 2\n'
    'lat_seconds_bucket{target="poh-1:50051",le="+Inf"} 3\n'
    'lat_seconds_sum{target="poh-1:50051"} 7.55\n'
    'lat_seconds_count{target="poh-1:50051"} 3\n'
    '# TYPE edge gauge\n'
    'edge{v="nan"} NaN\n'
    'edge{v="pinf"} +Inf\n'
    'edge{v="ninf"} -Inf\n'
    'edge{v="empty",w=""} -0.5\n'
    'edge 0\n')

HELP = 'Acks with "quotes", a \\ and a\nline feed; ✓.'


def k(name, **labels):
    return (name, frozenset(labels.items()))


def expected(le_one):
    """The samples of both bodies; only the le of the 1 bucket is written
    differently (OpenMetrics wants canonical "1.0")."""
    t = "poh-1:50051"
    return {
        k("poh_ack_total", target="poh-1:50051", note=UTF8): 2.0,
        k("poh_ack_total", target="poh-2:50051", note=ESCAPES): 3.0,
        k("poh_ack_total", target="poh-3:50051", note=AWKWARD): 5.0,
        k("lat_seconds_bucket", target=t, le="0.1"): 1.0,
        k("lat_seconds_bucket", target=t, le=le_one): 2.0,
        k("lat_seconds_bucket", target=t, le="+Inf"): 3.0,
        k("lat_seconds_sum", target=t): 7.55,
        k("lat_seconds_count", target=t): 3.0,
        k("edge", v="nan"): math.nan,
        k("edge", v="pinf"): math.inf,
        k("edge", v="ninf"): -math.inf,
        k("edge", v="empty", w=""): -0.5,
        k("edge"): 0.0,
    }


class ParserTest(unittest.TestCase):
    def assertSamples(self, got, want):
        self.assertEqual(set(got), set(want))
        for key, v in want.items():
            g = got[key]
            if math.isnan(v):
                self.assertTrue(math.isnan(g), (key, g))
            else:
                self.assertEqual(g, v, key)
            self.assertIsInstance(g, float)

    def test_openmetrics_body(self):
        m = pohtest.parse_exposition(OM_BODY)
        self.assertTrue(m.openmetrics)  # detected by its # EOF line
        self.assertSamples(m, expected("1.0"))
        self.assertEqual(m.exemplars, {
            k("poh_ack_total", target="poh-1:50051", note=UTF8):
                pohtest.Exemplar({"trace_id": TRACE, "span_id": SPAN}, 1.0, 1700000000.123),
            k("poh_ack_total", target="poh-3:50051", note=AWKWARD):
                pohtest.Exemplar({"trace_id": TRACE2}, 1.0, None),
            k("lat_seconds_bucket", target="poh-1:50051", le="0.1"):
                pohtest.Exemplar({"trace_id": TRACE, "span_id": SPAN}, 0.05, 1700000001.5),
            k("lat_seconds_bucket", target="poh-1:50051", le="+Inf"):
                pohtest.Exemplar({}, 7.0, None),
        })
        self.assertEqual([(f.name, f.type) for f in m.families],
                         [("poh_ack", "counter"), ("lat_seconds", "histogram"), ("edge", "gauge")])
        self.assertEqual(m.families[0].documentation, HELP)
        self.assertEqual(m.types["lat_seconds_bucket"], "histogram")
        self.assertEqual(m.types["poh_ack_total"], "counter")

    def test_text_body(self):
        m = pohtest.parse_exposition(TEXT_BODY)
        self.assertFalse(m.openmetrics)
        self.assertSamples(m, expected("1"))
        self.assertEqual(m.exemplars, {})
        self.assertEqual(m.families[0].documentation, HELP)
        self.assertEqual(m.types["poh_ack_total"], "counter")

    def test_value_and_find(self):
        m = pohtest.parse_exposition(OM_BODY)
        self.assertEqual(pohtest.value(m, "poh_ack_total", target="poh-2:50051", note=ESCAPES), 3)
        self.assertIsNone(pohtest.value(m, "poh_ack_total", target="poh-2:50051"))
        self.assertEqual(set(pohtest.find(m, "poh_ack_total").values()), {2.0, 3.0, 5.0})
        self.assertEqual(list(pohtest.find(m, "poh_ack_total", note=UTF8).values()), [2.0])
        self.assertEqual(len(pohtest.find(m, "lat_seconds_bucket", target="poh-1:50051")), 3)
        self.assertEqual(pohtest.find(m, "lat_seconds_bucket", target="nope"), {})

    def test_duplicates_fail(self):
        bodies = {
            "text": 'a{x="1"} 1\na{x="2"} 5\na{x="1"} 2\n',
            # prometheus_client's OpenMetrics parser alone keeps the first and
            # drops the second without a word (asserted below)
            "OpenMetrics": '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\na{x="2"} 5\n# EOF\n',
            # an empty label value is no label: Prometheus ingests one series
            "empty label": 'a{x="1",y=""} 1\na{x="2"} 5\na{x="1"} 2\n',
        }
        for what, body in bodies.items():
            with self.subTest(what):
                with self.assertRaisesRegex(AssertionError, r"duplicate series a\{.*'x': '1'"):
                    pohtest.parse_exposition(body)
                m = pohtest.parse_exposition(body, allow_duplicates=True)
                self.assertEqual(m.duplicates, {
                    k("a", x="1", **({"y": ""} if what == "empty label" else {})): [1.0, 2.0]})
                self.assertEqual(len(m), 2)
                self.assertEqual(pohtest.value(m, "a", x="2"), 5)
        _, om_parser = pohtest.client_parsers()
        fam, = om_parser.text_string_to_metric_families(bodies["OpenMetrics"])
        self.assertEqual([s.value for s in fam.samples], [1, 5])

    def test_series_differing_in_one_label_are_not_duplicates(self):
        m = pohtest.parse_exposition('a{x="1"} 1\na{x="1",y="z"} 2\na 3\n')
        self.assertEqual(len(m), 3)

    def test_rejects(self):
        bad = {
            # exemplars do not exist in the text format: the lax text parser
            # would take the exemplar for labels and its value for the sample's
            "exemplar in text": (f'# TYPE a_total counter\na_total{{x="1"}} 2 # {{trace_id="{TRACE}"}} 1\n',
                                 None),
            "OpenMetrics without # EOF": ('# TYPE a gauge\na 1\n', True),
            "line after # EOF": ('# TYPE a gauge\na 1\n# EOF\na 2\n', None),
            "exemplar on a gauge": (f'# TYPE a gauge\na 1 # {{trace_id="{TRACE}"}} 1\n# EOF\n', None),
            "_count != +Inf bucket": ('# TYPE h histogram\nh_bucket{le="+Inf"} 3\nh_sum 1\n'
                                      'h_count 2\n# EOF\n', None),
            "buckets decreasing": ('# TYPE h histogram\nh_bucket{le="1.0"} 3\n'
                                   'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n# EOF\n', None),
            "unterminated label value": ('a{x="1} 1\n', None),
            "no value": ('a{x="1"}\n', None),
        }
        for what, (body, om) in bad.items():
            with self.subTest(what):
                with self.assertRaises(AssertionError):
                    pohtest.parse_exposition(body, openmetrics=om)

    def test_counter_named_without_total_in_text(self):
        # prometheus_client renames such samples to foo_total; the names come
        # back as written
        m = pohtest.parse_exposition('# TYPE foo counter\nfoo{a="b"} 4\n')
        self.assertEqual(dict(m), {k("foo", a="b"): 4.0})


if __name__ == "__main__":
    pohtest.main()
