"""wschatd's JSON dialect (subprotocol wschat.v1.json) against
/work/shared/PROTOCOL.md, with Debian's python3-websockets (10.4).

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_chat_json.py

Each test starts its own wschatd on port 0 and stops it with SIGTERM,
asserting exit status 0 within 2 s (chatd.ChatCase).
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatd import (ChatCase, async_test, check_history_shape,  # noqa: E402
                   check_message, check_ts, is_int, short)

NAME32 = "Az09_.-x" * 4          # 32 bytes of the allowed set


def texts(msgs):
    return [m["text"] for m in msgs]


def ids(msgs):
    return [m["id"] for m in msgs]


class TestWelcome(ChatCase):

    @async_test()
    async def test_welcome_fields_defaults(self):
        srv = self.server()
        c1 = await self.jclient(srv, "c1")
        w = c1.welcome
        self.assertEqual(w["name"], "user1", w)
        self.assertIsInstance(w.get("server"), str, w)
        self.assertTrue(w["server"].startswith("wschatd/"), w)
        self.assertRegex(w["server"], r"^wschatd/\d+\.\d+\.\d+", w)
        lim = w.get("limits")
        self.assertIsInstance(lim, dict, w)
        self.assertEqual(lim.get("text"), 4096, w)
        self.assertEqual(lim.get("rate"), 20, w)
        c2 = await self.jclient(srv, "c2")
        self.assertEqual(c2.welcome["name"], "user2", c2.welcome)
        # A JSON session is in no room until it joins: nothing follows
        # the welcome, and the server has no room yet.
        await c1.assert_nothing(what="after welcome")
        await c2.assert_nothing(what="after welcome")
        await c1.send({"type": "rooms"})
        r = await c1.expect("rooms")
        self.assertIsInstance(r.get("rooms"), list, r)
        # (A server may list a permanent empty room such as lobby.)
        self.assertEqual([x for x in r["rooms"] if x.get("members") != 0],
                         [], r)

    @async_test()
    async def test_welcome_limits_follow_flags(self):
        srv = self.server("--max-text", "10", "--rate", "2")
        c = await self.jclient(srv)
        self.assertEqual(c.welcome.get("limits", {}).get("text"), 10,
                         c.welcome)
        self.assertEqual(c.welcome.get("limits", {}).get("rate"), 2,
                         c.welcome)


class TestRequests(ChatCase):

    async def named(self, srv, name):
        c = await self.jclient(srv, name)
        await c.nick(name)
        c.label = name
        return c

    @async_test()
    async def test_join_members_history(self):
        srv = self.server()
        zed = await self.named(srv, "zed")
        amy = await self.named(srv, "amy")
        mia = await self.named(srv, "mia")
        m, h = await zed.join("r1", ref="j1")
        self.assertEqual(m["names"], ["zed"])
        self.assertEqual(h["messages"], [])
        self.assertIs(h["complete"], True, h)
        m, h = await amy.join("r1")
        self.assertEqual(m["names"], ["amy", "zed"])
        self.assertEqual(h["messages"], [])
        j = await zed.expect("joined", room="r1", name="amy")
        check_ts(j)
        m, h = await mia.join("r1")
        self.assertEqual(m["names"], ["amy", "mia", "zed"])
        for c in (zed, amy):
            j = await c.expect("joined", room="r1", name="mia")
            check_ts(j)
        # A joined event goes only to that room's members.
        await amy.join("other")
        for c in (zed, mia):
            await c.assert_nothing(what="for a join to another room")
        await amy.assert_nothing()

    @async_test()
    async def test_say_message_and_ack(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        await a.join("r1")
        await b.join("r1")
        await a.expect("joined", room="r1", name=b.name)
        await c.join("r2")
        t0 = int(time.time() * 1000)
        ack, msg = await a.say("r1", "hello", ref="s1")
        self.assertEqual(ack["ref"], "s1")
        self.assertEqual(set(ack) & {"type", "ref", "id"},
                         {"type", "ref", "id"})
        got = await b.expect("message", room="r1", text="hello")
        check_message(got, "r1", a.name, "hello")
        self.assertEqual(got["id"], ack["id"])
        self.assertEqual(got["ts"], msg["ts"])
        t1 = int(time.time() * 1000)
        self.assertTrue(t0 - 2000 <= got["ts"] <= t1 + 2000,
                        "ts %d not within [%d, %d]" % (got["ts"], t0, t1))
        await c.assert_nothing(what="for a message in another room")

        # Text round-trips exactly (JSON escapes, non-ASCII, newlines).
        for t in ('say "hi" \\ back', "héllo € 𝄞", "line1\nline2\ttab",
                  "</script><b>", " spaced "):
            with self.subTest(text=t):
                ack, msg = await a.say("r1", t)
                self.assertIsNone(ack.get("ref"), ack)
                got = await b.expect("message")
                check_message(got, "r1", a.name, t)
                self.assertEqual(got["id"], ack["id"])

        # ids strictly increasing per room, r1 and r2 interleaved; each
        # sender gets its own message back (sender included).
        await c.join("r1")
        await a.expect("joined", name=c.name)
        await b.expect("joined", name=c.name)
        r1_ids = [ack["id"]]
        r2_ids = []
        for i in range(6):
            ack, _ = await b.say("r1", "b%d" % i, ref="b%d" % i)
            r1_ids.append(ack["id"])
            for other in (a, c):
                got = await other.expect("message", text="b%d" % i)
                self.assertEqual(got["id"], ack["id"])
            ack, _ = await c.say("r2", "c%d" % i)
            r2_ids.append(ack["id"])
        for seq in (r1_ids, r2_ids):
            self.assertTrue(all(is_int(x) for x in seq), seq)
            self.assertTrue(all(x < y for x, y in zip(seq, seq[1:])),
                            "ids not strictly increasing: %r" % (seq,))
        await a.assert_nothing(what="from r2")
        await b.assert_nothing(what="from r2")

    @async_test()
    async def test_whisper_only_target_and_sender(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        d = await self.jclient(srv, "d")       # in no room at all
        for x in (a, b, c):
            await x.join("r")
        await a.quiet()
        await b.quiet()
        a.tolerate_acks |= {"w1", "w2"}
        await a.send({"type": "whisper", "to": b.name, "text": "psst",
                      "ref": "w1"})
        for x in (b, a):
            w = await x.expect("whisper", **{"from": a.name}, to=b.name,
                               text="psst")
            check_ts(w)
        await c.assert_nothing(what="for a whisper between others")
        await d.assert_nothing(what="for a whisper between others")
        await a.assert_nothing()
        await b.assert_nothing()
        # A whisper needs no shared room.
        await a.send({"type": "whisper", "to": d.name, "text": "hé €",
                      "ref": "w2"})
        for x in (d, a):
            await x.expect("whisper", **{"from": a.name}, to=d.name,
                           text="hé €")
        for x in (a, b, c, d):
            await x.assert_nothing()

    @async_test()
    async def test_nick_renamed_to_room_members(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        d = await self.jclient(srv, "d")
        await a.join("r1")
        await b.join("r1")
        await a.join("r2")
        await c.join("r2")
        await d.join("r3")
        for x in (a, b, c, d):
            await x.quiet()
        old = a.name
        ack = await a.nick("neo", ref="n1")
        self.assertEqual(ack.get("ref"), "n1")
        for x in (b, c):
            r = await x.expect("renamed", **{"from": old}, to="neo")
            check_ts(r)
            await x.assert_nothing(what="after one renamed")
        await d.assert_nothing(what="for a rename outside its rooms")
        await a.assert_nothing()
        await b.send({"type": "who", "room": "r1"})
        m = await b.expect("members", room="r1")
        self.assertEqual(m["names"], sorted(["neo", b.name]))
        await a.say("r1", "as neo")
        got = await b.expect("message")
        check_message(got, "r1", "neo", "as neo")
        # nick without ref: ack without ref
        ack = await a.nick("neo2")
        self.assertIsNone(ack.get("ref"), ack)

    @async_test()
    async def test_who_and_rooms(self):
        srv = self.server()
        cs = [await self.jclient(srv, "c%d" % i) for i in range(4)]
        names = ["carol", "alice", "dave", "bob"]
        for c, n in zip(cs, names):
            await c.nick(n)
        await cs[0].join("main")
        await cs[1].join("main")
        await cs[2].join("main")
        await cs[3].join("side")
        await cs[0].join("side")
        for c in cs:
            await c.quiet()
        cs[3].tolerate_acks |= {"who1", "rooms1"}
        await cs[3].send({"type": "who", "room": "main", "ref": "who1"})
        m = await cs[3].expect("members", room="main")
        self.assertEqual(m["names"], ["alice", "carol", "dave"])
        await cs[3].send({"type": "who", "room": "side"})
        m = await cs[3].expect("members", room="side")
        self.assertEqual(m["names"], ["bob", "carol"])
        await cs[3].send({"type": "rooms", "ref": "rooms1"})
        r = await cs[3].expect("rooms")
        rooms = r.get("rooms")
        self.assertIsInstance(rooms, list, r)
        # (A server may list a permanent empty room such as lobby.)
        got = sorted(((x.get("room"), x.get("members")) for x in rooms
                      if x.get("members") != 0), key=lambda p: str(p[0]))
        self.assertEqual(got, [("main", 3), ("side", 2)], r)
        await cs[3].assert_nothing()

    @async_test()
    async def test_leave(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        for x in (a, b, c):
            await x.join("r")
        for x in (a, b, c):
            await x.quiet()
        b.tolerate_acks.add("l1")
        await b.send({"type": "leave", "room": "r", "ref": "l1"})
        for x in (a, c):
            ev = await x.expect("left", room="r", name=b.name)
            check_ts(ev)
        await b.assert_nothing(what="after leaving")
        await a.send({"type": "who", "room": "r"})
        m = await a.expect("members", room="r")
        self.assertEqual(m["names"], sorted([a.name, c.name]))
        # b no longer gets the room's messages, and may not speak there.
        await a.say("r", "after b left")
        await c.expect("message", text="after b left")
        await b.assert_nothing(what="after leaving")
        await b.send({"type": "say", "room": "r", "text": "x", "ref": "x1"})
        await b.expect_error("not_in_room", "x1")
        await b.send({"type": "leave", "room": "r", "ref": "x2"})
        await b.expect_error("not_in_room", "x2")
        for x in (a, c):
            await x.assert_nothing()

    @async_test()
    async def test_close_sends_left(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        d = await self.jclient(srv, "d")
        await a.join("r1")
        await b.join("r1")
        await a.join("r2")
        await c.join("r2")
        await d.join("r1")
        for x in (a, b, c, d):
            await x.quiet()
        await a.close()                 # clean close handshake
        ev = await b.expect("left", room="r1", name=a.name)
        check_ts(ev)
        await d.expect("left", room="r1", name=a.name)
        await c.expect("left", room="r2", name=a.name)
        d_name = d.name
        d.abort()                       # TCP dropped, no close frame
        await b.expect("left", room="r1", name=d_name)
        for x in (b, c):
            await x.assert_nothing()
        await b.send({"type": "who", "room": "r1"})
        m = await b.expect("members")
        self.assertEqual(m["names"], [b.name])


class TestHistory(ChatCase):

    async def fill(self, srv, n, room="r"):
        w = await self.jclient(srv, "writer")
        await w.join(room)
        sent = []
        for i in range(n):
            _, msg = await w.say(room, "m%02d" % i)
            sent.append(msg)
        self.assertTrue(all(x < y for x, y in zip(ids(sent), ids(sent[1:]))))
        return w, sent

    async def history(self, c, room, expect_ref=None, **kw):
        req = {"type": "history", "room": room}
        req.update(kw)
        if expect_ref:
            req["ref"] = expect_ref
            c.tolerate_acks.add(expect_ref)
        await c.send(req)
        h = await c.expect("history", room=room)
        check_history_shape(h, room)
        return h

    def same(self, got, want):
        self.assertEqual(ids(got), ids(want))
        self.assertEqual(texts(got), texts(want))
        for g, w in zip(got, want):
            self.assertEqual((g["from"], g["room"], g["ts"]),
                             (w["from"], w["room"], w["ts"]))

    @async_test()
    async def test_history_before_limit_complete(self):
        srv = self.server("--rate", "0", "--history", "200")
        w, sent = await self.fill(srv, 60)
        cases = [
            ({}, sent[10:], False),                        # default 50
            ({"limit": 10}, sent[50:], False),
            ({"limit": 1}, sent[59:], False),
            ({"limit": 200}, sent, True),
            ({"limit": 60}, sent, True),
            ({"before": sent[10]["id"], "limit": 200}, sent[:10], True),
            ({"before": sent[10]["id"], "limit": 10}, sent[:10], True),
            ({"before": sent[30]["id"], "limit": 5}, sent[25:30], False),
            ({"before": sent[30]["id"]}, sent[:30], True),
            ({"before": sent[0]["id"]}, [], True),
            ({"before": sent[59]["id"] + 1000}, sent[10:], False),
        ]
        for i, (kw, want, complete) in enumerate(cases):
            with self.subTest(request=kw):
                h = await self.history(w, "r", expect_ref="h%d" % i, **kw)
                self.same(h["messages"], want)
                self.assertIs(h["complete"], complete,
                              "complete for %r: %r" % (kw, short(h)))
        await w.assert_nothing()

    @async_test()
    async def test_join_without_since_last_50_of_60(self):
        srv = self.server("--rate", "0", "--history", "200")
        w, sent = await self.fill(srv, 60)
        c = await self.jclient(srv, "late")
        _, h = await c.join("r")
        self.same(h["messages"], sent[10:])
        self.assertIs(h["complete"], False, short(h))
        # since: everything after it, nothing lost -> complete
        c2 = await self.jclient(srv, "late2")
        _, h = await c2.join("r", since=sent[54]["id"])
        self.same(h["messages"], sent[55:])
        self.assertIs(h["complete"], True, short(h))
        c3 = await self.jclient(srv, "late3")
        _, h = await c3.join("r", since=sent[59]["id"])
        self.assertEqual(h["messages"], [])
        self.assertIs(h["complete"], True, short(h))

    async def recovery(self, srv, missed):
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        await a.join("r")
        await b.join("r")
        await a.quiet()
        for i in range(3):
            await b.say("r", "before%d" % i)
        seen = [await a.expect("message", text="before%d" % i)
                for i in range(3)]
        n = seen[-1]["id"]
        a_name = a.name
        await a.close()
        await b.expect("left", room="r", name=a_name)
        sent = []
        for i in range(missed):
            _, msg = await b.say("r", "missed%d" % i)
            sent.append(msg)
        a2 = await self.jclient(srv, "a-again")
        _, h = await a2.join("r", since=n)
        await b.expect("joined", room="r", name=a2.name)
        return sent, h, a2, b

    @async_test()
    async def test_reconnect_since_recovers_exactly_the_missed(self):
        srv = self.server()
        sent, h, a2, b = await self.recovery(srv, 5)
        self.same(h["messages"], sent)
        self.assertIs(h["complete"], True, short(h))
        # and live traffic continues after the recovered history
        ack, _ = await b.say("r", "live")
        got = await a2.expect("message", text="live")
        self.assertGreater(got["id"], sent[-1]["id"])

    @async_test()
    async def test_reconnect_since_with_evicted_history(self):
        srv = self.server("--history", "3")
        sent, h, a2, b = await self.recovery(srv, 5)
        self.same(h["messages"], sent[2:])
        self.assertIs(h["complete"], False, short(h))

    @async_test(timeout=60)
    async def test_large_recovery_fits_the_output_bound(self):
        # 24 missed messages of 60 KB (1.4 MB) against the default 1 MiB
        # output bound: the reply holds the newest that fit in half of it,
        # says complete: false, and the client is not closed; paging back
        # with `before` recovers the rest.
        srv = self.server("--max-text", "65536", "--max-message", "1048576",
                          "--rate", "0")
        sent, h, a2, b = await self.recovery(srv, 0)
        big = []
        for i in range(24):
            _, msg = await b.say("r", ("big%02d:" % i) + "x" * 60000)
            big.append(msg)
        a3 = await self.jclient(srv, "a-third")
        _, h = await a3.join("r", since=big[0]["id"] - 1)
        got = h["messages"]
        self.assertIs(h["complete"], False, short(h))
        self.assertGreater(len(got), 0)
        self.assertLess(len(got), 24)
        self.assertLessEqual(sum(len(m["text"]) for m in got), 512 * 1024)
        self.same(got, big[-len(got):])
        while got[0]["id"] > big[0]["id"]:
            await a3.send({"type": "history", "room": "r",
                           "before": got[0]["id"], "limit": 200})
            older = await a3.expect("history", room="r")
            self.assertGreater(len(older["messages"]), 0, short(older))
            got = older["messages"] + got
        self.same([m for m in got if m["id"] >= big[0]["id"]], big)
        # still open and served
        ack, _ = await b.say("r", "after")
        await a3.expect("message", text="after")


class TestErrors(ChatCase):

    @async_test()
    async def test_bad_json(self):
        srv = self.server()
        c = await self.jclient(srv)
        for raw in ("not json", "{", '{"type": "rooms"', "[]",
                    '[{"type": "rooms"}]', "", "\ufeff"):
            with self.subTest(frame=raw):
                await c.send_raw(raw)
                await c.expect_error("bad_json")
                await c.assert_nothing(seconds=0.1)
        # the session is still usable
        await c.send({"type": "rooms"})
        await c.expect("rooms")

    @async_test()
    async def test_binary_frame_is_refused_and_session_stays(self):
        srv = self.server()
        c = await self.jclient(srv)
        t = await self.tclient(srv, "user2")  # the second session
        await c.ws.send(b"\x00\x01binary")
        e = await c.expect_error("bad_json")
        self.assertEqual(e["message"], "binary frames are not accepted")
        await t.ws.send(b"binary")
        await t.expect("* error: binary messages are not accepted")
        await c.send({"type": "rooms"})
        await c.expect("rooms")

    @async_test()
    async def test_bad_request_every_type(self):
        srv = self.server()
        c = await self.jclient(srv)
        await c.join("r")
        cases = [
            # missing fields, one request type after another
            {"type": "join"},
            {"type": "leave"},
            {"type": "say", "text": "x"},
            {"type": "say", "room": "r"},
            {"type": "whisper", "text": "x"},
            {"type": "whisper", "to": c.name},
            {"type": "nick"},
            {"type": "history"},
            {"type": "who"},
            # wrongly typed fields
            {"type": "join", "room": 5},
            {"type": "join", "room": "r2", "since": "x"},
            {"type": "leave", "room": ["r"]},
            {"type": "say", "room": "r", "text": 5},
            {"type": "say", "room": "r", "text": None},
            {"type": "say", "room": {"r": 1}, "text": "x"},
            {"type": "whisper", "to": 5, "text": "x"},
            {"type": "whisper", "to": c.name, "text": ["x"]},
            {"type": "nick", "name": 5},
            {"type": "history", "room": "r", "before": "x"},
            {"type": "history", "room": "r", "limit": "5"},
            {"type": "history", "room": "r", "limit": 0},
            {"type": "history", "room": "r", "limit": 201},
            {"type": "history", "room": "r", "limit": -1},
            {"type": "who", "room": 5},
        ]
        for i, req in enumerate(cases):
            req = dict(req, ref="br%d" % i)
            with self.subTest(request=req):
                await c.send(req)
                await c.expect_error("bad_request", "br%d" % i)
                await c.assert_nothing(seconds=0.1)
        # the limits' edges are accepted
        for lim in (1, 200):
            await c.send({"type": "history", "room": "r", "limit": lim})
            await c.expect("history", room="r")

    @async_test()
    async def test_ref_limits(self):
        srv = self.server()
        c = await self.jclient(srv)
        await c.join("r")
        for ref in ("x" * 65, "é" * 33, 5, ["x"], {"a": 1}):
            with self.subTest(ref=ref):
                await c.send({"type": "say", "room": "r", "text": "t",
                              "ref": ref})
                # The request is refused; whether the error echoes an
                # invalid ref is left open.
                await c.expect_error("bad_request", check_ref=False)
                await c.assert_nothing(seconds=0.1, what="(message "
                                       "must not be sent)")
        for ref in ("y" * 64, "é" * 32, "", "r\"ef \\ 1"):
            with self.subTest(ref=ref):
                ack, _ = await c.say("r", "ok", ref=ref)
                self.assertEqual(ack["ref"], ref)
        # Unknown fields are ignored; a 64-byte ref on a request with no
        # ack is fine.
        await c.send({"type": "rooms", "ref": "z" * 64,
                      "unknown_field": {"x": 1}})
        c.tolerate_acks.add("z" * 64)
        await c.expect("rooms")

    @async_test()
    async def test_unknown_type(self):
        srv = self.server()
        c = await self.jclient(srv)
        await c.send({"type": "dance", "ref": "u1"})
        await c.expect_error("unknown_type", "u1")
        await c.send({"type": "JOIN", "room": "r"})
        await c.expect_error("unknown_type")
        await c.send({"type": "welcome"})
        await c.expect_error("unknown_type")
        await c.assert_nothing()

    @async_test()
    async def test_missing_type(self):
        # Not named by PROTOCOL.md: a missing/non-string type is a
        # "missing or wrong field" (bad_request) or unknown_type.
        srv = self.server()
        c = await self.jclient(srv)
        for req in ({}, {"type": 5, "ref": "m1"}, {"room": "r"}):
            with self.subTest(request=req):
                await c.send(req)
                await c.expect_error({"bad_request", "unknown_type"},
                                     check_ref=False)

    @async_test()
    async def test_invalid_name(self):
        srv = self.server()
        c = await self.jclient(srv)
        for i, name in enumerate(["", "a" * 33, "a b", "é", "a/b", "a\nb",
                                  "é" * 16, "x:y"]):
            with self.subTest(name=name):
                await c.send({"type": "nick", "name": name, "ref": "i%d" % i})
                await c.expect_error("invalid_name", "i%d" % i)
                await c.assert_nothing(seconds=0.1)
        ack = await c.nick(NAME32, ref="ok32")
        self.assertEqual(ack["ref"], "ok32")
        await c.join("r")
        await c.send({"type": "who", "room": "r"})
        m = await c.expect("members")
        self.assertEqual(m["names"], [NAME32])

    @async_test()
    async def test_name_taken_case_insensitive(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        c = await self.jclient(srv, "c")
        await a.nick("Alice")
        for i, name in enumerate(["alice", "ALICE", "Alice", "aLiCe",
                                  c.name.upper()]):
            with self.subTest(name=name):
                await b.send({"type": "nick", "name": name,
                              "ref": "t%d" % i})
                await b.expect_error("name_taken", "t%d" % i)
        await b.join("r")
        await b.send({"type": "who", "room": "r"})
        m = await b.expect("members")
        self.assertEqual(m["names"], [b.name], "a refused nick renamed")
        # A later connection's user<N> name never collides with a name
        # someone took by nick.
        taken = "user%d" % (int(c.name[4:]) + 1)
        await a.nick(taken.upper())
        d = await self.jclient(srv, "d")
        self.assertRegex(d.name, r"^user\d+$")
        self.assertNotEqual(d.name.lower(), taken,
                            "new session got a name already taken by nick")

    @async_test()
    async def test_invalid_room(self):
        srv = self.server()
        c = await self.jclient(srv)
        for i, room in enumerate(["", "a b", "x" * 65, "é", "a/b", "#r"]):
            with self.subTest(room=room):
                await c.send({"type": "join", "room": room,
                              "ref": "j%d" % i})
                await c.expect_error("invalid_room", "j%d" % i)
                await c.assert_nothing(seconds=0.1)
        m, h = await c.join("R" * 64)
        self.assertEqual(m["names"], [c.name])
        await c.join("a-b_c.9")

    @async_test()
    async def test_not_in_room(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        await b.join("busy")
        for i, req in enumerate([
                {"type": "say", "room": "busy", "text": "hi"},
                {"type": "leave", "room": "busy"},
                {"type": "say", "room": "nowhere", "text": "hi"},
                {"type": "leave", "room": "nowhere"}]):
            req["ref"] = "n%d" % i
            with self.subTest(request=req):
                await a.send(req)
                await a.expect_error("not_in_room", "n%d" % i)
        await b.assert_nothing(what="from a non-member")

    @async_test()
    async def test_no_such_user(self):
        srv = self.server()
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        await a.send({"type": "whisper", "to": "ghost", "text": "boo",
                      "ref": "g1"})
        await a.expect_error("no_such_user", "g1")
        b_name = b.name
        await b.close()
        await asyncio.sleep(0.2)
        await a.send({"type": "whisper", "to": b_name, "text": "boo",
                      "ref": "g2"})
        await a.expect_error("no_such_user", "g2")

    @async_test()
    async def test_too_long(self):
        srv = self.server("--max-text", "10")
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        await a.join("r")
        await b.join("r")
        await a.quiet()
        ok = ["a" * 10, "é" * 5, "x"]
        for t in ok:
            await a.say("r", t)
            await b.expect("message", text=t)
        for i, t in enumerate(["a" * 11, "é" * 6, "a" * 9 + "é",
                               "x" * 5000]):
            with self.subTest(text=t[:20]):
                await a.send({"type": "say", "room": "r", "text": t,
                              "ref": "L%d" % i})
                await a.expect_error("too_long", "L%d" % i)
        await a.send({"type": "whisper", "to": b.name, "text": "w" * 11,
                      "ref": "W1"})
        await a.expect_error("too_long", "W1")
        a.tolerate_acks.add("W2")
        await a.send({"type": "whisper", "to": b.name, "text": "w" * 10,
                      "ref": "W2"})
        await b.expect("whisper", text="w" * 10)
        await a.expect("whisper", text="w" * 10)
        # Empty text is under the 1-byte minimum: refused, code not named
        # by PROTOCOL.md.
        await a.send({"type": "say", "room": "r", "text": "", "ref": "E"})
        await a.expect_error({"bad_request", "too_long"}, "E")
        await b.assert_nothing(what="from refused messages")
        await a.assert_nothing()

    @async_test()
    async def test_rate_limited(self):
        srv = self.server("--rate", "2")
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        # (welcome.limits.rate == 2 is test_welcome_limits_follow_flags)
        await a.join("r")
        await b.join("r")
        await a.quiet()
        t0 = time.monotonic()
        for i in range(10):
            await a.send({"type": "say", "room": "r", "text": "burst%d" % i,
                          "ref": "q%d" % i})
        replies = {}
        mine = []
        while len(replies) < 10:
            o = await a.next()
            if o["type"] in ("ack", "error"):
                ref = o.get("ref")
                self.assertRegex(str(ref), r"^q\d$", o)
                self.assertNotIn(ref, replies, "two replies for %s" % ref)
                replies[ref] = o
            elif o["type"] == "message":
                mine.append(o)
            else:
                self.fail("unexpected %r" % (o,))
        elapsed = time.monotonic() - t0
        mine += [o for o in await a.quiet() if o["type"] == "message"]
        acks = [replies["q%d" % i] for i in range(10)
                if replies["q%d" % i]["type"] == "ack"]
        errs = [replies["q%d" % i] for i in range(10)
                if replies["q%d" % i]["type"] == "error"]
        for e in errs:
            self.assertEqual(e.get("code"), "rate_limited", e)
        self.assertGreaterEqual(len(errs), 1, "no rate_limited in a burst "
                                "of 10 at --rate 2")
        # burst 2N = 4; refill 2/s while the burst is answered
        self.assertGreaterEqual(len(acks), 4, "burst of 2N=4 not allowed")
        self.assertLessEqual(len(acks), 4 + 1 + int(2 * elapsed),
                             "more than burst + refill accepted")
        got_b = [o for o in await b.quiet() if o["type"] == "message"]
        self.assertEqual(ids(mine), [a_["id"] for a_ in acks])
        self.assertEqual(ids(got_b), [a_["id"] for a_ in acks],
                         "dropped messages must not be delivered")
        self.assertEqual(len(got_b), len(acks))
        # Dropped, not queued: nothing more arrives later; and after a
        # pause the session may speak again.
        await asyncio.sleep(1.2)
        await b.assert_nothing(what="(a dropped message was queued)")
        ack, _ = await a.say("r", "later", ref="later")
        self.assertEqual(ack["ref"], "later")
        await b.expect("message", text="later")


if __name__ == "__main__":
    import unittest
    unittest.main()


class TestPresenceLimit(ChatCase):
    """--presence-limit N: rooms of more than N members announce joined and
    left only to the member concerned, and list N members."""

    async def raw_join(self, c, room):
        await c.send({"type": "join", "room": room})
        got = {}
        while len(got) < 3:
            o = await c.recv()      # recv: own presence is not skipped
            self.assertIn(o["type"], ("joined", "members", "history"),
                          short(o))
            self.assertNotIn(o["type"], got, short(o))
            got[o["type"]] = o
        return got

    @async_test()
    async def test_large_room_presence_and_members(self):
        srv = self.server("--presence-limit", "2")
        a = await self.jclient(srv, "a")
        b = await self.jclient(srv, "b")
        await a.join("r")
        await b.join("r")
        # Two members: still announced to everyone.
        await a.expect("joined", room="r", name=b.name)
        for x in (a, b):
            await x.quiet()
        c = await self.jclient(srv, "c")
        got = await self.raw_join(c, "r")
        self.assertEqual(got["joined"]["name"], c.name)
        m = got["members"]
        self.assertEqual(m["names"], sorted([a.name, b.name]))
        self.assertEqual(m["count"], 3)
        self.assertIs(m["complete"], False)
        # The third member's arrival is not announced to the others...
        for x in (a, b):
            await x.assert_nothing(what="after a join over the limit")
        # ...but messages still reach everyone.
        await a.say("r", "big room")
        for x in (b, c):
            await x.expect("message", text="big room", room="r")
        await a.send({"type": "who", "room": "r"})
        w = await a.expect("members", room="r")
        self.assertEqual((w["names"], w["count"], w["complete"]),
                         (sorted([a.name, b.name]), 3, False))
        # A departure from a room of 3 (counting the leaver) is silent too.
        c.tolerate_acks.add("l")
        await c.send({"type": "leave", "room": "r", "ref": "l"})
        c.abort()
        for x in (a, b):
            await x.assert_nothing(what="after a leave over the limit")
        # Back at the limit, a close is announced again.
        await b.close()
        await a.expect("left", room="r", name=b.name)
        await a.send({"type": "who", "room": "r"})
        w = await a.expect("members", room="r")
        self.assertEqual(w["names"], [a.name])
        self.assertNotIn("count", w)

    @async_test()
    async def test_zero_means_no_limit(self):
        srv = self.server("--presence-limit", "0")
        clients = [await self.jclient(srv, "c%d" % i) for i in range(4)]
        for i, c in enumerate(clients):
            await c.join("r")
            for prev in clients[:i]:
                await prev.expect("joined", room="r", name=c.name)
        await clients[0].send({"type": "who", "room": "r"})
        w = await clients[0].expect("members", room="r")
        self.assertEqual(w["names"], sorted(c.name for c in clients))
        self.assertNotIn("complete", w)

    def test_bad_value_is_a_usage_error(self):
        import subprocess
        from chatd import chatd_binary
        r = subprocess.run([chatd_binary(), "--presence-limit", "-1"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--presence-limit", r.stderr)
