# SPDX-License-Identifier: Apache-2.0
"""The conformance checks of mongosim.check_conformance against a real
single-node replica set: started here when `mongod` is on PATH, or taken from
POH_TEST_MONGODB_URI. Without either, prints one SKIPPED line (exit 77), in CI
too: no Debian package provides mongod (pohtest.require)."""

import sys
import unittest

import mongosim
import pohtest


class TestRealMongod(unittest.TestCase):
    uri = None

    def test_conformance(self):
        mongosim.check_conformance(self.uri)


if __name__ == "__main__":
    with mongosim.real_mongod() as uri:
        pohtest.require(uri, "no mongod: set MONGOD=/path/to/mongod or POH_TEST_MONGODB_URI, or put mongod on PATH",
                        allowed_in_ci="no Debian package provides mongod")
        TestRealMongod.uri = uri
        result = unittest.main(exit=False, verbosity=2).result
    print("SUMMARY: %d run, %d failures, %d errors, %d skipped" % (
        result.testsRun, len(result.failures), len(result.errors), len(result.skipped)))
    sys.exit(0 if result.wasSuccessful() else 1)
