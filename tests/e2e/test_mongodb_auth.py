# SPDX-License-Identifier: Apache-2.0
"""MongoDB authentication end to end (issue 19 item 5): the simulator runs
SCRAM-SHA-256 (--auth-user / --auth-password-file, libcrypto) and refuses
every other command before a login with code 13 Unauthorized, as mongod
does. pymongo and the exporter (libmongoc) log in with the right password;
with a wrong one pymongo is refused and the exporter reports
poh_mongodb_up 0 with a clear error, while neither the password nor the
password file's content shows in its log, /metrics or its landing page."""
import os
import tempfile
import unittest

import pymongo

import mongoexp
import mongosim
import pohtest
from mongoexp import TX_STREAM, value, wait_value, wait_stream_up

USER = "monitor"
PASSWORD = "Pa55-w0rd.sim"      # printable ASCII: the simulator does no SASLprep
WRONG = "Wr0ng-pa55.sim"


class AuthStack:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="poh-auth-")
        self.sim_pw = os.path.join(self.dir, "sim.pass")
        with open(self.sim_pw, "w") as f:
            f.write(PASSWORD + "\n")
        self.sim = mongosim.MongoSim("--auth-user", USER, "--auth-password-file", self.sim_pw).start()
        self.state = mongoexp.StateDir()
        self.exp = None

    def uri(self, password=None):
        cred = f"{USER}:{password}@" if password else f"{USER}@"
        return self.sim.uri.replace("mongodb://", "mongodb://" + cred, 1)

    def start_exporter(self, password):
        pw_file = os.path.join(self.dir, "exporter.pass")
        with open(pw_file, "w") as f:
            f.write(password + "\n")
        os.chmod(pw_file, 0o600)
        clusters = [{"name": "main", "uri": self.uri(), "password_file": pw_file,
                     "streams": [TX_STREAM]}]
        self.exp = pohtest.Exporter(mongoexp.config(clusters, self.state.path))
        return self.exp

    def close(self):
        try:
            if self.exp:
                mongoexp.stop_checked(self.exp)
        finally:
            self.sim.stop()
            self.state.cleanup()
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)


class TestPymongo(unittest.TestCase):
    def test_login_right_wrong_and_none(self):
        st = AuthStack()
        try:
            st.sim.insert(3)
            c = pymongo.MongoClient(st.uri(PASSWORD), serverSelectionTimeoutMS=5000)
            try:
                self.assertEqual(len(list(c.dag.transactions.find({}))), 3)
            finally:
                c.close()
            for uri, code in ((st.uri(WRONG), 18), (st.sim.uri, 13)):
                c = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
                try:
                    with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                        c.dag.transactions.find_one({})
                    self.assertEqual(cm.exception.code, code, cm.exception.details)
                finally:
                    c.close()
            cmds = st.sim.commands()
            self.assertGreaterEqual(cmds.get("saslStart", 0), 2, cmds)
            self.assertGreaterEqual(cmds.get("saslContinue", 0), 2, cmds)
            self.assertNotIn(PASSWORD, st.sim.log_text())
        finally:
            st.close()


class TestProtocol(unittest.TestCase):
    def test_malformed_conversations(self):
        """Bad SASL input gets mongod's error codes and the connection stays
        usable: another mechanism 334, a malformed first message or a
        saslContinue with no conversation 17, an unknown user 18."""
        st = AuthStack()
        try:
            c = pymongo.MongoClient(st.sim.uri, serverSelectionTimeoutMS=5000)
            try:
                admin = c.admin
                cases = [
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-1", "payload": b"n,,n=monitor,r=abc"}, 334),
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"garbage"}, 17),
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"n,,n=monitor"}, 17),
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"n,,n=x=zz,r=a"}, 17),
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-256"}, 17),
                    ({"saslContinue": 1, "conversationId": 1, "payload": b"c=biws,r=x,p=AAAA"}, 17),
                    ({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"n,,n=nobody,r=abc"}, 18),
                ]
                for cmd, code in cases:
                    with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                        admin.command(cmd)
                    self.assertEqual(cm.exception.code, code, (cmd, cm.exception.details))
                # a started conversation, then a proof that is not base64 of 32 bytes
                r = admin.command({"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                   "payload": b"n,,n=monitor,r=abc"})
                server_first = bytes(r["payload"]).decode()
                self.assertRegex(server_first, r"^r=abc[A-Za-z0-9+/=]+,s=[A-Za-z0-9+/=]{40},i=15000$")
                nonce = server_first.split(",")[0][2:]
                for proof in ("p=AAAA", "p=!!!!", "p="):
                    with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                        admin.command({"saslContinue": 1, "conversationId": 1,
                                       "payload": f"c=biws,r={nonce},{proof}".encode()})
                    self.assertIn(cm.exception.code, (17, 18))
                self.assertEqual(admin.command("ping")["ok"], 1.0)
            finally:
                c.close()
        finally:
            st.close()


class TestExporter(unittest.TestCase):
    def test_user_and_password_file(self):
        st = AuthStack()
        try:
            exp = st.start_exporter(PASSWORD)
            self.assertTrue(wait_stream_up(exp))
            self.assertEqual(wait_value(exp, "poh_mongodb_up", 1, cluster="main"), 1)
            st.sim.insert(250)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 250, cluster="main",
                                        stream="tx", operation="insert"), 250)
            self.assertIn("authenticated monitor", st.sim.log_text())
            self.assertNotIn(PASSWORD, exp.log_text())
        finally:
            st.close()

    def test_wrong_password(self):
        st = AuthStack()
        try:
            exp = st.start_exporter(WRONG)
            self.assertEqual(wait_value(exp, "poh_mongodb_up", 0, cluster="main"), 0)
            # a warning, not only a debug line, says what is wrong
            self.assertTrue(exp.wait_log(r"level=(warn|error) .*[Aa]uthentication failed", timeout=15),
                            exp.log_text()[-3000:])
            self.assertEqual(value(exp, "poh_mongodb_up", cluster="main"), 0)
            self.assertEqual(value(exp, "poh_mongodb_change_stream_up", cluster="main", stream="tx"), 0)
            self.assertIn("authentication failed for monitor", st.sim.log_text())
            _, _, page = exp.request("/")
            # the landing page gives the reason on the cluster's row
            self.assertIn("<td>down</td><td>", page.decode())
            self.assertIn("Authentication failed.</td>", page.decode())
            seen = {"log": exp.log_text(), "metrics": exp.scrape(),
                    "openmetrics": exp.scrape(openmetrics=True), "landing page": page.decode()}
            for where, text in seen.items():
                for secret in (WRONG, PASSWORD):
                    self.assertNotIn(secret, text, where)
            lines = [l for l in exp.log_text().splitlines() if "uthentication failed" in l and "level=debug" not in l]
            print("  exporter's error lines:\n    " + "\n    ".join(lines[:3]))
        finally:
            st.close()


if __name__ == "__main__":
    pohtest.main()
