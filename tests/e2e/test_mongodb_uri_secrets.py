# SPDX-License-Identifier: Apache-2.0
"""Secrets in MongoDB URIs (issue 15, item 4): every option libmongoc knows
is walked from its own header (mongoc-uri.h), one exporter per option, and a
value that is a credential never appears on the landing page, in the log or
in a configuration error; every other option's value is still shown (the
redaction hides credentials, not the configuration).

Before, only the password of "user:pass@" was hidden: the
tlsCertificateKeyFilePassword and an AWS_SESSION_TOKEN in
authMechanismProperties were printed on the page and in the info log."""
import os
import re
import subprocess
import tempfile
import unittest

import pohtest
from pohtest import main

HEADER_DIRS = ("/usr/include/libmongoc-1.0/mongoc", "/usr/local/include/libmongoc-1.0/mongoc")
# Credential-bearing options; any option whose name says password, token or
# secret is expected to be hidden as well (see below).
SECRET = {"tlscertificatekeyfilepassword", "sslclientcertificatekeypassword",
          "authmechanismproperties"}


def header_options():
    for d in HEADER_DIRS:
        path = os.path.join(d, "mongoc-uri.h")
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            return sorted(set(re.findall(r'#define\s+MONGOC_URI_\w+\s*\\?\s*"([a-z0-9_]+)"', text)))
    return None


def is_secret(name):
    n = name.lower()
    return n in SECRET or any(w in n for w in ("password", "token", "secret"))


class UriSecretsTest(unittest.TestCase):
    def test_every_libmongoc_option(self):
        opts = header_options()
        self.assertIsNotNone(opts, "mongoc-uri.h not found: libmongoc-dev builds the exporter")
        self.assertGreater(len(opts), 40, opts)
        secrets = [o for o in opts if is_secret(o)]
        # the header's own credential options are all in the list above
        self.assertTrue(SECRET <= set(opts), SECRET - set(opts))
        shown = hidden = 0
        for i, opt in enumerate(opts):
            value = f"AWS_SESSION_TOKEN:S3cr3t{i}x" if opt == "authmechanismproperties" \
                else f"S3cr3t{i}x"
            needle = f"S3cr3t{i}x"
            uri = f"mongodb://monitor:pw{i}zz@127.0.0.1:1/?connectTimeoutMS=100&{opt}={value}"
            with self.subTest(option=opt):
                text = self.exposure(uri)
                self.assertNotIn(f"pw{i}zz", text)
                if is_secret(opt):
                    self.assertNotIn(needle, text)
                    hidden += 1
                elif needle in text:
                    shown += 1
        print(f"  {len(opts)} libmongoc URI options: {hidden} hidden ({', '.join(secrets)}), "
              f"{shown} others shown with their value")
        self.assertEqual(hidden, len(secrets))
        self.assertGreater(shown, 0)

    def exposure(self, uri):
        """Everything the exporter shows of a cluster with this URI: the
        configuration check's output if it refuses it, else its log and its
        landing page."""
        cfg = ("mongodb:\n  - name: main\n"
               f"    uri: \"{uri}\"\n")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "poh_exporter.yml")
            with open(path, "w") as f:
                f.write(cfg)
            p = subprocess.run([pohtest.EXPORTER, f"--config.file={path}", "--config.check"],
                               capture_output=True, text=True, timeout=30)
            if p.returncode != 0:
                return p.stdout + p.stderr
        exp = pohtest.Exporter(cfg)
        try:
            exp.wait_log("cluster main", timeout=5)
            _, _, page = exp.request("/")
            return page.decode() + "\n" + exp.log_text()
        finally:
            exp.stop()


if __name__ == "__main__":
    main()
