"""The integration run `make test-valgrind` puts the servers through, with
tests/valgrind/run.sh setting WSCHAT_TEST_WRAPPER so that each server
starts under valgrind (see tests/integration/serverproc.py).

It drives build/.../examples/echo and wschatd with real clients (Debian's
python3-websockets) and raw sockets (tests/integration/rawws.py):
handshakes good and bad, both chat dialects with their commands and
errors, plain HTTP, a client that vanishes mid-frame, large and
fragmented messages, protocol violations, and then a SIGTERM with
clients still connected. Every server must exit with status 0 after the
SIGTERM: valgrind's --error-exitcode turns any memory error, or a
definite or indirect leak, into a non-zero status, and run.sh also reads
valgrind's logs. Each step asserts what the server answers, so the run
also fails if the server misbehaves under valgrind.

Run through run.sh (it sets the wrapper and checks the logs); run alone it
tests the servers without valgrind.
"""

import asyncio
import json
import os
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import websockets  # noqa: E402

import rawws  # noqa: E402
from chatd import ChatCase, async_test, check_message  # noqa: E402
from echoserver import EchoServer  # noqa: E402

# Frames take longer to come back from a server under valgrind.
SLOW = 30.0


class TestEchoUnderValgrind(unittest.TestCase):

    def setUp(self):
        # 2 MiB messages, so a 1 MiB one is echoed and a 3 MiB one is not.
        self.srv = EchoServer("--max-message", str(2 << 20))

    def tearDown(self):
        try:
            self.srv.stop()
        finally:
            self.srv.cleanup()

    def raw(self, **kw):
        return rawws.connect(self.srv.port, timeout=SLOW, **kw)

    def test_echo_session(self):
        port = self.srv.port

        async def clients():
            uri = "ws://127.0.0.1:%d/" % port
            async with websockets.connect(uri, compression=None,
                                          max_size=None, open_timeout=SLOW,
                                          ping_interval=None) as ws:
                await ws.send("hello, é €")
                self.assertEqual(await asyncio.wait_for(ws.recv(), SLOW),
                                 "hello, é €")
                await ws.send(b"\x00\x01\xfe\xff")
                self.assertEqual(await asyncio.wait_for(ws.recv(), SLOW),
                                 b"\x00\x01\xfe\xff")
                big = os.urandom(1 << 20)
                await ws.send(big)
                self.assertEqual(await asyncio.wait_for(ws.recv(), SLOW),
                                 big)
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, SLOW)
                # Sent in fragments, echoed whole.
                await ws.send(iter(["frag", "ment", "ed"]))
                self.assertEqual(await asyncio.wait_for(ws.recv(), SLOW),
                                 "fragmented")
            self.assertEqual(ws.close_code, 1000)

        asyncio.run(clients())

        # Bad handshakes: each answered, each connection's memory freed.
        c = rawws.RawWS("127.0.0.1", port, SLOW)
        r = c.handshake(expect_status=400, omit=("sec-websocket-key",))
        self.assertEqual(r.status, 400)
        c.close()
        c = rawws.RawWS("127.0.0.1", port, SLOW)
        r = c.handshake(expect_status=426, version="8")
        self.assertEqual(r.get("Sec-WebSocket-Version"), "13")
        c.close()
        c = rawws.RawWS("127.0.0.1", port, SLOW)
        c.send(b"GARBAGE\r\n\r\n")
        self.assertEqual(c.read_http_response().status, 400)
        c.close()

        # Protocol violations close with the RFC's codes.
        c = self.raw()
        c.send_text("x", mask=False)
        c.expect_close(1002, reply=True, eof_timeout=SLOW)
        c.close()
        c = self.raw()
        c.send_frame(rawws.OP_TEXT, b"\xc3\x28")
        c.expect_close(1007, reply=True, eof_timeout=SLOW)
        c.close()
        c = self.raw()
        c.send_frame(rawws.OP_BINARY, b"", length=3 << 20)
        c.expect_close(1009, reply=True, eof_timeout=SLOW)
        c.close()

        # A fragmented message whose sender vanishes (RST) half-way
        # through: the reassembly buffer must be freed.
        c = self.raw()
        c.send_frame(rawws.OP_TEXT, "first part ", fin=False)
        c.send(rawws.encode_frame(rawws.OP_CONT, b"y" * 5000)[:300])
        c.abort()
        # A client that leaves mid-handshake.
        c = rawws.RawWS("127.0.0.1", port, SLOW)
        c.send(rawws.build_request()[0][:40])
        c.abort()

        # The server still works, then is stopped with sessions open
        # (closed with 1001 by the shutdown).
        left_open = [self.raw() for _ in range(3)]
        for i, c in enumerate(left_open):
            c.send_text("still here %d" % i)
            self.assertEqual(c.recv_message().payload,
                             b"still here %d" % i)
        self.srv.stop()
        for c in left_open:
            c.expect_close(1001, eof_timeout=SLOW)
            c.close()


class TestChatdUnderValgrind(ChatCase):

    @async_test(timeout=600)
    async def test_json_dialect(self):
        srv = self.server("--history", "20")
        a = await self.jclient(srv, "a", open_timeout=SLOW)
        b = await self.jclient(srv, "b", open_timeout=SLOW)
        c = await self.jclient(srv, "c", open_timeout=SLOW)
        await a.join("main")
        await b.join("main")
        await a.expect("joined", room="main", name=b.name)

        ack, msg = await a.say("main", "hello é €", ref="r1")
        await b.expect("message", id=msg["id"], text="hello é €")
        # The longest text allowed, and one byte more.
        await b.say("main", "x" * 4096)
        await a.expect("message", text="x" * 4096)
        await a.send({"type": "say", "room": "main", "text": "x" * 4097,
                      "ref": "long"})
        await a.expect_error("too_long", "long")

        await a.send({"type": "whisper", "to": c.name, "text": "psst"})
        for x in (a, c):
            await x.expect("whisper", **{"from": a.name}, to=c.name,
                           text="psst")
        await b.assert_nothing(what="for a whisper between others")

        old = a.name
        await a.nick("alice", ref="n1")
        await b.expect("renamed", **{"from": old}, to="alice")
        await c.send({"type": "nick", "name": "ALICE", "ref": "n2"})
        await c.expect_error("name_taken", "n2")

        await c.send({"type": "history", "room": "main", "limit": 5})
        h = await c.expect("history", room="main")
        self.assertEqual([m["text"] for m in h["messages"]],
                         ["hello é €", "x" * 4096])
        await b.send({"type": "who", "room": "main"})
        await b.expect("members", room="main", names=sorted(["alice",
                                                             b.name]))
        await c.send({"type": "rooms"})
        r = await c.expect("rooms")
        self.assertIn({"room": "main", "members": 2}, r["rooms"])

        # Enough broadcasts to both members for the server to register
        # their sockets with its io_uring (from a session's fourth batched
        # send on); b's close at the end takes its socket out again.
        for i in range(6):
            await a.say("main", "r%d" % i, ref="r%d" % i)
            await b.expect("message", text="r%d" % i)

        # Errors of every kind, each answered and the session kept.
        await c.send_raw("{not json")
        await c.expect_error("bad_json")
        await c.send({"type": "fly"})
        await c.expect_error("unknown_type")
        await c.send({"type": "say", "room": "main"})
        await c.expect_error("bad_request")
        await c.send({"type": "join", "room": "no spaces"})
        await c.expect_error("invalid_room")
        await c.send({"type": "say", "room": "main", "text": "hi",
                      "ref": "x"})
        await c.expect_error("not_in_room", "x")
        await c.send({"type": "whisper", "to": "nobody", "text": "hi"})
        await c.expect_error("no_such_user")

        await b.send({"type": "leave", "room": "main"})
        await a.expect("left", room="main", name=b.name)

        # A client in a room vanishes without a close handshake.
        await c.join("main")
        await a.expect("joined", room="main", name=c.name)
        c.abort()
        await a.expect("left", room="main", name=c.name, timeout=SLOW)

        # A message over --max-message (64 KiB) ends the session with
        # 1009.
        await b.send_raw(json.dumps({"type": "say", "room": "main",
                                     "text": "y" * 70000}))
        code, _ = await b.wait_closed(SLOW)
        self.assertEqual(code, 1009)

        # a stays connected: the SIGTERM of tearDown closes it.

    @async_test(timeout=600)
    async def test_text_dialect_and_http(self):
        srv = self.server()
        t1 = await self.tclient(srv, "user1", open_timeout=SLOW)
        t2 = await self.tclient(srv, "user2", open_timeout=SLOW)
        await t1.expect("* user2 joined lobby")
        await t1.send("hi")
        for t in (t1, t2):
            await t.expect("user1 said: hi")
        t1.ignore.add("* user1 is now tim")
        await t1.send("/nick tim")
        await t1.expect("* you are now tim")
        await t2.expect("* user1 is now tim")
        await t2.send("/nick tim")
        await t2.expect("* error: name taken")
        await t1.send("/who")
        await t1.expect("* in lobby: tim, user2")
        await t1.send("/msg user2 secret")
        for t in (t1, t2):
            await t.expect("tim whispers: secret")
        await t2.send("//slash")
        for t in (t1, t2):
            await t.expect("user2 said: /slash")
        await t1.send("/help")
        helped = await t1.quiet(seconds=1.0)
        self.assertTrue(helped and all(x.startswith("* ") for x in helped),
                        helped)
        t1.ignore.update(["* tim left lobby", "* tim joined dev"])
        await t1.send("/join dev")
        await t2.expect("* tim left lobby")
        await t2.send("/rooms")
        await t2.expect("* rooms: lobby (1), dev (1)")

        # A JSON client in the text client's room.
        j = await self.jclient(srv, "j", open_timeout=SLOW)
        await j.join("lobby")
        await t2.expect("* %s joined lobby" % j.name)
        await t2.send("mixed")
        await t2.expect("user2 said: mixed")
        m = await j.expect("message", room="lobby")
        check_message(m, "lobby", "user2", "mixed")

        # Plain HTTP on the same port.
        for path, status in (("/healthz", 200), ("/metrics", 200),
                             ("/", 200), ("/no/such/file", 404)):
            got, body = await asyncio.to_thread(srv.http_get, path, SLOW)
            self.assertEqual(got, status, (path, body[:200]))
        # A bad handshake on /chat and a client gone mid-handshake.
        c = rawws.RawWS("127.0.0.1", srv.port, SLOW)
        r = c.handshake(path="/chat", expect_status=400,
                        omit=("sec-websocket-key",))
        self.assertEqual(r.status, 400)
        c.close()
        c = rawws.RawWS("127.0.0.1", srv.port, SLOW)
        c.send(rawws.build_request(path="/chat")[0][:50])
        c.abort()
        # A raw client that vanishes in the middle of a frame.
        c = rawws.connect(srv.port, timeout=SLOW, path="/chat")
        await t2.expect("* user4 joined lobby", timeout=SLOW)
        c.send(rawws.encode_frame(rawws.OP_TEXT, b"z" * 2000)[:100])
        c.abort()
        await t2.expect("* user4 left lobby", timeout=SLOW)
        try:
            socket.create_connection(("127.0.0.1", srv.port), 5).close()
        except OSError as e:
            self.fail("server stopped accepting: %s" % e)
        # The text clients stay connected until the SIGTERM.


if __name__ == "__main__":
    unittest.main()
