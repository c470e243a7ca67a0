# SPDX-License-Identifier: Apache-2.0
"""--web.config.file (issue 15 item 1): TLS, client certificates, basic auth,
headers and a rate limit in prometheus/exporter-toolkit's web-config format.

A CA, server and client certificates are made with openssl at test time
(a second CA signs a client certificate the exporter must refuse); bcrypt
hashes come from python3's crypt module (libxcrypt). Everything runs on
127.0.0.1 with ephemeral ports; every wait is bounded.

* a real Prometheus scrapes over https with tls_config.ca_file and
  basic_auth: up == 1; a job with a wrong password: up == 0, 401;
* basic auth: 401 with WWW-Authenticate: Basic without or with wrong
  credentials, on every path; failures logged without the password, and
  counted by reason;
* plain HTTP to the TLS port is refused; client certificates as Go's
  RequireAndVerifyClientCert, client_allowed_sans; versions and ciphers;
* live reload (file change, SIGHUP, POST /-/reload): new users, a broken
  file keeps the last good one, TLS cannot be turned off by a reload, a new
  certificate is served to new connections;
* an unknown user and a wrong password cost one bcrypt like a right one;
* configured headers on every answer; invalid files refused at start and
  by --config.check; rate_limit answers 429."""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import warnings

import pohtest

OPENSSL = pohtest.which("openssl")
PROMETHEUS = pohtest.which("prometheus")

RELOAD_WAIT = 5.0   # the exporter looks at the files every second
FAST_COST = 4       # bcrypt cost where timing does not matter
TIMED_COST = 10

PKI = None          # the certificates, made once (setUpModule)


# --- bcrypt -----------------------------------------------------------------

def bcrypt_hash(password, cost=FAST_COST):
    """A $2b$ hash from libxcrypt through python3's crypt module (deprecated
    in 3.11, still there in Debian 12), else mkpasswd (package whois)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))
        if h and h.startswith("$2"):
            return h
    except (ImportError, ValueError, OSError):
        pass
    mkpasswd = pohtest.which("mkpasswd")
    if mkpasswd:
        r = subprocess.run([mkpasswd, "-m", "bcrypt", "-R", str(cost), "--stdin"],
                           input=password, capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.startswith("$2"):
            return r.stdout.strip()
    raise AssertionError("cannot make a bcrypt hash: neither python3's crypt module nor "
                         "mkpasswd (package whois) works here")


# --- certificates -------------------------------------------------------------

CA_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[v3]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

LEAF_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[v3]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = {eku}
subjectAltName = {san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class Pki:
    """Two CAs; server certificates for IP:127.0.0.1 (two, different serials);
    a client certificate of each CA, both with SAN DNS:scraper.test."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="poh-webcfg-pki-")
        self._ca("ca", "poh e2e CA")
        self._ca("ca2", "poh e2e other CA")
        self._leaf("server", "ca", 0x1001, "127.0.0.1", "serverAuth", "IP:127.0.0.1")
        self._leaf("server2", "ca", 0x1002, "127.0.0.1", "serverAuth", "IP:127.0.0.1")
        self._leaf("client", "ca", 0x2001, "scraper", "clientAuth", "DNS:scraper.test")
        self._leaf("other_client", "ca2", 0x3001, "scraper", "clientAuth", "DNS:scraper.test")

    def _run(self, *args):
        r = subprocess.run([OPENSSL, *args], cwd=self.dir, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def _ca(self, name, cn):
        self._write(f"{name}.cnf", CA_CNF.format(cn=cn))
        self._run("req", "-x509", "-config", f"{name}.cnf", "-extensions", "v3",
                  "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "3")

    def _leaf(self, name, ca, serial, cn, eku, san):
        self._write(f"{name}.cnf", LEAF_CNF.format(cn=cn, eku=eku, san=san))
        self._run("req", "-new", "-config", f"{name}.cnf", "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", f"{name}.key", "-out", f"{name}.csr")
        self._run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
                  "-CAkey", f"{ca}.key", "-set_serial", str(serial), "-days", "3",
                  "-extfile", f"{name}.cnf", "-extensions", "v3", "-out", f"{name}.crt")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def der(self, name):
        return ssl.PEM_cert_to_DER_cert(self.read(f"{name}.crt"))

    def copy_to(self, dest_dir, name, as_name=None):
        """name.crt and name.key into dest_dir as as_name.crt/.key, each
        replaced at once (rename), so the exporter never reads half a file."""
        for ext in ("key", "crt"):
            tmp = os.path.join(dest_dir, f".{as_name or name}.{ext}.tmp")
            shutil.copyfile(self.path(f"{name}.{ext}"), tmp)
            os.replace(tmp, os.path.join(dest_dir, f"{as_name or name}.{ext}"))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global PKI
    PKI = Pki()


def tearDownModule():
    if PKI:
        PKI.cleanup()


# --- web config files -----------------------------------------------------------

def web_yaml(tls=None, users=None, headers=None, rate=None):
    """A web-config file; strings are JSON-quoted (valid YAML)."""
    out = []
    if tls is not None:
        out.append("tls_server_config:")
        for k, v in tls.items():
            out.append(f"  {k}: {json.dumps(v)}")
    if headers is not None:
        out.append("http_server_config:\n  headers:")
        out += [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in headers.items()]
    if users is not None:
        out.append("basic_auth_users:")
        out += [f"  {json.dumps(u)}: {json.dumps(h)}" for u, h in users.items()]
    if rate is not None:
        out.append("rate_limit:")
        out += [f"  {k}: {v}" for k, v in rate.items()]
    return "\n".join(out) + "\n"


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


SERVER_TLS = {"cert_file": "server.crt", "key_file": "server.key"}  # relative: the file's dir


class Site:
    """A directory holding web.yml and the server's key and certificate (under
    relative names, so they resolve against web.yml's directory)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="poh-webcfg-")
        self.web = os.path.join(self.dir, "web.yml")
        PKI.copy_to(self.dir, "server")

    def write(self, text):
        write_atomic(self.web, text)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# --- HTTP(S) clients -------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, der, cipher, version):
        self.status, self.headers, self.body = status, headers, body
        # TLS: the server's certificate (DER), cipher name, negotiated version
        self.der, self.cipher, self.version = der, cipher, version


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client_ctx(cert=None, max_version=None):
    """Trusts the test CA; cert: a client certificate name of PKI."""
    ctx = ssl.create_default_context(cafile=PKI.path("ca.crt"))
    if cert:
        ctx.load_cert_chain(PKI.path(f"{cert}.crt"), PKI.path(f"{cert}.key"))
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def get(port, path="/metrics", auth=None, ctx=None, method="GET", headers=None, timeout=10):
    """One request on a new connection, TLS when ctx is given. Raises OSError
    or http.client.HTTPException when the connection is refused or cut."""
    if ctx is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.connect()
        der = cipher = version = None
        if ctx is not None:
            der = conn.sock.getpeercert(binary_form=True)
            cipher, version = conn.sock.cipher()[0], conn.sock.version()
        h = dict(headers or {})
        if auth:
            h["Authorization"] = basic(*auth)
        conn.request(method, path, headers=h)
        r = conn.getresponse()
        body = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, body, der, cipher,
                    version)
    finally:
        conn.close()


def refused(port, **kw):
    """The exception of a request that must fail; None when it got an answer
    (any status: the connection was not refused)."""
    try:
        get(port, **kw)
    except (OSError, http.client.HTTPException) as e:
        print(f"  refused as expected: {e!r}")
        return e
    return None


def metrics(port, auth=None, ctx=None):
    r = get(port, "/metrics", auth=auth, ctx=ctx)
    if r.status != 200:
        raise AssertionError(f"/metrics answered {r.status}: {r.body[:200]!r}")
    return pohtest.parse_exposition(r.body.decode())


def gauge(port, name, auth=None, ctx=None, **labels):
    return pohtest.value(metrics(port, auth, ctx), name, **labels)


RELOAD_OK = "poh_exporter_web_config_last_reload_successful"
RELOAD_TS = "poh_exporter_web_config_last_reload_success_timestamp_seconds"
AUTH_FAILURES = "poh_exporter_web_auth_failures_total"


def start(web_path, *args, config_text=None, config_path=None):
    """The exporter with --web.config.file=web_path (None: none)."""
    flags = [f"--web.config.file={web_path}"] if web_path else []
    return pohtest.Exporter(config_text, args=flags + list(args), config_path=config_path)


def run_exporter(*args, timeout=20):
    """The binary to completion (a start that must fail, or --config.check):
    (returncode, stdout, stderr). A process still running after timeout is
    killed and reported as returncode None."""
    p = subprocess.Popen([pohtest.EXPORTER, "--web.listen-address=127.0.0.1:0", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        return None, out, err


# --- the tests --------------------------------------------------------------------

class PrometheusScrapeTest(unittest.TestCase):
    """a. A real Prometheus over https with basic auth."""

    def test_prometheus_scrapes_over_tls_with_basic_auth(self):
        pohtest.require(PROMETHEUS, "no prometheus on PATH (Debian package prometheus)", self)
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=SERVER_TLS, users={"prom": bcrypt_hash("s3cret-prom")}))
        with start(site.web) as ex:
            port = pohtest.free_port()
            job = ("  - job_name: {name}\n    scheme: https\n"
                   "    tls_config: {{ca_file: {ca}}}\n"
                   "    basic_auth: {{username: prom, password: {pw}}}\n"
                   "    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
            cfg = os.path.join(site.dir, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                        "scrape_configs:\n" +
                        job.format(name="poh_tls", ca=json.dumps(PKI.path("ca.crt")),
                                   pw="s3cret-prom", port=ex.port) +
                        job.format(name="poh_badpw", ca=json.dumps(PKI.path("ca.crt")),
                                   pw="not-the-password", port=ex.port))
            proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                                     f"--storage.tsdb.path={os.path.join(site.dir, 'data')}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            try:
                def targets():
                    try:
                        with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as r:
                            d = json.load(r)
                    except OSError:
                        return None
                    return {t["labels"]["job"]: t for t in d["data"]["activeTargets"]}

                def scraped():
                    t = targets()
                    return t if t and len(t) == 2 and all(
                        x["health"] != "unknown" for x in t.values()) and \
                        t["poh_tls"]["health"] == "up" else None
                t = pohtest.wait_until(scraped, timeout=60, interval=0.5)
                self.assertTrue(t, f"Prometheus never scraped the exporter over https: "
                                   f"{targets()}")
                self.assertEqual(t["poh_tls"]["lastError"], "")
                self.assertEqual(t["poh_badpw"]["health"], "down")
                self.assertIn("401", t["poh_badpw"]["lastError"])

                def up(job):
                    url = f"{base}/api/v1/query?" + urllib.parse.urlencode(
                        {"query": f'up{{job="{job}"}}'})
                    try:
                        with urllib.request.urlopen(url, timeout=5) as r:
                            res = json.load(r)["data"]["result"]
                    except OSError:
                        return None
                    return res[0]["value"][1] if res else None
                self.assertEqual(pohtest.wait_until(lambda: up("poh_tls") == "1", timeout=30,
                                                    interval=0.5) and up("poh_tls"), "1")
                self.assertEqual(pohtest.wait_until(lambda: up("poh_badpw") == "0", timeout=30,
                                                    interval=0.5) and up("poh_badpw"), "0")
            finally:
                proc.terminate()
                proc.wait(20)
            self.assertNotIn("not-the-password", ex.log_text())
            self.assertNotIn("s3cret-prom", ex.log_text())


class BasicAuthTest(unittest.TestCase):
    """b. 401 without or with wrong credentials; logged without passwords; counted."""

    def test_basic_auth(self):
        site = Site()
        self.addCleanup(site.cleanup)
        right, wrong, wrong2, stranger_pw = ("Right-Pa55", "Wr0ng-Pass", "Wr0ng-Again",
                                             "Str4nger-Pass")
        site.write(web_yaml(tls=SERVER_TLS, users={"alice": bcrypt_hash(right),
                                                   "bob": bcrypt_hash("B0b-Pass")}))
        ctx = client_ctx()
        with start(site.web) as ex:
            none = 0
            for path in ("/metrics", "/", "/-/healthy", "/nope"):
                r = get(ex.port, path, ctx=ctx)
                none += 1
                self.assertEqual(r.status, 401, f"{path} without credentials")
                self.assertTrue(r.headers.get("www-authenticate", "").startswith("Basic"),
                                f"{path}: WWW-Authenticate {r.headers.get('www-authenticate')!r}")
                self.assertEqual(r.body, b"Unauthorized\n")
            r = get(ex.port, ctx=ctx, auth=("alice", wrong))
            self.assertEqual(r.status, 401, "wrong password")
            self.assertTrue(r.headers.get("www-authenticate", "").startswith("Basic"))
            self.assertEqual(get(ex.port, ctx=ctx, auth=("alice", wrong2)).status, 401)
            self.assertEqual(get(ex.port, ctx=ctx, auth=("mallory", stranger_pw)).status, 401,
                             "unknown user")
            self.assertEqual(get(ex.port, ctx=ctx, auth=("bob", right)).status, 401,
                             "another user's password")
            bad = 4
            r = get(ex.port, ctx=ctx, headers={"Authorization": "Bearer abc"})
            self.assertEqual(r.status, 401, "not Basic")
            none += 1
            r = get(ex.port, ctx=ctx, auth=("alice", right))
            self.assertEqual(r.status, 200)
            self.assertIn(b"poh_exporter_build_info", r.body)
            self.assertEqual(get(ex.port, "/-/healthy", ctx=ctx, auth=("alice", right)).status,
                             200)
            m = metrics(ex.port, ("alice", right), ctx)
            self.assertEqual(pohtest.value(m, AUTH_FAILURES, reason="no_credentials"), none)
            self.assertEqual(pohtest.value(m, AUTH_FAILURES, reason="bad_credentials"), bad)

            self.assertTrue(ex.wait_log(r"authentication failed", 5),
                            "no 'authentication failed' line in the log")
            failed = [l for l in ex.log_lines if "authentication failed" in l]
            self.assertTrue(any("level=warn" in l for l in failed), failed)
            self.assertTrue(any("alice" in l and "127.0.0.1" in l for l in failed),
                            f"user and client not in the first failure line: {failed}")
            # Throttled: at most one line a second, then a count of the others.
            t0 = time.monotonic()
            for _ in range(10):
                self.assertEqual(get(ex.port, ctx=ctx, auth=("alice", wrong)).status, 401)
            time.sleep(1.2)
            self.assertEqual(get(ex.port, ctx=ctx, auth=("alice", wrong2)).status, 401)
            took = time.monotonic() - t0
            time.sleep(0.2)
            failed = [l for l in ex.log_lines if "authentication failed" in l]
            print(f"  {bad + 11} failed logins, {len(failed)} log lines:\n    " +
                  "\n    ".join(failed))
            self.assertLessEqual(len(failed), 2 + int(took) + 1,
                                 "more than one 'authentication failed' line per second")
            counts = []
            for line in failed:
                for a, b in re.findall(
                        r"suppressed\D{0,3}(\d+)|(\d+) (?:more|suppressed|other)", line):
                    counts.append(int(a or b))
            self.assertTrue(any(c >= 1 for c in counts),
                            f"no count of suppressed failures in {failed}")
            log = ex.log_text()
            for pw in (right, wrong, wrong2, stranger_pw, "B0b-Pass"):
                self.assertNotIn(pw, log, "a password is in the log")
                self.assertNotIn(base64.b64encode(f"alice:{pw}".encode()).decode(), log)


class PlainHttpOnTlsPortTest(unittest.TestCase):
    """c. Plain HTTP to the TLS port gets no HTTP answer; the connection closes."""

    def test_plain_http_refused(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=SERVER_TLS))
        with start(site.web) as ex:
            with socket.create_connection(("127.0.0.1", ex.port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                data, closed = b"", False
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    try:
                        chunk = s.recv(4096)
                    except socket.timeout:
                        break
                    except OSError:
                        closed = True
                        break
                    if not chunk:
                        closed = True
                        break
                    data += chunk
            self.assertFalse(data.startswith(b"HTTP/"), f"plain HTTP answered: {data[:80]!r}")
            self.assertTrue(closed, "the plain HTTP connection was left open for 5 s")
            e = refused(ex.port)  # http.client over plain HTTP
            self.assertIsNotNone(e, "plain HTTP got an answer")
            # and TLS on the same port works
            self.assertEqual(get(ex.port, "/-/healthy", ctx=client_ctx()).status, 200)


class ClientCertTest(unittest.TestCase):
    """d. client_auth_type RequireAndVerifyClientCert, client_ca_file, client_allowed_sans."""

    def start_mtls(self, site, sans=None):
        tls = dict(SERVER_TLS, client_auth_type="RequireAndVerifyClientCert",
                   client_ca_file=PKI.path("ca.crt"))
        if sans is not None:
            tls["client_allowed_sans"] = sans
        site.write(web_yaml(tls=tls))
        return start(site.web)

    def test_require_and_verify(self):
        site = Site()
        self.addCleanup(site.cleanup)
        with self.start_mtls(site) as ex:
            self.assertEqual(get(ex.port, ctx=client_ctx("client")).status, 200,
                             "a client certificate of client_ca_file")
            self.assertIsNotNone(refused(ex.port, ctx=client_ctx()),
                                 "no client certificate was accepted")
            self.assertIsNotNone(refused(ex.port, ctx=client_ctx("other_client")),
                                 "a client certificate of another CA was accepted")
            self.assertEqual(get(ex.port, ctx=client_ctx("client")).status, 200,
                             "refused connections broke the listener")

    def test_allowed_sans(self):
        site = Site()
        self.addCleanup(site.cleanup)
        with self.start_mtls(site, sans=["scraper.test"]) as ex:
            self.assertEqual(get(ex.port, ctx=client_ctx("client")).status, 200,
                             "client_allowed_sans [scraper.test]")
            self.assertIsNotNone(refused(ex.port, ctx=client_ctx("other_client")),
                                 "another CA's certificate with the allowed SAN passed")
        with self.start_mtls(site, sans=["other.test"]) as ex:
            self.assertIsNotNone(refused(ex.port, ctx=client_ctx("client")),
                                 "client_allowed_sans [other.test] let scraper.test in")


class TlsSettingsTest(unittest.TestCase):
    """min_version, cipher_suites (Go names) as GnuTLS priorities."""

    def test_min_version_tls13(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=dict(SERVER_TLS, min_version="TLS13")))
        with start(site.web) as ex:
            self.assertIsNotNone(refused(ex.port, ctx=client_ctx(
                max_version=ssl.TLSVersion.TLSv1_2)), "a TLS 1.2 client passed min_version TLS13")
            self.assertEqual(get(ex.port, ctx=client_ctx()).status, 200)

    def test_cipher_suite(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=dict(SERVER_TLS, max_version="TLS12")) +
                   "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n")
        with start(site.web) as ex:
            r = get(ex.port, ctx=client_ctx())
            self.assertEqual(r.status, 200)
            self.assertEqual((r.cipher, r.version), ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLSv1.2"))
            ctx = client_ctx(max_version=ssl.TLSVersion.TLSv1_2)
            ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
            self.assertIsNotNone(refused(ex.port, ctx=ctx), "a suite not listed was accepted")

    def test_cipher_suites_leave_tls13_alone(self):
        """As in Go, cipher_suites applies to TLS 1.0-1.2 only: a TLS 1.3 client
        still connects with TLS 1.3 when the list names only a CBC suite."""
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=SERVER_TLS) +
                   "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]\n")
        with start(site.web) as ex:
            ctx = client_ctx(max_version=ssl.TLSVersion.TLSv1_2)
            ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
            r = get(ex.port, ctx=ctx)
            self.assertEqual((r.cipher, r.version), ("ECDHE-ECDSA-AES128-SHA", "TLSv1.2"))
            e = refused(ex.port, ctx=client_ctx())
            self.assertIsNone(e, f"a TLS 1.3 client was refused ({e!r}): cipher_suites "
                                 "removed the TLS 1.3 suites, which Go leaves alone")
            self.assertEqual(get(ex.port, ctx=client_ctx()).version, "TLSv1.3")


class ReloadTest(unittest.TestCase):
    """e. The file and the PEM files it names are re-read when they change,
    on SIGHUP and on POST /-/reload."""

    def test_reload(self):
        site = Site()
        self.addCleanup(site.cleanup)
        old, new = "Old-Pa55word", "New-Pa55word"
        # web.config_file in the main config, relative to its directory
        main = os.path.join(site.dir, "poh_exporter.yml")
        with open(main, "w") as f:
            f.write("web:\n  enable_reload: true\n  config_file: web.yml\n")
        site.write(web_yaml(tls=SERVER_TLS, users={"alice": bcrypt_hash(old)}))
        ctx = client_ctx()
        with pohtest.Exporter(config_path=main) as ex:
            port = ex.port

            def status(pw):
                try:
                    return get(port, "/-/healthy", ctx=ctx, auth=("alice", pw)).status
                except (OSError, http.client.HTTPException) as e:
                    return repr(e)

            def reload_gauges(pw):
                m = metrics(port, ("alice", pw), ctx)
                return pohtest.value(m, RELOAD_OK), pohtest.value(m, RELOAD_TS)

            self.assertEqual(status(old), 200)
            ok, ts0 = reload_gauges(old)
            self.assertEqual(ok, 1)
            self.assertGreater(ts0, time.time() - 120)

            # 1. a new password
            site.write(web_yaml(tls=SERVER_TLS, users={"alice": bcrypt_hash(new)}))
            t0 = time.monotonic()
            self.assertTrue(pohtest.wait_until(lambda: status(new) == 200, RELOAD_WAIT, 0.1),
                            f"the new password did not work within {RELOAD_WAIT}s")
            print(f"  new password in force after {time.monotonic() - t0:.2f}s")
            self.assertEqual(status(old), 401, "the old password still works")
            self.assertEqual(ex.port, port)
            self.assertIsNone(ex.proc.poll(), "the exporter exited")
            ok, ts1 = reload_gauges(new)
            self.assertEqual(ok, 1)
            self.assertGreater(ts1, ts0)

            # 2. a broken file: logged, the last good one stays, gauge 0
            n_err = len(ex.log_lines)
            with open(site.web, "w") as f:
                f.write("basic_auth_users:\n  alice: [\n")
            self.assertTrue(pohtest.wait_until(
                lambda: any("web config" in l and "level=error" in l
                            for l in ex.log_lines[n_err:]), RELOAD_WAIT, 0.1),
                "no error about the web config in the log:\n" +
                "\n".join(ex.log_lines[n_err:]))
            self.assertEqual(status(new), 200, "the broken file replaced the last good one")
            self.assertEqual(status(old), 401)
            self.assertEqual(reload_gauges(new)[0], 0)

            # 3. turning TLS off takes a restart: refused, TLS stays
            n_err = len(ex.log_lines)
            site.write(web_yaml(users={"alice": bcrypt_hash(old)}))
            self.assertTrue(pohtest.wait_until(
                lambda: any("web config" in l and "level=error" in l
                            for l in ex.log_lines[n_err:]), RELOAD_WAIT, 0.1),
                "turning TLS off by a reload was not refused with an error")
            self.assertEqual(status(new), 200)
            self.assertIsNotNone(refused(port, path="/-/healthy", auth=("alice", new)),
                                 "plain HTTP answered after TLS off was refused")
            self.assertEqual(reload_gauges(new)[0], 0)

            # 4. good again
            site.write(web_yaml(tls=SERVER_TLS, users={"alice": bcrypt_hash(new)}))
            self.assertTrue(pohtest.wait_until(lambda: reload_gauges(new)[0] == 1,
                                               RELOAD_WAIT, 0.1), "gauge not back to 1")

            # 5. a new certificate and key, same file names: new connections see it
            self.assertEqual(get(port, "/-/healthy", ctx=ctx, auth=("alice", new)).der,
                             PKI.der("server"))
            PKI.copy_to(site.dir, "server2", as_name="server")
            t0 = time.monotonic()
            self.assertTrue(pohtest.wait_until(
                lambda: get(port, "/-/healthy", ctx=ctx, auth=("alice", new)).der ==
                PKI.der("server2"), RELOAD_WAIT, 0.1),
                f"the new certificate was not served within {RELOAD_WAIT}s")
            print(f"  new certificate served after {time.monotonic() - t0:.2f}s")
            ok, ts2 = reload_gauges(new)
            self.assertEqual(ok, 1)

            # 6. SIGHUP re-reads though nothing changed
            time.sleep(0.05)
            ex.proc.send_signal(signal.SIGHUP)
            self.assertTrue(pohtest.wait_until(lambda: reload_gauges(new)[1] > ts2,
                                               RELOAD_WAIT, 0.1),
                            "SIGHUP did not reload the web config")
            self.assertEqual(reload_gauges(new)[0], 1)

            # 7. POST /-/reload too (it needs the credentials, as every path)
            ts3 = reload_gauges(new)[1]
            time.sleep(0.05)
            self.assertEqual(get(port, "/-/reload", ctx=ctx, method="POST").status, 401)
            r = get(port, "/-/reload", ctx=ctx, method="POST", auth=("alice", new))
            self.assertEqual(r.status, 200, r.body)
            self.assertGreater(reload_gauges(new)[1], ts3, "POST /-/reload did not reload it")
            self.assertEqual(ex.port, port)
            self.assertIsNone(ex.proc.poll())
            for pw in (old, new):
                self.assertNotIn(pw, ex.log_text())


class TimingTest(unittest.TestCase):
    """f. A wrong password and an unknown user cost one bcrypt, as a right
    password the first time; a right password the second time costs none."""

    def test_same_cost(self):
        site = Site()
        self.addCleanup(site.cleanup)
        n = 5
        pws = {f"user{i}": f"Right-{i}-pw" for i in range(n)}
        site.write(web_yaml(users={u: bcrypt_hash(p, TIMED_COST) for u, p in pws.items()}))
        with start(site.web) as ex:
            get(ex.port, "/-/healthy")  # warm up (401)

            def timed(user, pw, want):
                t0 = time.perf_counter()
                st = get(ex.port, "/-/healthy", auth=(user, pw)).status
                dt = time.perf_counter() - t0
                self.assertEqual(st, want, f"{user}")
                return dt

            right = [timed(u, p, 200) for u, p in pws.items()]
            cached = [timed(u, p, 200) for u, p in pws.items()]
            wrong = [timed(u, f"wrong-{i}", 401) for i, u in enumerate(pws)]
            unknown = [timed(f"nobody{i}", f"pw-{i}", 401) for i in range(n)]
            med = {k: statistics.median(v) for k, v in
                   (("right", right), ("cached", cached), ("wrong", wrong),
                    ("unknown", unknown))}
            print("  medians (ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in med.items()))
            self.assertGreater(med["right"], 0.005, "a cost-10 bcrypt took under 5 ms?")
            self.assertGreaterEqual(med["wrong"], 0.3 * med["right"],
                                    "a wrong password is answered much faster than a right one")
            self.assertGreaterEqual(med["unknown"], 0.3 * med["right"],
                                    "an unknown user is answered much faster than a known one")
            self.assertLess(med["cached"], 0.5 * med["right"],
                            "a right password is not cached (bcrypt on every request)")


class HeadersTest(unittest.TestCase):
    """g. http_server_config.headers on every answer; others refused."""

    def test_configured_headers(self):
        site = Site()
        self.addCleanup(site.cleanup)
        hsts = "max-age=31536000; includeSubDomains"
        site.write(web_yaml(tls=SERVER_TLS, users={"alice": bcrypt_hash("pw-alice")},
                            headers={"X-Frame-Options": "deny",
                                     "Strict-Transport-Security": hsts}))
        ctx = client_ctx()
        with start(site.web) as ex:
            for path, auth, want in (("/metrics", ("alice", "pw-alice"), 200),
                                     ("/", ("alice", "pw-alice"), 200),
                                     ("/nope", ("alice", "pw-alice"), 404),
                                     ("/metrics", None, 401)):
                with self.subTest(path=path, status=want):
                    r = get(ex.port, path, ctx=ctx, auth=auth)
                    self.assertEqual(r.status, want)
                    self.assertEqual(r.headers.get("x-frame-options"), "deny")
                    self.assertEqual(r.headers.get("strict-transport-security"), hsts)
                    self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")

    def test_other_header_refused(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(headers={"X-Foo": "bar"}))
        rc, _, err = run_exporter(f"--web.config.file={site.web}")
        self.assertEqual(rc, 1, err)
        self.assertIn("X-Foo", err)


class InvalidFileTest(unittest.TestCase):
    """h. Refused at start (exit 1, a clear message) and by --config.check."""

    def check_refused(self, text, *want, absent=()):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(text)
        rc, _, err = run_exporter(f"--web.config.file={site.web}")
        self.assertEqual(rc, 1, f"start with {text!r}:\n{err}")
        for w in want:
            self.assertRegex(err, w)
        for a in absent:
            self.assertNotIn(a, err)
        rc, out, err2 = run_exporter(f"--web.config.file={site.web}", "--config.check")
        self.assertEqual(rc, 1, f"--config.check of {text!r}:\n{out}{err2}")
        self.assertIn("FAILED", out + err2)
        for w in want:
            self.assertRegex(err2, w)
        for a in absent:
            self.assertNotIn(a, out + err2)
        return err

    def test_unknown_key(self):
        err = self.check_refused("tls_server_config:\n  cert_file: server.crt\n"
                                 "  key_file: server.key\n  cert_fil: x\n",
                                 r"web\.yml:4:3:", "cert_fil")
        print(f"  {err.strip().splitlines()[-1]}")

    def test_unknown_top_level_key(self):
        self.check_refused("basic_auth_user:\n  alice: x\n", r"web\.yml:1:1:", "basic_auth_user")

    def test_cert_without_key(self):
        self.check_refused(web_yaml(tls={"cert_file": "server.crt"}), r"key_file")

    def test_client_ca_without_policy(self):
        self.check_refused(web_yaml(tls=dict(SERVER_TLS, client_ca_file=PKI.path("ca.crt"))),
                           r"(?i)client ca.*without a client auth policy")

    def test_bad_bcrypt_hash(self):
        for bad in ("plain-text-Secret-1", "$2y$10$thisIsNotAValidBcryptHashAtAllButLooksLikeOne"):
            with self.subTest(hash=bad):
                self.check_refused(web_yaml(users={"alice": bad}), r"alice", r"bcrypt",
                                   absent=(bad, bad[7:]))

    def test_min_version(self):
        self.check_refused(web_yaml(tls=dict(SERVER_TLS, min_version="TLS14")),
                           r"min_version", r"TLS14")

    def test_missing_cert_file(self):
        self.check_refused(web_yaml(tls={"cert_file": "nope.crt", "key_file": "server.key"}),
                           r"nope\.crt")

    def test_config_check_success(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(tls=dict(SERVER_TLS, client_auth_type="RequireAndVerifyClientCert",
                                     client_ca_file=PKI.path("ca.crt")),
                            users={"alice": bcrypt_hash("pw")}))
        rc, out, err = run_exporter(f"--web.config.file={site.web}", "--config.check")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("SUCCESS", out)


class PlainAndPrecedenceTest(unittest.TestCase):
    """An empty file: plain HTTP, no auth. The flag wins over web.config_file."""

    def test_empty_file(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write("")
        with start(site.web) as ex:
            self.assertEqual(ex.request("/-/healthy")[0], 200)
            m = ex.metrics()
            self.assertEqual(pohtest.value(m, RELOAD_OK), 1)

    def test_flag_wins(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(users={"alice": bcrypt_hash("pw")}))
        open_file = os.path.join(site.dir, "open.yml")
        write_atomic(open_file, "")
        main = os.path.join(site.dir, "poh_exporter.yml")
        with open(main, "w") as f:
            f.write("web:\n  config_file: web.yml\n")
        with pohtest.Exporter(config_path=main) as ex:
            self.assertEqual(ex.request("/-/healthy")[0], 401, "web.config_file ignored")
        with pohtest.Exporter(config_path=main, args=[f"--web.config.file={open_file}"]) as ex:
            self.assertEqual(ex.request("/-/healthy")[0], 200, "the flag did not win")


class RateLimitTest(unittest.TestCase):
    """i. rate_limit: interval 1s, burst 2."""

    def test_rate_limit(self):
        site = Site()
        self.addCleanup(site.cleanup)
        site.write(web_yaml(rate={"interval": "1s", "burst": 2}))
        with start(site.web) as ex:
            t0 = time.monotonic()
            got = [get(ex.port, "/-/healthy").status for _ in range(4)]
            took = time.monotonic() - t0
            # one token a second: the 4th is refused while less than 1 s passed
            self.assertLess(took, 0.9, "four requests took too long to test a 1/s limit")
            self.assertEqual(got, [200, 200, 429, 429])
            time.sleep(1.1)
            self.assertEqual(get(ex.port, "/-/healthy").status, 200, "no token after 1 s")


if __name__ == "__main__":
    pohtest.require(OPENSSL, "no openssl on PATH (Debian package openssl)")
    pohtest.main()
