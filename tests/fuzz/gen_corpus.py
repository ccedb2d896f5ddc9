#!/usr/bin/python3
"""Write the seed corpora under tests/fuzz/corpus/ (one directory per
target). The seeds are committed; run this again only after changing it.
Each seed is named after what it holds.

fuzz_handshake and fuzz_frames inputs start with a configuration byte whose
low three bits give how many one-byte chunk sizes follow (see
tests/fuzz/fuzz_util.h); the other targets take the payload as it is.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def split_prefix(cfg, sizes):
    """cfg: the high five bits of byte 0; sizes: up to 7 chunk sizes."""
    assert len(sizes) <= 7
    return bytes([cfg | len(sizes)]) + bytes(sizes)


# ------------------------------------------------------------ handshake
# cfg: max_header 1024 (2 << 3), 16 headers (2 << 5), path /chat.
HS = 2 << 3 | 2 << 5
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def request(method=b"GET", target=b"/chat", version=b"HTTP/1.1",
            headers=None):
    if headers is None:
        headers = [(b"Host", b"example.com"), (b"Upgrade", b"websocket"),
                   (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Key", KEY),
                   (b"Sec-WebSocket-Version", b"13")]
    head = method + b" " + target + b" " + version + b"\r\n"
    for k, v in headers:
        head += k + b": " + v + b"\r\n"
    return head + b"\r\n"


def hs_headers(drop=(), extra=(), replace=None):
    base = [(b"Host", b"example.com"), (b"Upgrade", b"websocket"),
            (b"Connection", b"keep-alive, Upgrade"),
            (b"Sec-WebSocket-Key", KEY), (b"Sec-WebSocket-Version", b"13")]
    out = [(k, (replace or {}).get(k, v)) for k, v in base if k not in drop]
    return out + list(extra)


hs = {
    "upgrade": request(),
    "upgrade_query": request(target=b"/chat?room=dev&x=1"),
    "upgrade_subprotocol": request(headers=hs_headers(
        extra=[(b"Sec-WebSocket-Protocol", b"foo, wschat.v1.json")])),
    "upgrade_subprotocol_none": request(headers=hs_headers(
        extra=[(b"Sec-WebSocket-Protocol", b"foo, bar")])),
    "upgrade_then_frame": request() + bytes([0x81, 0x85, 1, 2, 3, 4]) +
    bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01")),
    "http_get": request(target=b"/healthz",
                        headers=[(b"Host", b"example.com")]),
    "http_get_index": request(target=b"/", headers=[
        (b"Host", b"h"), (b"Accept", b"text/html"),
        (b"User-Agent", b"seed")]),
    "post_upgrade_405": request(method=b"POST"),
    "http10_400": request(version=b"HTTP/1.0"),
    "wrong_path_404": request(target=b"/other"),
    "no_host_400": request(headers=hs_headers(drop=[b"Host"])),
    "two_hosts_400": request(headers=hs_headers(extra=[(b"Host", b"b")])),
    "no_connection_upgrade_400": request(headers=hs_headers(
        replace={b"Connection": b"keep-alive"})),
    "version_8_426": request(headers=hs_headers(
        replace={b"Sec-WebSocket-Version": b"8"})),
    "no_version_426": request(headers=hs_headers(
        drop=[b"Sec-WebSocket-Version"])),
    "short_key_400": request(headers=hs_headers(
        replace={b"Sec-WebSocket-Key": b"c2hvcnQ="})),
    "two_keys_400": request(headers=hs_headers(
        extra=[(b"Sec-WebSocket-Key", KEY)])),
    "long_target_414": request(target=b"/" + b"a" * 1100),
    "many_headers_431": request(headers=hs_headers(
        extra=[(b"X-H%d" % i, b"v") for i in range(20)])),
    "garbage_400": b"\x00\x01GET / HTTP/1.1\r\n\r\n",
    "lf_only": request().replace(b"\r\n", b"\n"),
    "folded_header": b"GET /chat HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
}
for i, (name, data) in enumerate(sorted(hs.items())):
    sizes = [[], [1], [5, 1, 17], [40, 2], [1, 1, 1, 1, 1, 1, 1]][i % 5]
    write("fuzz_handshake", name, split_prefix(HS, sizes) + data)


# --------------------------------------------------------------- frames
MASK = b"\x37\xfa\x21\x3d"


def frame(opcode, payload, fin=1, rsv=0, mask=MASK, len_form=None):
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if len_form == 64 or (len_form is None and n > 0xFFFF):
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif len_form == 16 or (len_form is None and n > 125):
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | n])
    if mask is None:
        return hdr + payload
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


# cfg: limit index (bits 3-4: 0, 16, 130, 4096), mask rule (bits 5-6:
# required, forbidden, either), RSV1 allowed (bit 7).
def fcfg(limit=3, rule=0, rsv1=False):
    return limit << 3 | rule << 5 | (0x80 if rsv1 else 0)


frames = {
    "text": (fcfg(), frame(1, b"hello")),
    "text_unmasked_client": (fcfg(rule=1), frame(1, b"hello", mask=None)),
    "text_empty": (fcfg(), frame(1, b"")),
    "text_utf8": (fcfg(), frame(1, "h\u00e9 \u20ac \U0001F600".encode())),
    "binary": (fcfg(), frame(2, bytes(range(256)))),
    "binary_len16": (fcfg(), frame(2, b"x" * 130, len_form=16)),
    "binary_len64": (fcfg(), frame(2, b"y" * 10, len_form=64)),
    "ping": (fcfg(), frame(9, b"are you there")),
    "pong": (fcfg(), frame(10, b"")),
    "close_1000": (fcfg(), frame(8, close_payload(1000, b"bye"))),
    "close_empty": (fcfg(), frame(8, b"")),
    "close_bad_code": (fcfg(), frame(8, close_payload(1005))),
    "close_bad_utf8": (fcfg(), frame(8, close_payload(1000, b"\xff"))),
    "fragmented_text": (fcfg(), frame(1, b"hel", fin=0) + frame(0, b"lo")),
    "fragmented_ping_between": (fcfg(), frame(1, b"a", fin=0) +
                                frame(9, b"p") + frame(0, b"b", fin=0) +
                                frame(0, b"c")),
    "fragmented_utf8_split": (fcfg(), frame(1, b"\xe2\x82", fin=0) +
                              frame(0, b"\xac")),
    "fragmented_binary": (fcfg(), frame(2, b"\x00\x01", fin=0) +
                          frame(0, b"\x02", fin=0) + frame(0, b"\x03")),
    "many_messages": (fcfg(), frame(1, b"one") + frame(2, b"two") +
                      frame(9, b"") + frame(1, b"three") +
                      frame(8, close_payload(1001))),
    "too_big_1009": (fcfg(limit=1), frame(1, b"x" * 20)),
    "too_big_fragments_1009": (fcfg(limit=1), frame(2, b"x" * 10, fin=0) +
                               frame(0, b"y" * 10)),
    "limit_130_ok": (fcfg(limit=2), frame(2, b"z" * 130)),
    "bad_utf8_1007": (fcfg(), frame(1, b"ok\xc0\x80")),
    "surrogate_1007": (fcfg(), frame(1, b"\xed\xa0\x80")),
    "unmasked_rejected": (fcfg(), frame(1, b"hi", mask=None)),
    "rsv1_allowed": (fcfg(rsv1=True), frame(1, b"hi", rsv=4)),
    "rsv1_refused": (fcfg(), frame(1, b"hi", rsv=4)),
    "reserved_opcode": (fcfg(), frame(3, b"")),
    "control_fragmented": (fcfg(), frame(9, b"", fin=0)),
    "control_too_long": (fcfg(), frame(9, b"p" * 126, len_form=16)),
    "continuation_first": (fcfg(), frame(0, b"x")),
    "text_during_fragments": (fcfg(), frame(1, b"a", fin=0) +
                              frame(1, b"b")),
}
for i, (name, (cfg, data)) in enumerate(sorted(frames.items())):
    sizes = [[], [1, 2], [3, 1, 4, 1, 5], [7], [2, 0, 2, 0, 9]][i % 5]
    write("fuzz_frames", name, split_prefix(cfg, sizes) + data)


# ---------------------------------------------------------------- close
closes = {
    "empty": b"",
    "one_byte": b"\x03",
    "1000": close_payload(1000),
    "1001_reason": close_payload(1001, b"going away"),
    "3000_utf8": close_payload(3000, "\u00e9t\u00e9 \U0001F600".encode()),
    "4999": close_payload(4999, b"x"),
    "1005_invalid": close_payload(1005),
    "1015_invalid": close_payload(1015),
    "5000_invalid": close_payload(5000),
    "bad_utf8": close_payload(1000, b"ab\xe2\x82"),
    "max_reason": close_payload(1000, b"r" * 123),
    "long_utf8_reason": close_payload(1000, "\u20ac".encode() * 42),
}
for name, data in closes.items():
    write("fuzz_close", name, data)


# ----------------------------------------------------------------- json
jsons = {
    "join": b'{"type":"join","room":"lobby"}',
    "join_since": b'{"type":"join","room":"dev","since":42,"ref":"r1"}',
    "leave": b'{"type":"leave","room":"lobby"}',
    "say": b'{"type":"say","room":"lobby","text":"hello","ref":"abc"}',
    "say_unicode": '{"type":"say","room":"lobby","text":"h\u00e9 \\u20ac '
                   '\\ud83d\\ude00 \\u0000"}'.encode(),
    "whisper": b'{"type":"whisper","to":"bob","text":"psst"}',
    "nick": b'{"type":"nick","name":"alice","ref":"n"}',
    "history": b'{"type":"history","room":"lobby"}',
    "history_before_limit":
        b'{"type":"history","room":"lobby","before":100,"limit":200}',
    "who": b'{"type":"who","room":"lobby"}',
    "rooms": b'{"type":"rooms"}',
    "bad_json": b'{"type":"say",',
    "not_object": b'["join"]',
    "unknown_type": b'{"type":"dance","ref":"x"}',
    "type_not_string": b'{"type":1}',
    "ref_too_long": b'{"type":"rooms","ref":"' + b"r" * 65 + b'"}',
    "invalid_room": b'{"type":"join","room":"no spaces"}',
    "room_with_nul": b'{"type":"join","room":"a\\u0000b"}',
    "invalid_name": b'{"type":"nick","name":""}',
    "text_empty": b'{"type":"say","room":"lobby","text":""}',
    "text_too_long": b'{"type":"say","room":"lobby","text":"' + b"t" * 65 +
                     b'"}',
    "limit_out_of_range": b'{"type":"history","room":"a","limit":0}',
    "since_negative": b'{"type":"join","room":"a","since":-1}',
    "number_overflow": b'{"type":"join","room":"a","since":'
                       b'99999999999999999999999}',
    "duplicate_keys": b'{"type":"say","type":"who","room":"a"}',
}
for name, data in jsons.items():
    write("fuzz_json", name, data)


# ----------------------------------------------------------------- text
texts = {
    "say": b"hello there",
    "say_slash": b"//not a command",
    "nick": b"/nick alice",
    "nick_tabs": b"/nick\t alice \t",
    "nick_usage": b"/nick",
    "nick_two_words": b"/nick a b",
    "join": b"/join dev",
    "who": b"/who",
    "who_extra": b"/who x",
    "rooms": b"/rooms",
    "msg": b"/msg bob hi  there ",
    "msg_no_text": b"/msg bob",
    "help": b"/help",
    "unknown": b"/dance now",
    "slash_only": b"/",
    "empty": b"",
    "utf8": "/msg \u00e9l\u00e8ve \U0001F600".encode(),
}
for name, data in texts.items():
    write("fuzz_text", name, data)
