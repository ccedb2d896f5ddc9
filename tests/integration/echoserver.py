"""Start and stop build/examples/echo for the integration suites.

The binary is $BUILD/examples/echo ($BUILD defaults to "build"; a relative
BUILD is taken from the repository root). The server is started on port 0
and the port is parsed from its one stdout line
("echo: listening on 127.0.0.1:PORT" or "[::1]:PORT"). stop() sends SIGTERM
and asserts exit status 0; a server that died during a test (a crash) is
reported with its signal and stderr.
"""

import os
import re
import unittest

from serverproc import ServerProcess, build_dir, stop_all

LINE_RE = re.compile(r"^echo: listening on (127\.0\.0\.1|\[::1\]):(\d+)\n$")


def echo_binary():
    return os.path.join(build_dir(), "examples", "echo")


class EchoServer(ServerProcess):
    name = "echo server"
    LINE_RE = LINE_RE
    stop_timeout = 10.0

    def __init__(self, *flags, host=None, start_timeout=5.0):
        self.flags = list(flags)
        if host is not None:
            self.flags = ["--host", host] + self.flags
        super().__init__([echo_binary()] + self.flags + ["0"],
                         start_timeout)

    def parse(self, m):
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))


class ServerTestCase(unittest.TestCase):
    """Tests start servers with self.server(*flags); tearDown closes the
    clients registered with self.track() first, then stops every server
    (SIGTERM, exit status 0 asserted)."""

    def setUp(self):
        self._servers = []
        self._clients = []

    def server(self, *flags, host=None):
        s = EchoServer(*flags, host=host)
        self._servers.append(s)
        return s

    def track(self, client):
        self._clients.append(client)
        return client

    def tearDown(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        errors = stop_all(self._servers)
        if errors:
            self.fail("\n".join(errors))
