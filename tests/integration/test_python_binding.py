"""The Python binding (bindings/python/wschat) against python3-websockets
clients: callbacks, echo, close codes, rooms, names, user data, errors,
logging of raising callbacks, stopping from a thread and from a signal,
the built-in chat protocol, the bot example and the README's Python
example.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_python_binding.py

The library is the one of this build variant: $BUILD/lib/libwschat.so.0
when it exists (sanitizer and other variant builds), else the tree's
lib/libwschat.so.0. A sanitizer build cannot be loaded into a Python that
was not started with the sanitizer runtimes first, so the suite then
re-executes itself with them in LD_PRELOAD (leak checking off: the
interpreter itself keeps memory until exit).
"""

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BUILD = os.environ.get("BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)


def library_path():
    for p in (os.path.join(BUILD, "lib", "libwschat.so.0"),
              os.path.join(ROOT, "lib", "libwschat.so.0")):
        if os.path.exists(p):
            return p
    raise AssertionError("no libwschat.so.0 in %s/lib or %s/lib (run make)"
                         % (BUILD, ROOT))


LIBRARY = library_path()


def _sanitizer_runtimes(path):
    """The sanitizer runtimes the library needs, if any, as paths."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True,
                         check=True).stdout
    libs = []
    for name in ("libasan", "libubsan"):
        m = re.search(r"%s\.so[.0-9]* => (\S+)" % name, out)
        if m:
            libs.append(m.group(1))
    return libs


def _reexec_with_sanitizers():
    runtimes = _sanitizer_runtimes(LIBRARY)
    preload = os.environ.get("LD_PRELOAD", "")
    if not runtimes or all(r in preload for r in runtimes):
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(runtimes + ([preload] if preload else []))
    opts = [o for o in env.get("ASAN_OPTIONS", "").split(":")
            if o and not o.startswith("detect_leaks")]
    env["ASAN_OPTIONS"] = ":".join(opts + ["detect_leaks=0"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


_reexec_with_sanitizers()

import wschat  # noqa: E402
from wschat import errors as wserrors  # noqa: E402
from serverproc import readme_echo_exchange  # noqa: E402

wschat.load_library(LIBRARY)


def child_env():
    """The environment of a Python child: the package on its path, the
    library found by the package's own search from $BUILD."""
    env = dict(os.environ)
    env.pop("WSCHAT_LIBRARY", None)
    env["BUILD"] = BUILD
    env["PYTHONPATH"] = os.path.join(ROOT, "bindings", "python")
    return env


def arun(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def qget(q, timeout=5):
    return await asyncio.to_thread(q.get, True, timeout)


def url(port, path="/"):
    return "ws://127.0.0.1:%d%s" % (port, path)


class Running:
    """A server running in a background thread for the length of a with
    block; stopped, waited for and freed at its end."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        self.port = self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()
        if not self.server.wait(5):
            raise AssertionError("server did not stop within 5 s")
        self.server.close()


class Child:
    """A Python child process whose first stdout line must match
    line_re; stop() sends a signal and asserts exit status 0."""

    def __init__(self, argv, line_re):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=child_env(), cwd=ROOT)
        self.line = self.proc.stdout.readline()
        m = re.fullmatch(line_re, self.line)
        if m is None:
            self.proc.kill()
            err = self.proc.stderr.read()
            self.close()
            raise AssertionError("first line %r, stderr %r"
                                 % (self.line, err))
        self.port = int(m.group(1))

    def stop(self, sig=signal.SIGINT, within=3.0):
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("still running %.1f s after signal %d"
                                 % (within, sig))
        elapsed = time.monotonic() - t0
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        self.close()
        return rc, elapsed, out, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class TestLibrary(unittest.TestCase):

    def test_loaded_from_this_build(self):
        self.assertEqual(os.path.realpath(wschat.library_path()),
                         os.path.realpath(LIBRARY))
        v = wschat.version()
        self.assertEqual(wschat.version_string(), "%d.%d.%d"
                         % (v >> 16, (v >> 8) & 0xff, v & 0xff))
        with self.assertRaisesRegex(OSError, "already loaded"):
            wschat.load_library("/nonexistent/libwschat.so.0")

    def test_library_shutdown(self):
        # In a process of its own: it refuses while any server lives.
        code = (
            "import gc, wschat\n"
            "s = wschat.Server(port=0)\n"
            "try:\n"
            "    wschat.library_shutdown()\n"
            "    print('no error')\n"
            "except wschat.Busy as e:\n"
            "    print(e.name)\n"
            "s.close(); del s; gc.collect()\n"
            "print(wschat.live_bytes())\n"
            "wschat.library_shutdown()\n"
            "print('ok')\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                           text=True, env=child_env(), cwd=ROOT, timeout=30)
        self.assertEqual((r.returncode, r.stdout.split()),
                         (0, ["WSCHAT_EBUSY", "0", "ok"]), r.stderr)

    def test_error_names_and_classes(self):
        e = wserrors.error(-30107, "wschat_session_set_name")
        self.assertIsInstance(e, wschat.NameTaken)
        self.assertIsInstance(e, wschat.WschatError)
        self.assertEqual((e.code, e.name, e.message),
                         (-30107, "WSCHAT_ENAMETAKEN", "name is taken"))
        self.assertEqual(str(e), "wschat_session_set_name: "
                         "WSCHAT_ENAMETAKEN: name is taken")
        self.assertIsInstance(wserrors.error(-30100), ValueError)
        self.assertIsInstance(wserrors.error(-30101), wschat.SessionClosed)
        # libuv's codes pass through as plain WschatError.
        e = wserrors.error(-98)
        self.assertIs(type(e), wschat.WschatError)
        self.assertEqual((e.name, e.message),
                         ("EADDRINUSE", "address already in use"))
        self.assertEqual(wschat.err_name(-1), "EPERM")
        self.assertEqual(wschat.strerror(-30200),
                         "message or frame exceeds the configured limit")


class TestOptions(unittest.TestCase):

    def test_invalid_values_raise(self):
        with self.assertRaises(wschat.InvalidArgument) as cm:
            wschat.Server(port=0, max_message=0)
        e = cm.exception
        self.assertEqual((e.code, e.name, e.message),
                         (-30100, "WSCHAT_EINVAL", "invalid argument"))
        self.assertEqual(e.call, "wschat_server_set_max_message")
        self.assertIn("max_message=0", str(e))
        with self.assertRaises(wschat.InvalidArgument) as cm:
            wschat.Server(port=0, path="chat")
        self.assertEqual(cm.exception.call, "wschat_server_set_path")
        with self.assertRaises(wschat.InvalidArgument):
            wschat.Server(port=0, max_connections=-1)  # never wrapped
        with self.assertRaises(wschat.InvalidArgument):
            wschat.Server(port=0, max_header=100)
        with self.assertRaises(wschat.InvalidArgument):
            wschat.Server(port=0, close_codes={"idle": 999})
        with self.assertRaises(wschat.InvalidArgument):
            wschat.Server(port=0, subprotocols=["has space"])
        with self.assertRaises(TypeError):
            wschat.Server(port=0, idle_timeout="10")
        with self.assertRaisesRegex(TypeError, "unknown wschat option "
                                    "'max_mesage'"):
            wschat.Server(port=0, max_mesage=10)
        with self.assertRaises(wschat.InvalidArgument):
            wschat.Server(port=0, chat=True, chat_max_text=0)

    def test_every_option_is_accepted(self):
        with wschat.Server(port=0, max_message=1 << 20, max_header=4096,
                           max_header_count=32, max_connections=10,
                           max_queued=1 << 21, handshake_timeout=2000,
                           close_timeout=1000, idle_timeout=60000,
                           ping_interval=30000, path="/ws",
                           subprotocols=["a", "b"], max_rooms=5, history=3,
                           rate=(5, 10),
                           close_codes={wschat.CloseReason.IDLE: 4000,
                                        "shutdown": 1001}) as srv:
            srv.listen()
            self.assertIsInstance(srv.port, int)
            with self.assertRaises(wschat.Busy):
                srv.configure(path="/other")  # fixed once listening

    def test_limits_apply(self):
        srv = wschat.Server(port=0, max_per_ip=1, max_message=10)
        with Running(srv) as r:
            async def talk():
                async with websockets.connect(url(r.port)) as ws:
                    with self.assertRaises(
                            websockets.exceptions.InvalidStatusCode) as cm:
                        async with websockets.connect(url(r.port)):
                            pass
                    self.assertEqual(cm.exception.status_code, 503)
                    await ws.send("x" * 11)
                    await ws.wait_closed()
                    self.assertEqual(ws.close_code, 1009)
            arun(talk())

    def test_listen_errors(self):
        with wschat.Server(port=0) as a, wschat.Server(port=0) as b:
            port = a.listen()
            with self.assertRaises(wschat.AlreadyListening):
                a.listen()
            with self.assertRaises(wschat.WschatError) as cm:
                b.listen(port=port)
            self.assertEqual(cm.exception.name, "EADDRINUSE")
            self.assertEqual(cm.exception.code, -98)
        with wschat.Server(host="localhost", port=0) as c:
            with self.assertRaises(wschat.InvalidArgument) as cm:
                c.listen()
            self.assertIn("(localhost:0)", str(cm.exception))
            self.assertIsNone(c.port)


class TestSessions(unittest.TestCase):

    def test_echo_callbacks_and_close_from_client(self):
        events = queue.Queue()
        srv = wschat.Server(port=0, subprotocols=["echo.v2"])
        kept = []

        @srv.on_open
        def opened(session):
            kept.append(session)
            events.put(("open", session.name, session.path,
                        session.subprotocol, session.peer))

        @srv.on_message
        def echo(session, data):
            events.put(("message", data))
            session.send(data)

        @srv.on_close
        def closed(session, code, reason):
            events.put(("close", code, reason, session.is_open,
                        len(srv.sessions)))

        with Running(srv) as r:
            async def talk():
                async with websockets.connect(
                        url(r.port, "/room?x=1"),
                        subprotocols=["other", "echo.v2"]) as ws:
                    self.assertEqual(ws.subprotocol, "echo.v2")
                    ev = await qget(events)
                    self.assertEqual(ev[:4], ("open", "user1", "/room",
                                              "echo.v2"))
                    self.assertRegex(ev[4], r"^127\.0\.0\.1:\d+$")
                    await ws.send("héllo")
                    self.assertEqual(await ws.recv(), "héllo")
                    await ws.send(b"\x00\xffbin")
                    self.assertEqual(await ws.recv(), b"\x00\xffbin")
                    await ws.send("")
                    self.assertEqual(await ws.recv(), "")
                    await ws.close(4001, "bye now")
                self.assertEqual(await qget(events), ("message", "héllo"))
                self.assertEqual(await qget(events),
                                 ("message", b"\x00\xffbin"))
                self.assertEqual(await qget(events), ("message", ""))
                # During on_close the session is still tracked.
                self.assertEqual(await qget(events),
                                 ("close", 4001, "bye now", True, 1))
            arun(talk())
        s = kept[0]
        self.assertFalse(s.is_open)
        self.assertEqual((s.close_code, s.close_reason, s.name),
                         (4001, "bye now", "user1"))
        with self.assertRaises(wschat.SessionClosed):
            s.send("late")
        self.assertEqual(srv._sessions, {})

    def test_close_from_server_with_code(self):
        results = queue.Queue()
        srv = wschat.Server(port=0)

        @srv.on_message
        def handle(session, data):
            try:
                session.close(999)
            except wschat.InvalidArgument as e:
                results.put(("bad code", e.name))
            session.close(4321, "done: " + data)
            try:
                session.send("after close")
            except wschat.SessionClosed as e:
                results.put(("send after close", e.code))

        @srv.on_close
        def closed(session, code, reason):
            results.put(("close", code, reason))

        with Running(srv) as r:
            async def talk():
                async with websockets.connect(url(r.port)) as ws:
                    await ws.send("go")
                    await ws.wait_closed()
                    self.assertEqual(ws.close_code, 4321)
                    self.assertEqual(ws.close_reason, "done: go")
                self.assertEqual(await qget(results),
                                 ("bad code", "WSCHAT_EINVAL"))
                self.assertEqual(await qget(results),
                                 ("send after close", -30101))
                self.assertEqual(await qget(results),
                                 ("close", 4321, "done: go"))
            arun(talk())

    def test_user_data(self):
        srv = wschat.Server(port=0)
        final = queue.Queue()

        @srv.on_open
        def opened(session):
            session.data["count"] = 0
            session.nickname = "n%d" % session.id

        @srv.on_message
        def count(session, data):
            session.data["count"] += 1
            session.send("%s %d" % (session.nickname, session.data["count"]))

        @srv.on_close
        def closed(session, code, reason):
            final.put((session.nickname, dict(session.data)))

        with Running(srv) as r:
            async def talk():
                async with websockets.connect(url(r.port)) as a, \
                        websockets.connect(url(r.port)) as b:
                    for ws, n in ((a, 3), (b, 1)):
                        for _ in range(n):
                            await ws.send("x")
                    self.assertEqual([await a.recv() for _ in range(3)],
                                     ["n1 1", "n1 2", "n1 3"])
                    self.assertEqual(await b.recv(), "n2 1")
                got = sorted([await qget(final), await qget(final)])
                self.assertEqual(got, [("n1", {"count": 3}),
                                       ("n2", {"count": 1})])
            arun(talk())

    def test_raising_callbacks_are_logged_and_serving_goes_on(self):
        srv = wschat.Server(port=0)

        @srv.on_open
        def opened(session):
            raise RuntimeError("open went wrong")

        @srv.on_message
        def handle(session, data):
            if data == "boom":
                raise ValueError("kaboom")
            session.send("ok " + data)

        with self.assertLogs("wschat", "ERROR") as logs:
            with Running(srv) as r:
                async def talk():
                    async with websockets.connect(url(r.port)) as ws:
                        await ws.send("boom")
                        await ws.send("ping")
                        self.assertEqual(await ws.recv(), "ok ping")
                    async with websockets.connect(url(r.port)) as ws:
                        await ws.send("again")
                        self.assertEqual(await ws.recv(), "ok again")
                arun(talk())
        text = "\n".join(logs.output)
        self.assertIn("the on_message callback 'handle' raised", text)
        self.assertIn("ValueError: kaboom", text)
        self.assertIn("Traceback", text)
        self.assertIn("RuntimeError: open went wrong", text)
        self.assertEqual(len(logs.records), 3)  # two opens, one message

    def test_calls_from_a_foreign_thread_are_refused(self):
        srv = wschat.Server(port=0)
        with Running(srv):
            with self.assertRaisesRegex(RuntimeError, "only be used from the "
                                        "thread running the server"):
                srv.room("lobby")


class TestRoomsAndNames(unittest.TestCase):

    def test_rooms_and_broadcast(self):
        srv = wschat.Server(port=0)
        results = queue.Queue()

        @srv.on_open
        def opened(session):
            session.join("r1")

        @srv.on_message
        def handle(session, data):
            room = srv.room("r1")
            if data == "state":
                results.put((room.member_names, [s.name for s in
                                                 room.members],
                             session in room, [x.name for x in
                                               session.rooms],
                             room.member_count))
            elif data == "errors":
                for fn in (lambda: session.join("r1"),
                           lambda: session.leave("r2"),
                           lambda: srv.room("bad name!")):
                    try:
                        fn()
                    except wschat.WschatError as e:
                        results.put(e.name)
            elif data == "leave":
                session.leave(room)
                results.put((session in room, room.member_count))
            elif isinstance(data, bytes):
                results.put(room.broadcast(data))
            else:
                results.put(room.broadcast("%s: %s" % (session.name, data),
                                           exclude=session))

        with Running(srv) as r:
            async def talk():
                async with websockets.connect(url(r.port)) as a, \
                        websockets.connect(url(r.port)) as b:
                    await a.send("state")
                    self.assertEqual(await qget(results),
                                     (["user1", "user2"], ["user1", "user2"],
                                      True, ["r1"], 2))
                    await a.send("hello room")
                    self.assertEqual(await qget(results), 1)
                    self.assertEqual(await b.recv(), "user1: hello room")
                    await b.send(b"\x01\x02")
                    self.assertEqual(await qget(results), 2)
                    self.assertEqual(await a.recv(), b"\x01\x02")
                    self.assertEqual(await b.recv(), b"\x01\x02")
                    await a.send("errors")
                    self.assertEqual([await qget(results) for _ in range(3)],
                                     ["WSCHAT_EEXIST", "WSCHAT_ENOTMEMBER",
                                      "WSCHAT_EINVAL"])
                    await a.send("leave")
                    self.assertEqual(await qget(results), (False, 1))
                    await b.send("anyone?")
                    self.assertEqual(await qget(results), 0)
                    await b.send("state")
                    self.assertEqual(await qget(results),
                                     (["user2"], ["user2"], True, ["r1"], 1))
            arun(talk())

    def test_names(self):
        srv = wschat.Server(port=0)
        results = queue.Queue()

        @srv.on_message
        def handle(session, data):
            cmd, _, arg = data.partition(" ")
            if cmd == "nick":
                try:
                    session.name = arg
                    results.put(("ok", session.name))
                except wschat.WschatError as e:
                    results.put((type(e).__name__, e.code, e.name,
                                 e.message))
            elif cmd == "find":
                found = srv.find_session(arg)
                results.put(found is session if found else None)

        with Running(srv) as r:
            async def talk():
                async with websockets.connect(url(r.port)) as a, \
                        websockets.connect(url(r.port)) as b:
                    await a.send("nick alice")
                    self.assertEqual(await qget(results), ("ok", "alice"))
                    await b.send("nick ALICE")
                    self.assertEqual(await qget(results),
                                     ("NameTaken", -30107,
                                      "WSCHAT_ENAMETAKEN", "name is taken"))
                    await b.send("nick no spaces")
                    self.assertEqual(await qget(results),
                                     ("InvalidArgument", -30100,
                                      "WSCHAT_EINVAL", "invalid argument"))
                    await a.send("find Alice")
                    self.assertIs(await qget(results), True)
                    await b.send("find user2")
                    self.assertIs(await qget(results), True)
                    await b.send("find nobody")
                    self.assertIsNone(await qget(results))
            arun(talk())


class TestStopping(unittest.TestCase):

    def test_stop_from_another_thread(self):
        srv = wschat.Server(port=0)
        opened = threading.Event()
        srv.on_open(lambda session: opened.set())
        port = srv.listen()
        codes = []
        stopped_at = []

        def client():
            async def go():
                async with websockets.connect(url(port)) as ws:
                    await ws.wait_closed()
                    codes.append((ws.close_code, ws.close_reason))
            asyncio.run(asyncio.wait_for(go(), 10))

        def stopper():
            opened.wait(5)
            stopped_at.append(time.monotonic())
            self.assertTrue(srv.stop())

        threads = [threading.Thread(target=client),
                   threading.Thread(target=stopper)]
        # If stop() from the thread had no effect, end the test anyway.
        watchdog = threading.Timer(10, srv.stop)
        for t in threads + [watchdog]:
            t.start()
        srv.run()  # the main thread, as an application would
        returned = time.monotonic()
        watchdog.cancel()
        for t in threads:
            t.join(5)
        self.assertLess(returned - stopped_at[0], 2.0)
        self.assertEqual(codes, [(1001, "server shutting down")])
        self.assertTrue(srv.is_stopped)
        srv.close()
        self.assertFalse(srv.stop())  # freed: nothing to stop

    SCRIPT = (
        "import wschat\n"
        "srv = wschat.Server(port=0)\n"
        "srv.on_message(lambda s, d: s.send(d))\n"
        "print('port', srv.listen(), flush=True)\n"
        "srv.run()\n"
        "print('run returned', flush=True)\n"
        "srv.close()\n")

    def signal_case(self, sig, with_client):
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "server.py")
            with open(script, "w", encoding="utf-8") as f:
                f.write(self.SCRIPT)
            child = Child([sys.executable, script], r"port (\d+)\n")
            try:
                if not with_client:
                    time.sleep(0.3)  # an idle loop: no callback will run
                    rc, elapsed, out, err = child.stop(sig)
                else:
                    async def talk():
                        async with websockets.connect(url(child.port)) as ws:
                            await ws.send("hi")
                            self.assertEqual(await ws.recv(), "hi")
                            result = await asyncio.to_thread(child.stop, sig)
                            await ws.wait_closed()
                            self.assertEqual(ws.close_code, 1001)
                            return result
                    rc, elapsed, out, err = arun(talk())
            finally:
                child.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "run returned\n")
        self.assertEqual(err, "")
        self.assertLess(elapsed, 2.0)

    def test_sigint_stops_an_idle_server(self):
        self.signal_case(signal.SIGINT, with_client=False)

    def test_sigint_stops_a_server_with_a_session(self):
        self.signal_case(signal.SIGINT, with_client=True)

    def test_sigterm_stops_a_server_with_a_session(self):
        self.signal_case(signal.SIGTERM, with_client=True)


class TestChatAndHttp(unittest.TestCase):

    def test_builtin_chat_protocol(self):
        srv = wschat.Server(port=0, chat=True, chat_server_name="pychat/1",
                            chat_max_text=64)
        with self.assertRaisesRegex(RuntimeError, "chat protocol owns"):
            srv.on_message(lambda s, d: None)
        with Running(srv) as r:
            async def talk():
                async with websockets.connect(
                        url(r.port, "/chat"),
                        subprotocols=["wschat.v1.json"]) as j, \
                        websockets.connect(url(r.port, "/chat")) as t:
                    welcome = json.loads(await j.recv())
                    self.assertEqual((welcome["type"], welcome["name"],
                                      welcome["server"],
                                      welcome["limits"]["text"]),
                                     ("welcome", "user1", "pychat/1", 64))
                    self.assertEqual(await t.recv(), "* user2 joined lobby")
                    await t.send("hello")
                    self.assertEqual(await t.recv(), "user2 said: hello")
                    await t.send("x" * 65)
                    self.assertEqual(await t.recv(), "* error: too long")
                    await j.send(json.dumps({"type": "rooms"}))
                    rooms = json.loads(await j.recv())
                    self.assertEqual(rooms["rooms"],
                                     [{"room": "lobby", "members": 1}])
            arun(talk())

    def test_http_and_origin_handlers(self):
        srv = wschat.Server(port=0)

        @srv.on_http
        def page(request):
            if request.path == "/hello":
                request.respond(200, "hi %s %s" % (request.query,
                                                   request.header("X-Who")),
                                headers={"X-Served-By": "python"})

        @srv.on_origin
        def origin(request, origin):
            return origin in (None, "http://good.example")

        with Running(srv) as r:
            req = urllib.request.Request(
                "http://127.0.0.1:%d/hello?a=1" % r.port,
                headers={"X-Who": "me"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.read(), b"hi a=1 me")
                self.assertEqual(resp.headers["X-Served-By"], "python")
                self.assertEqual(resp.headers["Content-Type"],
                                 "text/plain; charset=utf-8")
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen("http://127.0.0.1:%d/other" % r.port,
                                       timeout=5)
            self.assertEqual(cm.exception.code, 404)
            cm.exception.close()

            async def talk():
                with self.assertRaises(
                        websockets.exceptions.InvalidStatusCode) as cm:
                    async with websockets.connect(
                            url(r.port), origin="http://evil.example"):
                        pass
                self.assertEqual(cm.exception.status_code, 403)
                async with websockets.connect(
                        url(r.port), origin="http://good.example") as ws:
                    await ws.ping()
            arun(talk())


class TestExamples(unittest.TestCase):

    def test_bot_answers_time_and_echo(self):
        child = Child([sys.executable,
                       os.path.join(ROOT, "bindings", "python", "examples",
                                    "bot.py"), "--port", "0"],
                      r"bot: listening on 127\.0\.0\.1:(\d+)\n")
        try:
            async def talk():
                async with websockets.connect(url(child.port)) as a:
                    self.assertEqual(await a.recv(), "* user1 joined lobby")
                    async with websockets.connect(url(child.port)) as b:
                        self.assertEqual(await b.recv(),
                                         "* user2 joined lobby")
                        self.assertEqual(await a.recv(),
                                         "* user2 joined lobby")
                        await a.send("!time")
                        for ws in (a, b):
                            self.assertEqual(await ws.recv(),
                                             "user1 said: !time")
                            line = await ws.recv()
                            m = re.fullmatch(r"bot said: (\S+)", line)
                            self.assertIsNotNone(m, line)
                            t = time.mktime(time.strptime(
                                m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
                            self.assertLess(abs(t - time.mktime(
                                time.gmtime())), 5)
                        await b.send("!echo hello,  world")
                        for ws in (a, b):
                            self.assertEqual(await ws.recv(),
                                             "user2 said: !echo hello,  world")
                            self.assertEqual(await ws.recv(),
                                             "bot said: hello,  world")
                        await b.send("/nick BOT")
                        self.assertEqual(await b.recv(),
                                         "* error: name taken")
                        await b.send("just talking")
                        self.assertEqual(await a.recv(),
                                         "user2 said: just talking")
                        self.assertEqual(await b.recv(),
                                         "user2 said: just talking")
                    self.assertEqual(await a.recv(), "* user2 left lobby")
                    result = await asyncio.to_thread(child.stop)
                    await a.wait_closed()
                    self.assertEqual(a.close_code, 1001)
                    return result
            rc, elapsed, out, err = arun(talk())
            self.assertEqual((rc, out, err), (0, "", ""))
        finally:
            child.close()

    def test_readme_python_example(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            m = re.search(r"<!-- python-readme-example:[^>]*-->\s*"
                          r"```python\n(.*?)```", f.read(), re.S)
        self.assertIsNotNone(m, "README has no marked Python example")
        with tempfile.TemporaryDirectory() as tmp:
            app = os.path.join(tmp, "app.py")
            with open(app, "w", encoding="utf-8") as f:
                f.write(m.group(1))
            child = Child([sys.executable, app, "0"],
                          r"listening on port (\d+)\n")
            try:
                async def talk():
                    async with websockets.connect(url(child.port),
                                                  max_size=None) as ws:
                        await readme_echo_exchange(ws, self)
                arun(talk())
                rc, elapsed, out, err = child.stop(signal.SIGTERM)
                self.assertEqual((rc, out, err), (0, "", ""))
            finally:
                child.close()


if __name__ == "__main__":
    unittest.main()
