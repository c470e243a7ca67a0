# SPDX-License-Identifier: Apache-2.0
"""promtool (Debian package prometheus) lints /metrics of the real exporter in
both exposition formats, and an independent OpenMetrics parser
(python3-prometheus-client) parses the OpenMetrics output strictly.

promtool 2.42's `check metrics` reads only the text format: on OpenMetrics
input, where a counter's # HELP/# TYPE name has no _total but its samples do
(as the OpenMetrics spec requires), it reports "<name>_total no help text".
That exact message, for a counter whose HELP is present, is the one problem
accepted in OpenMetrics mode; anything else fails."""
import re
import subprocess
import unittest

import pohtest

PROMTOOL = pohtest.which("promtool")


class PromtoolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ex = pohtest.Exporter()

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()

    def promtool(self, text):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        return r.returncode, problems

    def test_text_format(self):
        rc, problems = self.promtool(self.ex.scrape())
        self.assertEqual(problems, [])
        self.assertEqual(rc, 0)

    def test_openmetrics_format(self):
        text = self.ex.scrape(openmetrics=True)
        self.assertTrue(text.endswith("# EOF\n"))
        counters = set(re.findall(r"^# TYPE (\S+) counter$", text, re.M))
        helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
        self.assertTrue(counters)
        _, problems = self.promtool(text)
        for p in problems:
            m = re.fullmatch(r"(\S+)_total no help text", p)
            self.assertTrue(m and m.group(1) in counters and m.group(1) in helped,
                            f"promtool problem: {p}")

    def test_openmetrics_strict_parser(self):
        try:
            from prometheus_client.openmetrics import parser
        except ImportError:
            parser = None
        pohtest.require(parser, "no prometheus_client module (Debian package "
                        "python3-prometheus-client)", self)
        text = self.ex.scrape(openmetrics=True)
        fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
        self.assertEqual(fams["process_cpu_seconds"].type, "counter")
        self.assertEqual(fams["poh_exporter_build_info"].type, "gauge")
        self.assertEqual(fams["poh_exporter_build_info"].samples[0].value, 1.0)


if __name__ == "__main__":
    pohtest.require(PROMTOOL, "no promtool on PATH (Debian package prometheus)")
    pohtest.main()
