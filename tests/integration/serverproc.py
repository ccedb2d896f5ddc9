"""serverproc - run one of the project's servers for an integration suite.

A server is started with its output going to files opened O_APPEND that
are read through separate descriptors, so nothing it prints can ever block
it; its first stdout line (which must match the subclass's LINE_RE) says
where it listens. stop() sends SIGTERM and asserts exit status 0 within a
time limit; a server that died during a test (a crash) is reported with
its signal and stderr.

WSCHAT_TEST_WRAPPER, when set, is a command line (split like a shell's)
that the server runs under, e.g. "valgrind --error-exitcode=1 ...". A
wrapped server is slower, so the start and stop time limits are then
multiplied by WSCHAT_TEST_SLOWDOWN (default 10).
"""

import os
import shlex
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def build_dir():
    """$BUILD (default "build"); a relative one is taken from the
    repository root."""
    b = os.environ.get("BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)



def rss_kib(pid):
    """Resident set size of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


def fd_count(pid):
    """Open descriptors of a process."""
    return len(os.listdir("/proc/%d/fd" % pid))


def stop_all(servers):
    """Stop every server (stop(): SIGTERM, exit status 0 in time) and clean
    up after each whatever happens; returns the failures as text, for a
    tearDown to report all of them at once."""
    errors = []
    for s in servers:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            s.cleanup()
    return errors


async def readme_echo_exchange(ws, tc):
    """What every README echo example (C, Python) must do, over an open
    websockets connection made with max_size=None; tc asserts."""
    await ws.send("hello from the README")
    tc.assertEqual(await ws.recv(), "hello from the README")
    big = "x" * (1 << 20)  # the examples' raised limit
    await ws.send(big)
    tc.assertEqual(await ws.recv(), big)
    await ws.send(b"binary is not echoed")
    await ws.send("still open")
    tc.assertEqual(await ws.recv(), "still open")

def wrapper():
    """(argv prefix, time-limit factor) from WSCHAT_TEST_WRAPPER."""
    w = shlex.split(os.environ.get("WSCHAT_TEST_WRAPPER", ""))
    if not w:
        return [], 1.0
    return w, float(os.environ.get("WSCHAT_TEST_SLOWDOWN", "10"))


class ServerProcess:
    name = "server"       # for messages
    LINE_RE = None        # the first stdout line; group(s) parsed by parse()
    stop_timeout = 10.0

    def __init__(self, argv, start_timeout=5.0):
        self.binary = argv[0]
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("%s binary %s is missing (build it with "
                                 "make)" % (self.name, self.binary))
        self.tmpdir = tempfile.TemporaryDirectory(prefix="wschat-srv-")
        out_path = os.path.join(self.tmpdir.name, "stdout")
        err_path = os.path.join(self.tmpdir.name, "stderr")
        out_w = open(out_path, "ab")
        err_w = open(err_path, "ab")
        self.out = open(out_path, "rb")
        self.err = open(err_path, "rb")
        prefix, self.slowdown = wrapper()
        start_timeout *= self.slowdown
        self.argv = prefix + list(argv)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out_w, stderr=err_w)
        finally:
            out_w.close()
            err_w.close()
        self.stopped = False
        self.line = self._first_line(start_timeout)
        m = self.LINE_RE.match(self.line)
        if not m:
            self.kill()
            raise AssertionError("unexpected first stdout line %r from %r"
                                 % (self.line, self.argv))
        self.parse(m)
        assert 0 < self.port < 65536

    def parse(self, m):
        """Set self.host and self.port from the first line's match."""
        raise NotImplementedError

    def _read(self, f):
        f.seek(0)
        return f.read()

    def _first_line(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self._read(self.out)
            if b"\n" in data:
                return data[:data.index(b"\n") + 1].decode("utf-8",
                                                           "replace")
            if self.proc.poll() is not None:
                raise AssertionError(
                    "%r exited with status %s before printing its line; "
                    "stdout %r stderr %r" % (self.argv, self.proc.returncode,
                                             data, self.stderr()))
            time.sleep(0.01)
        self.kill()
        raise AssertionError("%r printed no line within %.0fs (stdout %r)"
                             % (self.argv, timeout, self._read(self.out)))

    def stderr(self):
        return self._read(self.err).decode("utf-8", "replace")[-4000:]

    def stdout(self):
        return self._read(self.out).decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            rc = self.proc.returncode
            what = ("killed by signal %d" % -rc) if rc < 0 else \
                ("exited with status %d" % rc)
            raise AssertionError("%s %s during the test; stderr:\n%s"
                                 % (self.name, what, self.stderr()))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stopped = True

    def cleanup(self):
        self.kill()
        for f in (self.out, self.err):
            f.close()
        self.tmpdir.cleanup()

    def stop(self, timeout=None):
        """SIGTERM, then assert exit status 0 within timeout seconds (the
        subclass's stop_timeout by default). Returns the seconds it
        took."""
        if timeout is None:
            timeout = self.stop_timeout
        timeout *= self.slowdown
        if self.stopped:
            return 0.0
        self.stopped = True
        self.assert_alive()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %.1fs of SIGTERM; "
                                 "stderr:\n%s" % (self.name, timeout,
                                                  self.stderr()))
        took = time.monotonic() - t0
        if rc != 0:
            raise AssertionError("%s exited with status %d after SIGTERM "
                                 "(want 0); stderr:\n%s"
                                 % (self.name, rc, self.stderr()))
        return took

    def wait_exit(self, timeout):
        """Wait for an exit already requested; returns (status, seconds)."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        self.stopped = True
        return rc, time.monotonic() - t0
