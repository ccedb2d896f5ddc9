"""The README's embedding example: extracted, compiled against the in-tree
shared library, run, and talked to with python3-websockets."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serverproc import readme_echo_exchange  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")


def readme_example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- readme-example:[^>]*-->\s*```c\n(.*?)```", text, re.S)
    if m is None:
        raise AssertionError("README has no marked C example")
    return m.group(1)


class ReadmeExample(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_example_builds_runs_and_echoes(self):
        src = os.path.join(self.tmp.name, "app.c")
        exe = os.path.join(self.tmp.name, "app")
        with open(src, "w", encoding="utf-8") as f:
            f.write(readme_example())
        self.assertLessEqual(len(readme_example().splitlines()), 30)
        # Exactly the command the README gives, with the library of this
        # build variant.
        build = os.path.realpath(os.path.join(ROOT, BUILD))
        libdir = os.path.join(ROOT, "lib")
        if build != os.path.join(ROOT, "build"):
            libdir = os.path.join(build, "lib")
        extra = []
        if "asan" in BUILD:
            extra = ["-fsanitize=address,undefined"]
        subprocess.run(
            ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", src,
             "-I" + os.path.join(ROOT, "include"), "-L" + libdir, "-lwschat",
             "-Wl,-rpath," + libdir, "-o", exe] + extra,
            check=True)
        proc = subprocess.Popen([exe, "0"], stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            m = re.fullmatch(r"listening on port (\d+)\n", line)
            self.assertIsNotNone(m, line)
            port = int(m.group(1))

            async def talk():
                async with websockets.connect(
                        "ws://127.0.0.1:%d/" % port, max_size=None) as ws:
                    await readme_echo_exchange(ws, self)

            asyncio.run(asyncio.wait_for(talk(), 20))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
