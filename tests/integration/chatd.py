"""chatd - start and stop build/cmd/wschatd and talk to it, for the chat
integration suites (test_chat_json.py, test_chat_text.py,
test_chat_load.py).

The binary is $BUILD/cmd/wschatd ($BUILD defaults to "build"; a relative
BUILD is taken from the repository root). Each server is started with
`--host 127.0.0.1 --port 0` plus the test's flags, and its port is parsed
from the one flushed stdout line "wschatd: serving http://127.0.0.1:PORT/".
stop() sends SIGTERM and asserts exit status 0 (within 2 s by default: the
contract); a server that died during a test is reported with its signal and
stderr.

Clients are Debian's python3-websockets (10.4, asyncio API):
  JClient - the JSON dialect (subprotocol wschat.v1.json): every frame is
            decoded and checked to be one JSON object with a string "type";
  TClient - the text dialect (no subprotocol): every frame is a text line.
Both keep a log of what they received, for failure messages.

The PROTOCOL leaves a few things open, and these helpers tolerate exactly
those, nothing else:
  - whether the actor itself also receives the room notice it caused
    (its own `joined` / `renamed` / `left` in JSON; "* NAME joined ROOM",
    "* OLD is now NEW", "* NAME left ROOM" in text);
  - whether requests other than say/nick are answered with an `ack` too
    (only an ack carrying the request's own ref is tolerated, see
    JClient.tolerate_acks).
"""

import asyncio
import json
import os
import re
import time
import unittest
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed

from serverproc import ServerProcess, build_dir, stop_all

LINE_RE = re.compile(r"^wschatd: serving http://127\.0\.0\.1:(\d+)/\n$")

PROTO = "wschat.v1.json"
TIMEOUT = 5.0          # one expected frame
QUIET = 0.3            # "nothing more arrives" window


def chatd_binary():
    return os.path.join(build_dir(), "cmd", "wschatd")


# ---------------------------------------------------------------- server

class ChatServer(ServerProcess):
    name = "wschatd"
    LINE_RE = LINE_RE
    stop_timeout = 2.0  # the contract

    def __init__(self, *flags, start_timeout=5.0):
        self.flags = [str(f) for f in flags]
        super().__init__([chatd_binary(), "--host", "127.0.0.1", "--port",
                          "0"] + self.flags, start_timeout)

    def parse(self, m):
        self.host = "127.0.0.1"
        self.port = int(m.group(1))
        self.http_uri = "http://127.0.0.1:%d" % self.port
        self.ws_uri = "ws://127.0.0.1:%d/chat" % self.port

    def http_get(self, path, timeout=5.0):
        """(status, body bytes) of a plain GET."""
        try:
            with urllib.request.urlopen(self.http_uri + path,
                                        timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metric(self, name):
        """Sum of every sample of metric `name` (any labels) in /metrics,
        or None when the name is absent."""
        status, body = self.http_get("/metrics")
        assert status == 200, "/metrics answered %d" % status
        total = None
        for line in body.decode("utf-8", "replace").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)",
                         line)
            if m and m.group(1) == name:
                total = (total or 0) + float(m.group(3))
        return total


# ---------------------------------------------------------------- clients

def now_ms():
    return int(time.time() * 1000)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_ts(obj, slack_ms=10000):
    ts = obj.get("ts")
    assert is_int(ts), "ts must be an integer (ms): %r" % (obj,)
    assert abs(ts - now_ms()) < slack_ms, \
        "ts %r is not near now (%d): %r" % (ts, now_ms(), obj)


def short(o, n=300):
    s = repr(o)
    return s if len(s) <= n else s[:n] + "..."


async def ws_connect(srv, subprotocols=None, **kw):
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 3)
    kw.setdefault("ping_interval", None)
    return await websockets.connect(srv.ws_uri, subprotocols=subprotocols,
                                    **kw)


class _Base:
    def __init__(self, ws, label):
        self.ws = ws
        self.label = label
        self.log = []         # everything received, in order
        self.pending = []     # received, not yet consumed
        self.name = None

    async def _recv_raw(self, timeout):
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return None
        except ConnectionClosed as e:
            raise AssertionError(
                "%s: connection closed (%s) while waiting; received so far:"
                "\n  %s" % (self.label, e, self.history_text()))
        return data

    def history_text(self, n=12):
        return "\n  ".join(short(x) for x in self.log[-n:]) or "(nothing)"

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass

    def abort(self):
        """Drop the TCP connection without a close handshake."""
        self.ws.transport.abort()

    async def wait_closed(self, timeout=5.0):
        """Wait for the server to close; returns (code, frames received
        meanwhile)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: not closed within %.1fs; got %s"
                                     % (self.label, timeout, short(got)))
            try:
                data = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            except ConnectionClosed as e:
                rcvd = e.rcvd
                return (rcvd.code if rcvd is not None else None), got
            got.append(data)


class JClient(_Base):
    """A JSON-dialect client. expect()/next() skip the tolerated frames
    (see the module doc); everything else must match."""

    def __init__(self, ws, label):
        super().__init__(ws, label)
        self.welcome = None
        self.tolerate_acks = set()   # refs whose extra ack is tolerated

    @classmethod
    async def connect(cls, srv, label="client", welcome=True, **kw):
        ws = await ws_connect(srv, subprotocols=[PROTO], **kw)
        c = cls(ws, label)
        assert ws.subprotocol == PROTO, \
            "server did not select %s: %r" % (PROTO, ws.subprotocol)
        if welcome:
            w = await c.recv()
            assert w["type"] == "welcome", \
                "%s: first frame is not welcome: %r" % (label, w)
            c.welcome = w
            c.name = w.get("name")
            c.label = "%s(%s)" % (label, c.name)
        return c

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, text):
        await self.ws.send(text)

    def _decode(self, data):
        assert isinstance(data, str), \
            "%s: JSON dialect sent a binary frame %r" % (self.label,
                                                         data[:100])
        try:
            obj = json.loads(data)
        except ValueError:
            raise AssertionError("%s: frame is not JSON: %r"
                                 % (self.label, data[:300]))
        assert isinstance(obj, dict) and isinstance(obj.get("type"), str), \
            "%s: frame is not an object with a string type: %r" % (
                self.label, data[:300])
        return obj

    async def recv(self, timeout=TIMEOUT):
        """The next frame, tolerated ones included. Times out with an
        AssertionError."""
        if self.pending:
            return self.pending.pop(0)
        data = await self._recv_raw(timeout)
        if data is None:
            raise AssertionError("%s: nothing received within %.1fs; last "
                                 "frames:\n  %s" % (self.label, timeout,
                                                    self.history_text()))
        obj = self._decode(data)
        self.log.append(obj)
        return obj

    def tolerated(self, o):
        t = o["type"]
        if t in ("joined", "left") and o.get("name") == self.name and \
                self.name is not None:
            return True
        if t == "renamed" and self.name is not None and \
                self.name in (o.get("from"), o.get("to")):
            return True
        if t == "ack" and o.get("ref") in self.tolerate_acks and \
                "id" not in o:
            return True
        return False

    async def next(self, timeout=TIMEOUT):
        """The next frame that is not a tolerated one."""
        while True:
            o = await self.recv(timeout)
            if not self.tolerated(o):
                return o

    async def expect(self, type_, timeout=TIMEOUT, **fields):
        o = await self.next(timeout)
        assert o["type"] == type_, \
            "%s: expected %s %s, got %r; last frames:\n  %s" % (
                self.label, type_, fields or "", o, self.history_text())
        for k, v in fields.items():
            assert o.get(k) == v, "%s: expected %s.%s == %r, got %r" % (
                self.label, type_, k, v, o)
        return o

    async def expect_error(self, code, ref=None, timeout=TIMEOUT,
                           check_ref=True):
        o = await self.next(timeout)
        assert o["type"] == "error", \
            "%s: expected error %s, got %r" % (self.label, code, o)
        codes = code if isinstance(code, (set, tuple, list)) else {code}
        assert o.get("code") in codes, \
            "%s: expected error code %s, got %r" % (self.label, code, o)
        assert isinstance(o.get("message"), str), \
            "%s: error without a message string: %r" % (self.label, o)
        if check_ref:
            if ref is None:
                assert o.get("ref") is None, \
                    "%s: error carries a ref the request lacked: %r" % (
                        self.label, o)
            else:
                assert o.get("ref") == ref, \
                    "%s: error ref %r, want %r: %r" % (self.label,
                                                       o.get("ref"), ref, o)
        return o

    async def quiet(self, seconds=QUIET, tolerate=True):
        """Every frame that arrives until none has for `seconds`
        (tolerated frames dropped when tolerate)."""
        got = []
        while self.pending:
            got.append(self.pending.pop(0))
        while True:
            data = await self._recv_raw(seconds)
            if data is None:
                break
            o = self._decode(data)
            self.log.append(o)
            got.append(o)
        if tolerate:
            got = [o for o in got if not self.tolerated(o)]
        return got

    async def assert_nothing(self, seconds=QUIET, what=""):
        got = await self.quiet(seconds)
        assert not got, "%s: expected nothing%s, got %s" % (
            self.label, (" " + what) if what else "", short(got, 800))

    # -- requests ---------------------------------------------------------

    async def join(self, room, since=None, ref=None):
        """join; returns (members, history) sent to the joiner, in any
        order."""
        req = {"type": "join", "room": room}
        if since is not None:
            req["since"] = since
        if ref is not None:
            req["ref"] = ref
            self.tolerate_acks.add(ref)
        await self.send(req)
        members = history = None
        stash = []     # other frames stay pending, in order
        while members is None or history is None:
            o = await self.next()
            if o["type"] == "members" and members is None and \
                    o.get("room") == room:
                members = o
            elif o["type"] == "history" and history is None and \
                    o.get("room") == room:
                history = o
            elif o["type"] in ("error", "ack"):
                raise AssertionError(
                    "%s: after join %s expected members and history, got "
                    "%r" % (self.label, room, o))
            else:
                stash.append(o)
        self.pending = stash + self.pending
        assert members.get("room") == room, "members for %r: %r" % (room,
                                                                    members)
        assert history.get("room") == room, "history for %r: %r" % (room,
                                                                    history)
        names = members.get("names")
        assert isinstance(names, list) and \
            all(isinstance(n, str) for n in names), \
            "members.names must be an array of strings: %r" % (members,)
        assert names == sorted(names), "members not sorted: %r" % (names,)
        assert self.name in names, "%s missing from own members list %r" % (
            self.name, names)
        check_history_shape(history, room)
        return members, history

    async def say(self, room, text, ref=None):
        """say; returns (ack, message echoed to the sender), whichever
        order they come in."""
        req = {"type": "say", "room": room, "text": text}
        if ref is not None:
            req["ref"] = ref
        await self.send(req)
        ack = msg = None
        stash = []     # other frames stay pending, in order
        while ack is None or msg is None:
            o = await self.next()
            if o["type"] == "ack" and ack is None:
                ack = o
            elif o["type"] == "message" and msg is None and \
                    o.get("from") == self.name and o.get("text") == text:
                msg = o
            elif o["type"] in ("error", "ack"):
                raise AssertionError(
                    "%s: after say %r expected ack and own message, got %r"
                    % (self.label, text, o))
            else:
                stash.append(o)
        self.pending = stash + self.pending
        check_message(msg, room, self.name, text)
        assert ack.get("ref") == ref, "ack ref %r, want %r: %r" % (
            ack.get("ref"), ref, ack)
        assert ack.get("id") == msg["id"], \
            "ack id %r differs from the message id %r" % (ack.get("id"),
                                                          msg["id"])
        return ack, msg

    async def nick(self, name, ref=None):
        req = {"type": "nick", "name": name}
        if ref is not None:
            req["ref"] = ref
        await self.send(req)
        ack = await self.expect("ack")
        assert ack.get("ref") == ref, "ack ref %r, want %r" % (
            ack.get("ref"), ref)
        # Our own `renamed`, if the server sends it, is tolerated before
        # the ack (from == old name) and after it (to == new name).
        self.name = name
        return ack


def check_message(m, room, sender, text):
    assert m.get("type") in ("message", None), "not a message: %r" % (m,)
    assert is_int(m.get("id")), "message id must be an integer: %r" % (m,)
    assert m.get("room") == room, "message room %r, want %r: %r" % (
        m.get("room"), room, m)
    assert m.get("from") == sender, "message from %r, want %r: %r" % (
        m.get("from"), sender, m)
    assert m.get("text") == text, "message text %r, want %r" % (
        m.get("text"), text)
    check_ts(m, slack_ms=600000)


def check_history_shape(h, room):
    assert h.get("type") == "history", h
    assert h.get("room") == room, h
    msgs = h.get("messages")
    assert isinstance(msgs, list), "history.messages not an array: %r" % h
    assert isinstance(h.get("complete"), bool), \
        "history.complete not a boolean: %r" % (h,)
    ids = []
    for m in msgs:
        assert isinstance(m, dict), "history entry not an object: %r" % (m,)
        assert is_int(m.get("id")) and m.get("room") == room and \
            isinstance(m.get("from"), str) and \
            isinstance(m.get("text"), str) and is_int(m.get("ts")), \
            "history entry is not a message object: %r" % (m,)
        ids.append(m["id"])
    assert ids == sorted(set(ids)), \
        "history ids not strictly increasing (oldest first): %r" % (ids,)


class TClient(_Base):
    """A text-dialect client: frames are text lines."""

    def __init__(self, ws, label):
        super().__init__(ws, label)
        self.ignore = set()   # exact lines tolerated (self notices)

    @classmethod
    async def connect(cls, srv, name, label="text", **kw):
        """name: the user<N> the server should assign (only used to
        tolerate its own join notice)."""
        ws = await ws_connect(srv, **kw)
        assert ws.subprotocol is None, \
            "server picked a subprotocol for a text client: %r" % (
                ws.subprotocol,)
        c = cls(ws, "%s(%s)" % (label, name))
        c.name = name
        c.ignore.add("* %s joined lobby" % name)
        return c

    async def send(self, line):
        await self.ws.send(line)

    def _decode(self, data):
        assert isinstance(data, str), \
            "%s: text dialect sent a binary frame %r" % (self.label,
                                                         data[:100])
        return data

    async def recv(self, timeout=TIMEOUT):
        if self.pending:
            return self.pending.pop(0)
        data = await self._recv_raw(timeout)
        if data is None:
            raise AssertionError("%s: nothing received within %.1fs; last "
                                 "lines:\n  %s" % (self.label, timeout,
                                                   self.history_text()))
        line = self._decode(data)
        self.log.append(line)
        return line

    async def next(self, timeout=TIMEOUT):
        while True:
            line = await self.recv(timeout)
            if line not in self.ignore:
                return line

    async def expect(self, line, timeout=TIMEOUT):
        got = await self.next(timeout)
        assert got == line, "%s: expected %r, got %r; last lines:\n  %s" % (
            self.label, line, got, self.history_text())
        return got

    async def quiet(self, seconds=QUIET, tolerate=True):
        got = []
        while self.pending:
            got.append(self.pending.pop(0))
        while True:
            data = await self._recv_raw(seconds)
            if data is None:
                break
            line = self._decode(data)
            self.log.append(line)
            got.append(line)
        if tolerate:
            got = [x for x in got if x not in self.ignore]
        return got

    async def assert_nothing(self, seconds=QUIET, what=""):
        got = await self.quiet(seconds)
        assert not got, "%s: expected nothing%s, got %r" % (
            self.label, (" " + what) if what else "", got)


# ---------------------------------------------------------------- tests

def async_test(timeout=60):
    """Run an async test method in a fresh event loop (not
    IsolatedAsyncioTestCase: it forces asyncio debug mode). Clients made
    with self.jclient()/self.tclient() are closed when it returns."""
    def deco(coro_fn):
        def wrapper(self):
            async def main():
                self._clients = []
                try:
                    await asyncio.wait_for(coro_fn(self), timeout)
                finally:
                    await asyncio.gather(*(c.close() for c in self._clients),
                                         return_exceptions=True)
            asyncio.run(main())
        wrapper.__name__ = coro_fn.__name__
        wrapper.__doc__ = coro_fn.__doc__
        return wrapper
    return deco


class ChatCase(unittest.TestCase):
    """Tests start servers with self.server(*flags); tearDown stops each
    one with SIGTERM and asserts exit status 0 within 2 s."""

    def setUp(self):
        self.servers = []
        self._clients = []

    def server(self, *flags):
        s = ChatServer(*flags)
        self.servers.append(s)
        return s

    async def jclient(self, srv, label="client", **kw):
        c = await JClient.connect(srv, label, **kw)
        self._clients.append(c)
        return c

    async def tclient(self, srv, name, label="text", **kw):
        c = await TClient.connect(srv, name, label, **kw)
        self._clients.append(c)
        return c

    def tearDown(self):
        errors = stop_all(self.servers)
        if errors:
            self.fail("\n".join(errors))
