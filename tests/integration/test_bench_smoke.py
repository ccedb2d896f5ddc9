"""Smoke runs of every wschat-bench mode (cmd/wschat-bench), a second or
so each with small counts, against the real servers: build/examples/echo
for echo, build/cmd/wschatd (JSON dialect) for the others.

They assert correctness from the one summary line each run prints, never
speed: every message delivered once and in order (lost, out_of_order, dup
and errors all 0), deliveries == sent x receivers, handshakes that all
completed, idle connections that all opened, and for `slow` the slow
receivers closed by the server while its RSS stays bounded. Exit status 0
each time, and 2 for bad usage.

Stdlib only. Binaries come from $BUILD (default "build", relative to the
repository root).

Run: BUILD=build /usr/bin/python3 -m unittest -v \
         tests/integration/test_bench_smoke.py
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serverproc import build_dir, rss_kib, stop_all  # noqa: E402

# Every run: a short warmup, a one-second window.
SHORT = ["--warmup", "0.3", "--duration", "1"]
RUN_TIMEOUT = 30.0

# The summary line of each mode: its exact keys, in order (the `make
# bench` runner parses these).
KEYS = {
    "echo": ["conns", "depth", "size", "secs", "msgs", "msgs_per_s",
             "mb_per_s", "p50_us", "p99_us", "p999_us", "server_cpu_s",
             "msgs_per_cpu_s", "errors"],
    "broadcast": ["conns", "senders", "rate", "size", "secs", "sent",
                  "deliveries", "deliveries_per_s", "p50_us", "p99_us",
                  "lost", "out_of_order", "dup", "server_cpu_s",
                  "deliveries_per_cpu_s"],
    "connect": ["conns", "secs", "handshakes", "handshakes_per_s", "failed",
                "server_cpu_s", "handshakes_per_cpu_s"],
    "idle": ["conns", "opened", "failed", "rss_before_kb", "rss_after_kb",
             "bytes_per_conn"],
    "slow": ["conns", "slow", "senders", "rate", "size", "deliveries",
             "p50_us", "p99_us", "lost", "out_of_order", "dup",
             "slow_closed", "rss_max_kb"],
}


def binary(*parts):
    path = os.path.join(build_dir(), *parts)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is missing (build it with make)" % path)
    return path


class Server:
    """A server on 127.0.0.1 with an OS-chosen port, read from the first
    line it prints. Output goes to files, so it can never block on us."""

    def __init__(self, argv, line_re, env=None):
        self.argv = argv
        self.tmp = tempfile.TemporaryDirectory(prefix="wschat-bench-smoke-")
        self.out_path = os.path.join(self.tmp.name, "stdout")
        self.err_path = os.path.join(self.tmp.name, "stderr")
        with open(self.out_path, "wb") as out, \
                open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + 5
        while True:
            with open(self.out_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            m = re.search(line_re, data)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("%r did not start: stdout %r stderr %r"
                                     % (argv, data, self.stderr()))
            time.sleep(0.02)
        self.pid = self.proc.pid

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def assert_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("%r died (status %d); stderr:\n%s" % (
                self.argv, self.proc.returncode, self.stderr()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM; the server must exit 0 within 5 s."""
        self.assert_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%r ignored SIGTERM" % (self.argv,))
        if rc != 0:
            raise AssertionError("%r exited %d after SIGTERM; stderr:\n%s"
                                 % (self.argv, rc, self.stderr()))

    def cleanup(self):
        self.kill()
        self.tmp.cleanup()


class BenchSmoke(unittest.TestCase):

    def setUp(self):
        self.bench = binary("cmd", "wschat-bench")
        self.servers = []

    def tearDown(self):
        errors = stop_all(self.servers)
        if errors:
            self.fail("\n".join(errors))

    def echo_server(self, *flags):
        s = Server([binary("examples", "echo")] + [str(f) for f in flags] +
                   ["0"],
                   r"echo: listening on 127\.0\.0\.1:(\d+)\n")
        self.servers.append(s)
        return s

    def chatd(self, *flags, env=None):
        s = Server([binary("cmd", "wschatd"), "--host", "127.0.0.1",
                    "--port", "0", "--rate", "0", "--log-level", "warn"] +
                   [str(f) for f in flags],
                   r"wschatd: serving http://127\.0\.0\.1:(\d+)/\n", env)
        self.servers.append(s)
        return s

    def run_bench(self, mode, server, *args, expect_status=0, env=None,
                  during=None):
        """Run the bench; returns the summary as a dict of strings, after
        checking the exit status, that stdout is that one line, and that
        its keys are the mode's, in order. during(pid), if given, is
        called while the bench runs."""
        argv = [self.bench, mode, "--port", str(server.port),
                "--server-pid", str(server.pid)] + [str(a) for a in args]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
        try:
            if during is not None:
                during(p.pid)
            out, err = p.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("%s timed out after %.0f s" % (" ".join(argv),
                                                     RUN_TIMEOUT))
        except BaseException:
            p.kill()
            p.communicate()
            raise
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
        what = "%s\nexit %d\nstdout: %s\nstderr: %s" % (" ".join(argv),
                                                        p.returncode, out,
                                                        err[-2000:])
        self.assertEqual(p.returncode, expect_status, what)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, "want one summary line: " + what)
        prefix = "wschat-bench %s: " % mode
        self.assertTrue(lines[0].startswith(prefix), what)
        pairs = [kv.split("=", 1) for kv in lines[0][len(prefix):].split()]
        self.assertTrue(all(len(kv) == 2 for kv in pairs), what)
        self.assertEqual([k for k, _ in pairs], KEYS[mode], what)
        server.assert_alive()
        summary = dict(pairs)
        summary["_what"] = what
        return summary

    def assert_fields(self, s, **want):
        for key, value in want.items():
            self.assertEqual(s[key], str(value),
                             "%s: want %s=%s" % (s["_what"], key, value))

    def assert_number(self, s, key, minimum=None):
        try:
            v = float(s[key])
        except ValueError:
            self.fail("%s: %s is not a number" % (s["_what"], key))
        if minimum is not None:
            self.assertGreater(v, minimum, "%s: %s" % (s["_what"], key))
        return v

    # ------------------------------------------------------------- echo

    def test_echo(self):
        srv = self.echo_server()
        for depth in (1, 16):
            for size in (32, 4096):
                with self.subTest(depth=depth, size=size):
                    s = self.run_bench("echo", srv, "--connections", 20,
                                       "--depth", depth, "--size", size,
                                       *SHORT)
                    self.assert_fields(s, conns=20, depth=depth, size=size,
                                       errors=0)
                    self.assert_number(s, "msgs", 0)
                    for key in ("p50_us", "p99_us", "p999_us",
                                "server_cpu_s"):
                        self.assert_number(s, key)
                    self.assertLessEqual(float(s["p50_us"]),
                                         float(s["p999_us"]), s["_what"])

    # -------------------------------------------------------- broadcast

    def test_broadcast(self):
        srv = self.chatd("--max-connections", 5000)
        for rate in (0, 50):
            with self.subTest(rate=rate):
                s = self.run_bench("broadcast", srv, "--path", "/chat",
                                   "--dialect", "json", "--room",
                                   "smoke%d" % rate, "--connections", 50,
                                   "--senders", 2, "--rate", rate, *SHORT)
                self.assert_fields(s, conns=50, senders=2, rate=rate,
                                   lost=0, out_of_order=0, dup=0)
                sent = int(s["sent"])
                self.assertGreater(sent, 0, s["_what"])
                # Deliveries count the messages sent inside the window,
                # wherever they arrive before the drain ends: with nothing
                # lost, exactly every receiver got every one of them.
                self.assertEqual(int(s["deliveries"]), sent * 50, s["_what"])
                if rate:
                    # 2 senders x 50/s over a 1 s window.
                    self.assertTrue(80 <= sent <= 120, s["_what"])

    # ---------------------------------------------------------- connect

    def test_connect(self):
        srv = self.chatd()
        for dialect in ("plain", "json"):
            with self.subTest(dialect=dialect):
                s = self.run_bench("connect", srv, "--path", "/chat",
                                   "--dialect", dialect, "--connections", 10,
                                   *SHORT)
                self.assert_fields(s, conns=10, failed=0)
                self.assert_number(s, "handshakes", 0)

    # ------------------------------------------------------------- idle

    def test_idle(self):
        srv = self.chatd()     # fresh: its RSS grows with what we open
        s = self.run_bench("idle", srv, "--path", "/chat", "--dialect",
                           "json", "--connections", 200, "--sources", 2)
        self.assert_fields(s, conns=200, opened=200, failed=0)
        self.assert_number(s, "bytes_per_conn", 0)
        self.assertGreater(int(s["rss_after_kb"]), int(s["rss_before_kb"]),
                           s["_what"])

    # ------------------------------------------------------------- slow

    def test_slow(self):
        # --history 16: the history keeps up to N messages of up to
        # --max-text bytes each; the default 1000 x 60 KB would put 60 MB
        # in the room's history, which is the history's bound, not the
        # slow-consumer bound this test is about. Under AddressSanitizer
        # (make test-asan) freed memory waits in a quarantine of up to
        # 256 MB, which would count as RSS: no quarantine for this server
        # (the option means nothing to a build without ASan).
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(
            o for o in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=0") if o)
        srv = self.chatd("--max-text", 65536, "--max-message", 1048576,
                         "--history", 16, env=env)
        baseline = rss_kib(srv.pid)
        s = self.run_bench("slow", srv, "--path", "/chat", "--dialect",
                           "json", "--connections", 20, "--slow", 2,
                           "--senders", 2, "--size", 61440, *SHORT)
        self.assert_fields(s, conns=20, slow=2, lost=0, out_of_order=0,
                           dup=0, slow_closed=2)
        self.assert_number(s, "deliveries", 0)
        rss_max = int(s["rss_max_kb"])
        self.assertLess(rss_max, baseline + 64 * 1024,
                        "%s\nbaseline %d kB" % (s["_what"], baseline))
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.port,
                                    timeout=5) as r:
            metrics = r.read().decode()
        m = re.search(r"^wschat_slow_closes_total (\d+)", metrics, re.M)
        self.assertIsNotNone(m, metrics)
        self.assertEqual(int(m.group(1)), 2, metrics)

    # ---------------------------------------------- batched and plain

    def test_flush_with_and_without_io_uring(self):
        # The end-of-turn flush sends every session's output with one
        # io_uring_enter(2) where io_uring is available (this machine kind
        # has it), and with a write per session when WSCHAT_IO_URING=0.
        # Both must deliver everything once and in order, including to
        # receivers whose sockets fill up (slow), and only the first may
        # hold an io_uring descriptor.
        for setting in (None, "0"):
            env = dict(os.environ)
            env.pop("WSCHAT_IO_URING", None)
            if setting is not None:
                env["WSCHAT_IO_URING"] = setting
            env["ASAN_OPTIONS"] = ":".join(
                o for o in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=0")
                if o)
            with self.subTest(WSCHAT_IO_URING=setting):
                srv = self.chatd("--max-text", 65536, "--max-message",
                                 1048576, "--history", 16, env=env)
                s = self.run_bench("broadcast", srv, "--path", "/chat",
                                   "--dialect", "json", "--connections", 100,
                                   "--senders", 2, "--rate", 0, *SHORT)
                self.assert_fields(s, conns=100, lost=0, out_of_order=0,
                                   dup=0)
                self.assertEqual(int(s["deliveries"]), int(s["sent"]) * 100,
                                 s["_what"])
                s = self.run_bench("slow", srv, "--path", "/chat",
                                   "--dialect", "json", "--connections", 20,
                                   "--slow", 2, "--senders", 2, "--size",
                                   61440, "--room", "slowroom", *SHORT)
                self.assert_fields(s, conns=20, slow=2, lost=0,
                                   out_of_order=0, dup=0, slow_closed=2)
                fds = os.listdir("/proc/%d/fd" % srv.pid)
                targets = []
                for fd in fds:
                    try:
                        targets.append(os.readlink("/proc/%d/fd/%s" %
                                                   (srv.pid, fd)))
                    except OSError:
                        pass
                rings = [t for t in targets if "io_uring" in t]
                if setting is None:
                    self.assertEqual(len(rings), 1, targets)
                else:
                    self.assertEqual(rings, [], targets)
                srv.stop()
                self.servers.remove(srv)
                srv.cleanup()

    def test_generator_io_uring_sends_and_reads(self):
        # wschat-bench flushes its own connections the way the server
        # does (two or more with output go to the kernel in one
        # io_uring_enter(2)) and reads through a second ring, where each
        # connection has one multishot receive armed; WSCHAT_IO_URING=0
        # makes it write per connection and read with libuv. Every way
        # must deliver every echo once and in order. 32 B at depth 16
        # keeps every send whole; 256 KiB at depth 16 is 4 MiB per
        # connection at once, more than a loopback socket takes, so sends
        # come back partial and uv_write() finishes them. With 4 receive
        # buffers (WSCHAT_BENCH_RECV_BUFFERS) the receives run out of
        # buffers all the time and are armed again; a value that is not a
        # power of two is refused on stderr, and libuv reads instead.
        srv = self.echo_server("--max-message", 1048576)
        cases = [({}, 32, 50), ({}, 262144, 4),
                 ({"WSCHAT_IO_URING": "0"}, 32, 50),
                 ({"WSCHAT_IO_URING": "0"}, 262144, 4),
                 ({"WSCHAT_BENCH_RECV_BUFFERS": "4"}, 262144, 4),
                 ({"WSCHAT_BENCH_RECV_BUFFERS": "3"}, 32, 10)]
        for setting, size, conns in cases:
            env = dict(os.environ)
            env.pop("WSCHAT_IO_URING", None)
            env.pop("WSCHAT_BENCH_RECV_BUFFERS", None)
            env.update(setting)
            with self.subTest(setting=setting, size=size):
                seen = set()
                armed = {}    # ring descriptor: most receives seen armed
                submitted = {}  # ring descriptor: requests submitted

                def look(pid):
                    # Sampled every 20 ms from 0.3 s into the run until it
                    # ends. Armed receives are on the ring's poll list as
                    # op=27 (IORING_OP_RECV); one that is being completed
                    # or re-armed is not, so the most seen counts. SqHead
                    # counts every request the ring was given: the first
                    # arming of each connection, then each re-arming.
                    time.sleep(0.3)
                    deadline = time.monotonic() + RUN_TIMEOUT
                    while time.monotonic() < deadline:
                        try:
                            with open("/proc/%d/stat" % pid) as f:
                                state = f.read().rsplit(")", 1)[1].split()[0]
                            if state == "Z":
                                return
                            fds = os.listdir("/proc/%d/fd" % pid)
                        except (OSError, IndexError):
                            return
                        for fd in fds:
                            try:
                                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                                seen.add(t)
                                if "io_uring" not in t:
                                    continue
                                with open("/proc/%d/fdinfo/%s"
                                          % (pid, fd)) as f:
                                    info = f.read()
                            except OSError:
                                continue
                            n = len(re.findall(r"^\s*op=27,", info, re.M))
                            armed[fd] = max(armed.get(fd, 0), n)
                            m = re.search(r"^SqHead:\s*(\d+)", info, re.M)
                            if m:
                                submitted[fd] = max(submitted.get(fd, 0),
                                                    int(m.group(1)))
                        time.sleep(0.02)

                s = self.run_bench("echo", srv, "--connections", conns,
                                   "--depth", 16, "--size", size, *SHORT,
                                   env=env, during=look)
                self.assert_fields(s, conns=conns, depth=16, size=size,
                                   errors=0)
                self.assert_number(s, "msgs", 0)
                self.assertTrue(seen, "no descriptors read from /proc")
                rings = (armed, submitted, sorted(seen))
                if setting.get("WSCHAT_IO_URING") == "0":
                    self.assertEqual(armed, {}, rings)
                elif setting.get("WSCHAT_BENCH_RECV_BUFFERS") == "3":
                    self.assertIn("WSCHAT_BENCH_RECV_BUFFERS: not a power "
                                  "of two", s["_what"])
                    self.assertEqual(list(armed.values()), [0], rings)
                else:
                    self.assertEqual(sorted(armed.values()), [0, conns],
                                     rings)
                    reader = max(armed, key=armed.get)
                    if "WSCHAT_BENCH_RECV_BUFFERS" in setting:
                        # More requests than connections: receives that
                        # ran out of buffers were armed again.
                        self.assertGreater(submitted[reader], conns, rings)

    # ------------------------------------------------------------ usage

    def test_usage(self):
        cases = [
            (["echo"], "--port"),
            (["echo", "--port", "1", "--rate", "5"], "--rate"),
            (["echo", "--port", "1", "--depth", "x"], "--depth"),
            (["nosuchmode", "--port", "1"], "MODE"),
            (["broadcast", "--port", "1", "--proto", "raw", "--dialect",
              "json"], "--dialect"),
        ]
        for args, flag in cases:
            with self.subTest(args=args):
                p = subprocess.run([self.bench] + args, capture_output=True,
                                   stdin=subprocess.DEVNULL, timeout=10)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 2, err)
                self.assertEqual(p.stdout, b"")
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertIn(flag, err)


class TestReportAgain(unittest.TestCase):
    """run.py --report-from: the report written from saved raw runs."""

    RUN_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "bench", "run.py")

    def run_py(self, *args):
        return subprocess.run(["/usr/bin/python3", self.RUN_PY] +
                              list(args), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)

    @staticmethod
    def connect_run(per_s, per_cpu):
        line = ("wschat-bench connect: conns=50 secs=4.00 handshakes=%d "
                "handshakes_per_s=%d failed=0 server_cpu_s=2.00 "
                "handshakes_per_cpu_s=%d" % (per_s * 4, per_s, per_cpu))
        # As run.py saves them: every figure a float.
        return {"line": line, "handshakes_per_s": float(per_s),
                "failed": 0.0, "handshakes_per_cpu_s": float(per_cpu),
                "server_cpu_s": 2.0,
                "rc": 0, "wall_s": 5.0, "generator_cpu": 0.99,
                "cmd": "connect", "server_cmd": "echo"}

    def test_report_from_saved_runs(self):
        import json
        machine = {"cpu": "Test CPU", "cores": 2, "memory": "1 GiB",
                   "kernel": "Linux 0", "os": "Test", "libuv": "1",
                   "libuv_deb": "1", "libwebsockets": "4", "libwschat":
                   "libwschat 0.1.0", "commit": "abc1234", "python": "3",
                   "nofile": 1024, "date": "2026-01-01 00:00 UTC"}
        saved = {"machine": machine,
                 "timing": {"reps": 3, "duration": 4, "warmup": 1,
                            "timeout": 240},
                 "partial": "--only connect", "started": "01:00:00",
                 "finished": "01:01:00",
                 "results": [{"id": "connect", "rows": [
                     ["ours (echo)", [self.connect_run(10000, 30000),
                                      self.connect_run(9000, 32000),
                                      self.connect_run(11000, 31000)]],
                     ["ref_lws", [self.connect_run(8000, 15000),
                                  self.connect_run(8000, 16000),
                                  self.connect_run(8000, 20000)]]]}]}
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "results.json")
            out = os.path.join(d, "report.md")
            with open(src, "w") as f:
                json.dump(saved, f)
            p = self.run_py("--report-from", src, "--output", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                report = f.read()
        # Medians 31.0k and 16.0k: 1.94x against the 1.5x target.
        self.assertIn("| connect | handshakes/CPU-s | 31k | 16k | 1.94x | "
                      "≥ 1.5x |", report)
        # Round by round: 30k/15k, 32k/16k, 31k/20k.
        self.assertIn("ours / ref_lws 2.00x, 2.00x, 1.55x.", report)
        self.assertIn("tree abc1234", report)
        self.assertIn("01:00:00 to 01:01:00", report)

    def test_report_from_a_file_that_is_not_results(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "results.json")
            out = os.path.join(d, "report.md")
            with open(src, "w") as f:
                f.write('{"results": [{"id": "no-such-scenario"}]}')
            p = self.run_py("--report-from", src, "--output", out)
            self.assertEqual(p.returncode, 2)
            self.assertIn("not a results file of this runner", p.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
