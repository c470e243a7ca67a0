# SPDX-License-Identifier: Apache-2.0
"""The licence (issue 18, item 1): LICENSE is the Apache License 2.0, every
source file of ours says so in an SPDX line near its top, and the Debian
copyright file is machine-readable with Apache-2.0 for the whole tree."""
import os
import unittest

from pohtest import main

SRC = os.environ.get("POH_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAG = "SPDX-License-Identifier: Apache-2.0"
# Not ours, or not source: upstream protos keep their own headers; data.
SKIP_DIRS = ("proto/opentelemetry", "proto/grpc", "tests/fuzz/corpus", "tests/unit/golden",
             "tests/unit/data", ".git")


def source_files():
    for top in ("src", "tests", "bench", "scripts", "proto", "packaging"):
        for root, dirs, files in os.walk(os.path.join(SRC, top)):
            rel = os.path.relpath(root, SRC)
            dirs[:] = [d for d in dirs
                       if not os.path.join(rel, d).startswith(SKIP_DIRS) and d != "__pycache__"]
            for f in files:
                if f.endswith((".c", ".h", ".py", ".sh", ".proto", ".h.in")) or \
                        f == "CMakeLists.txt" or (top == "packaging" and f == "rules"):
                    yield os.path.join(root, f)
    yield os.path.join(SRC, "CMakeLists.txt")


class LicenceTest(unittest.TestCase):
    def test_license_file(self):
        with open(os.path.join(SRC, "LICENSE")) as f:
            text = f.read()
        self.assertIn("Apache License", text[:200])
        self.assertIn("Version 2.0, January 2004", text[:200])
        self.assertIn("END OF TERMS AND CONDITIONS", text)

    def test_every_source_file_has_the_spdx_line(self):
        files = list(source_files())
        self.assertGreater(len(files), 150)
        missing = []
        for path in files:
            with open(path, errors="replace") as f:
                head = "".join(f.readline() for _ in range(3))
            if TAG not in head:
                missing.append(os.path.relpath(path, SRC))
        self.assertEqual(missing, [], "no SPDX line in the first 3 lines")

    def test_debian_copyright(self):
        with open(os.path.join(SRC, "packaging", "debian", "copyright")) as f:
            text = f.read()
        self.assertTrue(text.startswith(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"))
        first = text.split("\n\n")[1]
        self.assertIn("Files: *", first)
        self.assertIn("License: Apache-2.0", first)
        self.assertNotIn("No licence", text)
        self.assertIn("\nLicense: Apache-2.0\n Licensed under the Apache License", text)


if __name__ == "__main__":
    main()
