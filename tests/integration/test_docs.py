"""The man pages: each lints clean with groff, and every public function
and callback type of include/wschat.h is documented in libwschat(3)."""

import glob
import os
import re
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def public_functions():
    with open(os.path.join(ROOT, "include", "wschat.h"), encoding="utf-8") as f:
        header = f.read()
    names = set(re.findall(r"WSCHAT_EXTERN[^;(]*?\b(wschat_\w+)\s*\(", header,
                           re.S))
    names |= set(re.findall(r"typedef \w+ \(\*(wschat_\w+)\)", header))
    return names


class ManPages(unittest.TestCase):
    def test_pages_lint_clean(self):
        pages = sorted(glob.glob(os.path.join(ROOT, "man", "*.[1-8]")))
        self.assertGreaterEqual(len(pages), 3, pages)
        for page in pages:
            with self.subTest(page=os.path.basename(page)):
                r = subprocess.run(["groff", "-man", "-t", "-ww", "-z", page],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")

    def test_every_public_function_is_documented(self):
        names = public_functions()
        self.assertGreater(len(names), 80)
        with open(os.path.join(ROOT, "man", "libwschat.3"),
                  encoding="utf-8") as f:
            page = f.read()
        missing = sorted(n for n in names
                         if not re.search(r"\b%s\b" % re.escape(n), page))
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
