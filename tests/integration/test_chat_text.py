"""wschatd's text dialect (no subprotocol: the tutorial's behaviour) and
both dialects in one room, against /work/shared/PROTOCOL.md, with Debian's
python3-websockets (10.4).

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_chat_text.py

Names: every connection (either dialect) gets user<N>, N counting up from
1 per server, so the tests know each client's name from its order.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatd import ChatCase, async_test, check_message, check_ts  # noqa: E402

COMMANDS = ("/nick", "/join", "/who", "/rooms", "/msg", "/help")


class TestText(ChatCase):

    async def clients(self, srv, n):
        """n text clients user1..userN, all in lobby, every join notice
        consumed."""
        cs = []
        for i in range(1, n + 1):
            c = await self.tclient(srv, "user%d" % i)
            for prev in cs:
                await prev.expect("* user%d joined lobby" % i)
            cs.append(c)
        for c in cs:
            await c.assert_nothing(seconds=0.2)
        return cs

    async def nick(self, c, new):
        """c renames itself with /nick; its own rename notice, if the
        server sends it, is tolerated (before or after the reply)."""
        c.ignore.add("* %s is now %s" % (c.name, new))
        await c.send("/nick " + new)
        await c.expect("* you are now " + new)
        c.name = new

    async def after_join(self, c, room):
        """c sent /join ROOM: what it gets itself is not specified beyond
        '* ' lines (its own left/joined notices)."""
        c.ignore.add("* %s left lobby" % c.name)
        c.ignore.add("* %s joined %s" % (c.name, room))
        for line in await c.quiet(seconds=0.3, tolerate=False):
            self.assertTrue(line.startswith("* "),
                            "%s got %r after /join" % (c.label, line))
            self.assertNotIn("said:", line)

    @async_test()
    async def test_names_autojoin_and_say(self):
        srv = self.server()
        t1, t2, t3 = await self.clients(srv, 3)
        await t1.send("hi")
        for c in (t1, t2, t3):
            await c.expect("user1 said: hi")
        await t3.send("hey there, é € 𝄞")
        for c in (t1, t2, t3):
            await c.expect("user3 said: hey there, é € 𝄞")
        for c in (t1, t2, t3):
            await c.assert_nothing()

    @async_test()
    async def test_nick(self):
        srv = self.server()
        t1, t2 = await self.clients(srv, 2)
        await self.nick(t1, "alice")
        await t2.expect("* user1 is now alice")
        for name in ("alice", "ALICE", "Alice"):
            await t2.send("/nick " + name)
            await t2.expect("* error: name taken")
        await t1.assert_nothing(what="for a refused /nick")
        await t2.assert_nothing()
        await t1.send("hi")
        for c in (t1, t2):
            await c.expect("alice said: hi")
        await self.nick(t2, "bob")
        await t1.expect("* user2 is now bob")
        await t2.send("yo")
        for c in (t1, t2):
            await c.expect("bob said: yo")
        for c in (t1, t2):
            await c.assert_nothing()

    @async_test()
    async def test_join_moves_rooms(self):
        srv = self.server()
        t1, t2, t3 = await self.clients(srv, 3)
        await t3.send("/join dev")
        for c in (t1, t2):
            await c.expect("* user3 left lobby")
        await self.after_join(t3, "dev")
        await t1.send("/join dev")
        await t2.expect("* user1 left lobby")
        await t3.expect("* user1 joined dev")
        await self.after_join(t1, "dev")
        await t1.send("yo")
        for c in (t1, t3):
            await c.expect("user1 said: yo")
        await t2.assert_nothing(what="from another room")
        await t2.send("alone")
        await t2.expect("user2 said: alone")
        for c in (t1, t3):
            await c.assert_nothing(what="from lobby after leaving it")
        # back to lobby
        await t3.send("/join lobby")
        await t1.expect("* user3 left dev")
        await t2.expect("* user3 joined lobby")
        t3.ignore |= {"* user3 left dev", "* user3 joined lobby"}
        await t3.quiet()
        await t2.send("welcome back")
        for c in (t2, t3):
            await c.expect("user2 said: welcome back")
        await t1.assert_nothing()

    @async_test()
    async def test_who_sorted(self):
        srv = self.server()
        t1, t2, t3, t4 = await self.clients(srv, 4)
        for c, n in ((t1, "carol"), (t2, "alice"), (t4, "bob")):
            old = c.name
            await self.nick(c, n)
            for o in (t1, t2, t3, t4):
                if o is not c:
                    await o.expect("* %s is now %s" % (old, n))
        await t4.send("/join dev")
        for c in (t1, t2, t3):
            await c.expect("* bob left lobby")
        await self.after_join(t4, "dev")
        await t1.send("/who")
        await t1.expect("* in lobby: alice, carol, user3")
        await t4.send("/who")
        await t4.expect("* in dev: bob")
        for c in (t1, t2, t3, t4):
            await c.assert_nothing()

    @async_test()
    async def test_rooms(self):
        srv = self.server()
        t1, t2 = await self.clients(srv, 2)
        await t1.send("/rooms")
        await t1.expect("* rooms: lobby (2)")
        await t2.send("/join dev")
        await t1.expect("* user2 left lobby")
        await self.after_join(t2, "dev")
        await t1.send("/rooms")
        await t1.expect("* rooms: lobby (1), dev (1)")
        await t2.assert_nothing(what="for another's /rooms")

    @async_test()
    async def test_msg_whisper(self):
        srv = self.server()
        t1, t2, t3 = await self.clients(srv, 3)
        await t1.send("/msg user2 secret stuff")
        for c in (t2, t1):
            await c.expect("user1 whispers: secret stuff")
        await t3.assert_nothing(what="for a whisper between others")
        # across rooms
        await t3.send("/join dev")
        for c in (t1, t2):
            await c.expect("* user3 left lobby")
        await self.after_join(t3, "dev")
        await t3.send("/msg user1 over here")
        for c in (t1, t3):
            await c.expect("user3 whispers: over here")
        await t2.assert_nothing(what="for a whisper between others")
        for c in (t1, t3):
            await c.assert_nothing()

    @async_test()
    async def test_help(self):
        srv = self.server()
        t1, t2 = await self.clients(srv, 2)
        await t1.send("/help")
        got = await t1.quiet(seconds=0.5)
        self.assertTrue(got, "no answer to /help")
        lines = "\n".join(got).split("\n")
        for line in lines:
            self.assertTrue(line.startswith("* "),
                            "/help line without '* ': %r" % (line,))
        text = "\n".join(lines)
        for cmd in COMMANDS:
            self.assertIn(cmd, text, "/help does not list %s" % cmd)
        await t2.assert_nothing(what="for another's /help")

    @async_test()
    async def test_double_slash_sends_literally(self):
        srv = self.server()
        t1, t2 = await self.clients(srv, 2)
        await t1.send("//text")
        for c in (t1, t2):
            await c.expect("user1 said: /text")
        await t1.send("//nick x")
        for c in (t1, t2):
            await c.expect("user1 said: /nick x")
        await t1.send("/who")
        await t1.expect("* in lobby: user1, user2")


class TestMixedDialects(ChatCase):

    @async_test()
    async def test_text_and_json_in_one_room(self):
        srv = self.server()
        t1 = await self.tclient(srv, "user1")
        j = await self.jclient(srv, "json")
        self.assertEqual(j.name, "user2")
        m, h = await j.join("lobby")
        self.assertEqual(m["names"], ["user1", "user2"],
                         "the text client is not in lobby")
        await t1.expect("* user2 joined lobby")

        await t1.send("hello")
        await t1.expect("user1 said: hello")
        got = await j.expect("message")
        check_message(got, "lobby", "user1", "hello")
        check_ts(got)

        ack, msg = await j.say("lobby", "hey", ref="s")
        self.assertGreater(msg["id"], got["id"])
        await t1.expect("user2 said: hey")

        await t1.send("/msg user2 psst")
        await t1.expect("user1 whispers: psst")
        w = await j.expect("whisper", to="user2", text="psst")
        self.assertEqual(w.get("from"), "user1", w)

        j.tolerate_acks.add("w")
        await j.send({"type": "whisper", "to": "user1", "text": "back",
                      "ref": "w"})
        await t1.expect("user2 whispers: back")
        await j.expect("whisper", to="user1", text="back")

        await j.nick("jay")
        await t1.expect("* user2 is now jay")
        t1.ignore.add("* user1 is now tim")
        await t1.send("/nick tim")
        await t1.expect("* you are now tim")
        await j.expect("renamed", **{"from": "user1"}, to="tim")

        t2 = await self.tclient(srv, "user3")
        await j.expect("joined", room="lobby", name="user3")
        await t1.expect("* user3 joined lobby")
        await t2.send("/who")
        await t2.expect("* in lobby: jay, tim, user3")
        await t2.close()
        await j.expect("left", room="lobby", name="user3")
        await t1.expect("* user3 left lobby")

        await j.send({"type": "leave", "room": "lobby"})
        await t1.expect("* jay left lobby")
        await j.quiet()
        await t1.send("/who")
        await t1.expect("* in lobby: tim")
        # Messages from text clients are stored in the room's history.
        _, h = await j.join("lobby")
        self.assertEqual([(x["from"], x["text"]) for x in h["messages"]],
                         [("user1", "hello"), ("user2", "hey")])
        await t1.expect("* jay joined lobby")
        for c in (t1, j):
            await c.assert_nothing()


if __name__ == "__main__":
    import unittest
    unittest.main()
