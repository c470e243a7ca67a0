"""promtool (Debian package prometheus) lints /metrics of the real exporter in
both exposition formats with zero problems."""
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

    def check(self, text):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"promtool: {r.stdout}{r.stderr}")
        self.assertEqual(r.stdout.strip() + r.stderr.strip(), "", "promtool reported problems")

    def test_text_format(self):
        self.check(self.ex.scrape())

    def test_openmetrics_format(self):
        text = self.ex.scrape(openmetrics=True)
        self.assertTrue(text.endswith("# EOF\n"))
        self.check(text)


if __name__ == "__main__":
    if not PROMTOOL:
        pohtest.skip("no promtool on PATH (Debian package prometheus)")
    pohtest.main()
