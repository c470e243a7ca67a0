# SPDX-License-Identifier: Apache-2.0
"""The alert rules in docs/observability: `promtool check rules` is clean,
`promtool test rules` passes, every alert carries summary, description and a
runbook_url whose anchor is a section of runbook.md, and every alert has a
unit test in which it fires. The recording rules likewise: clean, each with
a hand-worked expected value in recording_rules_test.yml."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

import pohtest

PROMTOOL = pohtest.which("promtool")
OBS = os.path.join(pohtest.SOURCE, "docs", "observability")
ALERTS = os.path.join(OBS, "alerts.yml")
ALERTS_TEST = os.path.join(OBS, "alerts_test.yml")
RECORDING = os.path.join(OBS, "recording_rules.yml")
RECORDING_TEST = os.path.join(OBS, "recording_rules_test.yml")
RUNBOOK = os.path.join(OBS, "runbook.md")
RUNBOOK_PREFIX = "file:///usr/share/doc/poh-exporter/observability/runbook.md#"


def github_anchor(heading):
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def load_rules():
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


class AlertRulesTest(unittest.TestCase):
    def promtool(self, *args, cwd=OBS):
        return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd,
                              timeout=120)

    def test_check_rules_clean(self):
        r = self.promtool("check", "rules", ALERTS)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        n = len(load_rules())
        self.assertIn(f"SUCCESS: {n} rules found", out)
        # Clean means no warnings either (e.g. duplicate rules, bad templates).
        self.assertNotRegex(out.lower(), r"warn|error|fail")

    def test_unit_tests_pass(self):
        r = self.promtool("test", "rules", ALERTS_TEST)
        out = r.stdout + r.stderr
        print(out.strip())
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("SUCCESS", out)
        self.assertNotIn("FAILED", out)

    def test_unit_tests_catch_a_broken_rule(self):
        """The unit tests are not vacuous: a copy of the rules with the
        Presence threshold moved fails them."""
        tmp = tempfile.mkdtemp(prefix="poh-alerts-")
        try:
            with open(ALERTS) as f:
                text = f.read()
            self.assertIn("< 0.95", text)
            with open(os.path.join(tmp, "alerts.yml"), "w") as f:
                f.write(text.replace("< 0.95", "< 0.85"))
            shutil.copy(ALERTS_TEST, tmp)
            r = self.promtool("test", "rules", "alerts_test.yml", cwd=tmp)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("PohPresenceSuccessRateLow", r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_annotations_and_runbook_sections(self):
        with open(RUNBOOK) as f:
            anchors = {github_anchor(m.group(1))
                       for m in re.finditer(r"^#{1,6}\s+(.+)$", f.read(), re.M)}
        rules = load_rules()
        self.assertTrue(rules)
        for r in rules:
            self.assertIn("alert", r, f"recording rule in alerts.yml: {r}")
            name = r["alert"]
            ann = r.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                self.assertTrue(ann.get(key, "").strip(), f"{name}: no {key}")
            self.assertIn(r.get("labels", {}).get("severity"), ("warning", "critical"), name)
            url = ann["runbook_url"]
            self.assertTrue(url.startswith(RUNBOOK_PREFIX), f"{name}: {url}")
            anchor = url[len(RUNBOOK_PREFIX):]
            self.assertIn(anchor, anchors, f"{name}: runbook.md has no section #{anchor}")

    def test_required_alerts_present(self):
        names = {r["alert"] for r in load_rules()}
        required = {
            "PohNodeDown", "PohPresenceSuccessRateLow", "PohStorageLatencyHigh",
            "PohApprovalLatencyHigh", "PohReplicationLagHigh", "PohOplogWindowShort",
            "PohChangeStreamStalled", "PohChangeStreamHistoryLost", "PohMongoDBDown",
            "PohExporterCollectorFailing", "PohExporterSpansDropped",
        }
        self.assertEqual(required - names, set())

    def test_first_hour_guide_names_every_alert(self):
        with open(os.path.join(OBS, "first_hour.md")) as f:
            guide = f.read()
        missing = {r["alert"] for r in load_rules()
                   if not re.search(r"\b%s\b" % r["alert"], guide)}
        self.assertEqual(missing, set(), "first_hour.md's alert table misses these")

    def test_every_alert_fires_in_a_unit_test(self):
        with open(ALERTS_TEST) as f:
            doc = yaml.safe_load(f)
        fired, quiet = set(), set()
        for t in doc["tests"]:
            for case in t.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
        names = {r["alert"] for r in load_rules()}
        self.assertEqual(names - fired, set(), "alerts without a firing test")
        self.assertEqual(names - quiet, set(), "alerts without a not-firing test")


class RecordingRulesTest(unittest.TestCase):
    def promtool(self, *args, cwd=OBS):
        return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd,
                              timeout=120)

    def records(self):
        with open(RECORDING) as f:
            doc = yaml.safe_load(f)
        return [r for g in doc["groups"] for r in g["rules"]]

    def test_check_rules_clean(self):
        r = self.promtool("check", "rules", RECORDING)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn(f"SUCCESS: {len(self.records())} rules found", out)
        self.assertNotRegex(out.lower(), r"warn|error|fail")

    def test_every_record_tested(self):
        rules = self.records()
        self.assertTrue(all("record" in r and "alert" not in r for r in rules))
        with open(RECORDING_TEST) as f:
            doc = yaml.safe_load(f)
        tested = {c["expr"] for t in doc["tests"] for c in t.get("promql_expr_test", [])}
        self.assertEqual({r["record"] for r in rules} - tested, set())
        r = self.promtool("test", "rules", RECORDING_TEST)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_unit_tests_catch_a_broken_rule(self):
        """A p99 rule computing p95 fails its test."""
        tmp = tempfile.mkdtemp(prefix="poh-records-")
        try:
            with open(RECORDING) as f:
                text = f.read()
            needle = "histogram_quantile(0.99, sum by (cluster, stream, le) (rate(poh_storage"
            self.assertIn(needle, text)
            with open(os.path.join(tmp, "recording_rules.yml"), "w") as f:
                f.write(text.replace(needle, needle.replace("0.99", "0.95"), 1))
            shutil.copy(RECORDING_TEST, tmp)
            r = self.promtool("test", "rules", "recording_rules_test.yml", cwd=tmp)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("p99_rate5m", r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    pohtest.require(PROMTOOL, "no promtool on PATH (Debian package prometheus)")
    pohtest.main()
