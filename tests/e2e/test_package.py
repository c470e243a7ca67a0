# SPDX-License-Identifier: Apache-2.0
"""The Debian package: packaging/build-deb.sh builds it (DEB_BUILD_OPTIONS=nocheck,
so it is quick), its contents and conffiles are right, the binary extracted
with `dpkg -x` into a scratch root runs --version and --config.check on the
extracted /etc/poh_exporter.yml, the systemd unit is hardened and verifies,
lintian reports no error, and the man page documents every flag."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import pohtest

SOURCE = os.path.abspath(pohtest.SOURCE)
BUILD_DEB = os.path.join(SOURCE, "packaging", "build-deb.sh")
MAN = os.path.join(SOURCE, "docs", "poh_exporter.1")
DOC = "usr/share/doc/poh-exporter"
UNIT = "lib/systemd/system/poh-exporter.service"


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        return re.search(r"project\(\s*poh_exporter\s+VERSION\s+([0-9.]+)", f.read()).group(1)


def run(cmd, **kw):
    kw.setdefault("timeout", 120)
    kw.setdefault("text", True)
    return subprocess.run(cmd, capture_output=True, **kw)


def parse_unit(text):
    """{section: [(key, value), ...]} of a systemd unit file."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, [])
            continue
        k, _, v = line.partition("=")
        out[section].append((k.strip(), v.strip()))
    return out


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="poh-pkg-")
        cls.out = os.path.join(cls.tmp, "out")
        env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
        r = run(["bash", BUILD_DEB, cls.out], env=env, timeout=540)
        print(r.stdout.strip())
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f"build-deb.sh failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        debs = [d for d in os.listdir(cls.out)
                if d.startswith("poh-exporter_") and d.endswith(".deb")]
        if len(debs) != 1:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f"expected one poh-exporter .deb, got {os.listdir(cls.out)}")
        cls.deb = os.path.join(cls.out, debs[0])
        cls.root = os.path.join(cls.tmp, "root")
        r = run(["dpkg", "-x", cls.deb, cls.root])
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f"dpkg -x failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def control_file(self, name):
        ctrl = os.path.join(self.tmp, "control")
        if not os.path.isdir(ctrl):
            r = run(["dpkg-deb", "-e", self.deb, ctrl])
            self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(ctrl, name)
        self.assertTrue(os.path.exists(path), f"no {name} in the control archive")
        with open(path) as f:
            return f.read()

    def test_source_tree_untouched(self):
        self.assertFalse(os.path.exists(os.path.join(SOURCE, "debian")),
                         "build-deb.sh must not create debian/ in the source tree")

    def test_version_and_fields(self):
        r = run(["dpkg-deb", "-f", self.deb, "Package", "Version", "Architecture", "Depends"])
        self.assertEqual(r.returncode, 0, r.stderr)
        fields = dict(l.split(": ", 1) for l in r.stdout.strip().splitlines())
        self.assertEqual(fields["Package"], "poh-exporter")
        self.assertEqual(fields["Version"], project_version(),
                         "debian/changelog and CMakeLists.txt disagree on the version")
        self.assertIn("libc6", fields["Depends"])

    def test_contents(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = {}
        for line in r.stdout.splitlines():
            parts = line.split(None, 5)
            entries[parts[5].split(" -> ")[0].lstrip(".")] = (parts[0], parts[1])
        want = {
            "/usr/bin/poh_exporter": "-rwxr-xr-x",
            "/etc/poh_exporter.yml": "-rw-r--r--",
            "/etc/default/poh-exporter": "-rw-r--r--",
            "/" + UNIT: "-rw-r--r--",
            "/usr/share/man/man1/poh_exporter.1.gz": "-rw-r--r--",
            f"/{DOC}/copyright": "-rw-r--r--",
            f"/{DOC}/README.md.gz": "-rw-r--r--",
            f"/{DOC}/observability/grafana_dash.json": "-rw-r--r--",
            f"/{DOC}/observability/alerts.yml": "-rw-r--r--",
            f"/{DOC}/observability/alerts_test.yml": "-rw-r--r--",
        }
        for path, mode in want.items():
            self.assertIn(path, entries, f"{path} missing from the package")
            self.assertEqual(entries[path], (mode, "root/root"), path)
        self.assertTrue(any(p.startswith(f"/{DOC}/observability/runbook.md") for p in entries))
        # Nothing from the build tree leaks in (static library, tests, simulators).
        for p in entries:
            self.assertFalse(p.endswith(".a") or "/tests/" in p or "sim" in os.path.basename(p),
                             f"unexpected file {p}")

    def test_docs_match_source(self):
        for name in ("grafana_dash.json", "alerts.yml", "alerts_test.yml"):
            with open(os.path.join(SOURCE, "docs", "observability", name), "rb") as f:
                src = f.read()
            with open(os.path.join(self.root, DOC, "observability", name), "rb") as f:
                self.assertEqual(f.read(), src, name)

    def test_conffiles(self):
        conffiles = self.control_file("conffiles").split()
        self.assertIn("/etc/poh_exporter.yml", conffiles)
        self.assertIn("/etc/default/poh-exporter", conffiles)

    def test_installed_binary_runs(self):
        exe = os.path.join(self.root, "usr", "bin", "poh_exporter")
        r = run([exe, "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, rf"^poh_exporter, version {re.escape(project_version())} ")
        conf = os.path.join(self.root, "etc", "poh_exporter.yml")
        r = run([exe, f"--config.file={conf}", "--config.check"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)
        # The installed file is the shipped one, byte for byte.
        with open(conf, "rb") as a, open(os.path.join(SOURCE, "etc", "poh_exporter.yml"),
                                         "rb") as b:
            self.assertEqual(a.read(), b.read())
        # And a broken copy of it is refused by the installed binary.
        bad = os.path.join(self.tmp, "bad.yml")
        with open(conf) as f, open(bad, "w") as g:
            g.write(f.read().replace("listen_address:", "listen_adress:", 1))
        r = run([exe, f"--config.file={bad}", "--config.check"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("listen_adress", r.stderr)

    def test_systemd_unit(self):
        with open(os.path.join(self.root, UNIT)) as f:
            text = f.read()
        unit = parse_unit(text)
        svc = {}
        for k, v in unit["Service"]:
            svc.setdefault(k, []).append(v)
        one = {k: v[-1] for k, v in svc.items()}
        self.assertTrue(one.get("DynamicUser") == "yes" or "User" in one)
        self.assertEqual(one["StateDirectory"], "poh_exporter")
        self.assertEqual(one["ProtectSystem"], "strict")
        self.assertEqual(one["ProtectHome"], "yes")
        self.assertEqual(one["NoNewPrivileges"], "yes")
        self.assertEqual(one["CapabilityBoundingSet"], "")
        self.assertEqual(one["PrivateTmp"], "yes")
        self.assertEqual(one["ReadOnlyPaths"], "/etc/poh_exporter.yml")
        self.assertEqual(set(one["RestrictAddressFamilies"].split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        self.assertIn("@system-service", svc["SystemCallFilter"])
        self.assertEqual(one["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(one["Restart"], "on-failure")
        self.assertTrue(one["ExecStart"].startswith(
            "/usr/bin/poh_exporter --config.file=/etc/poh_exporter.yml"))
        self.assertIn(("WantedBy", "multi-user.target"), unit["Install"])
        # The default state_dir is the unit's StateDirectory.
        with open(os.path.join(self.root, "etc", "poh_exporter.yml")) as f:
            self.assertRegex(f.read(), r"(?m)^state_dir: /var/lib/poh_exporter$")

        analyze = pohtest.which("systemd-analyze")
        pohtest.require(analyze, "no systemd-analyze on PATH (Debian package systemd)", self)
        # systemd-analyze checks ExecStart= exists: point it at the extracted binary.
        vdir = os.path.join(self.tmp, "unit")
        os.makedirs(vdir, exist_ok=True)
        vunit = os.path.join(vdir, "poh-exporter.service")
        with open(vunit, "w") as f:
            f.write(text.replace("/usr/bin/poh_exporter",
                                 os.path.join(self.root, "usr", "bin", "poh_exporter")))
        r = run([analyze, "verify", "--man=no", vunit])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "",
                         "systemd-analyze verify reported problems (unknown keys?)")
        r = run([analyze, "security", "--offline=yes", "--no-pager", vunit])
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        self.assertTrue(m, r.stdout + r.stderr)
        print(f"systemd-analyze security: exposure {m.group(1)}")
        self.assertLessEqual(float(m.group(1)), 2.0)

    def test_lintian_no_errors(self):
        lintian = pohtest.which("lintian")
        pohtest.require(lintian, "no lintian on PATH (Debian package lintian)", self)
        r = run([lintian, "--tag-display-limit", "0", self.deb], timeout=300)
        out = r.stdout + r.stderr
        print(out.strip())
        errors = [l for l in out.splitlines() if l.startswith("E: ")]
        self.assertEqual(errors, [])

    def test_man_page_installed_and_complete(self):
        with open(MAN) as f:
            man = f.read()
        flat = man.replace("\\-", "-").replace("\\c", "")
        r = run([os.path.join(self.root, "usr", "bin", "poh_exporter"), "--help"])
        self.assertEqual(r.returncode, 0)
        flags = set(re.findall(r"(--[a-z][a-z.-]*[a-z])", r.stdout))
        self.assertGreaterEqual(len(flags), 8, r.stdout)
        for flag in sorted(flags):
            self.assertIn(flag, flat, f"man page does not document {flag}")
        # Every environment variable the code reads is documented.
        env = set()
        for d, _, files in os.walk(os.path.join(SOURCE, "src")):
            for name in files:
                if name.endswith((".c", ".h")):
                    with open(os.path.join(d, name)) as f:
                        env |= set(re.findall(r'"((?:OTEL|OTLP|PROMETHEUS)_[A-Z_]+)"', f.read()))
        self.assertTrue({"PROMETHEUS_BIND", "OTEL_SERVICE_NAME"} <= env, env)
        for var in sorted(env):
            self.assertIn(var, flat, f"man page does not document ${var}")
        for section in ("SYNOPSIS", "OPTIONS", "SIGNALS", "ENVIRONMENT", "FILES", "EXIT STATUS"):
            self.assertRegex(man, rf"(?m)^\.SH {section}$")
        for sig in ("SIGHUP", "SIGTERM", "SIGINT"):
            self.assertIn(sig, flat)
        groff = pohtest.require(pohtest.which("groff"),
                                "no groff on PATH (Debian package groff-base)", self)
        g = run([groff, "-man", "-Tutf8", "-ww", "-z", MAN])
        self.assertEqual((g.stdout + g.stderr).strip(), "", "groff warnings")


if __name__ == "__main__":
    for tool in ("dpkg-buildpackage", "dpkg-deb", "dh"):
        pohtest.require(pohtest.which(tool), f"no {tool} on PATH (Debian packages dpkg-dev, "
                        "debhelper)")
    pohtest.main()
