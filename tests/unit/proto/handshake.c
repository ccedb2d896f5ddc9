/*
 * tests/unit/proto/handshake.c - the opening handshake of
 * lib/proto/handshake.c: parsing under every split of the input, each
 * rejection with its exact status, the limits, subprotocol choice, and
 * the exact bytes of the replies.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/handshake.h"

/* ------------------------------------------------------------------------
 * Fixtures
 * ---------------------------------------------------------------------- */

/* Every test allocates through this, so any of them can check that
 * nothing is left behind. Criterion runs each test in its own process. */
static long live_blocks;

static void *counting_realloc(void *ptr, size_t size) {
  void *p = realloc(ptr, size);
  if (ptr == NULL && p != NULL)
    live_blocks++;
  return p;
}

static void counting_free(void *ptr) {
  if (ptr != NULL)
    live_blocks--;
  free(ptr);
}

static const wschat__allocator counting = {counting_realloc, counting_free};

static void *failing_realloc(void *ptr, size_t size) {
  (void)ptr;
  (void)size;
  return NULL;
}

static wschat__hs_config default_cfg(void) {
  wschat__hs_config cfg = {8192, 64, NULL, NULL, 0};
  return cfg;
}

#define RFC_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A valid upgrade for "/chat" with the RFC 6455 section 1.2 key; `extra`
 * lines go before the blank line. */
static char *upgrade_request(const char *target, const char *extra) {
  static char buf[16384];
  snprintf(buf, sizeof(buf),
           "GET %s HTTP/1.1\r\n"
           "Host: server.example.com\r\n"
           "Upgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Key: " RFC_KEY "\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "%s"
           "\r\n",
           target, extra);
  return buf;
}

static uint32_t xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

enum split { WHOLE, BYTEWISE, RANDOM };

/*
 * Feed req split as asked until the parser decides or the input runs out,
 * the way a connection would: each piece lives in its own buffer that is
 * scribbled over and freed right after the call, so a parser that kept a
 * pointer into it would be caught (by the comparisons, or by ASan).
 */
static wschat__handshake *feed_split(const wschat__hs_config *cfg,
                                     const char *req, size_t len,
                                     enum split how, uint32_t seed,
                                     size_t *consumed) {
  wschat__handshake *hs = wschat__handshake_new(cfg, &counting);
  size_t off = 0;
  cr_assert_not_null(hs);
  *consumed = 0;
  while (off < len && wschat__handshake_state(hs) == WSCHAT__HS_MORE) {
    size_t n = len - off;
    size_t used = 0;
    char *piece;
    if (how == BYTEWISE)
      n = 1;
    else if (how == RANDOM) {
      uint32_t r = xorshift32(&seed);
      size_t want = (r & 7) == 0 ? (r >> 8) % 4096 + 1 : (r >> 8) % 24 + 1;
      n = want < n ? want : n;
    }
    piece = malloc(n);
    cr_assert_not_null(piece);
    memcpy(piece, req + off, n);
    wschat__handshake_feed(hs, piece, n, &used);
    cr_assert_leq(used, n);
    memset(piece, '#', n);
    free(piece);
    *consumed += used;
    off += n;
  }
  return hs;
}

static bool same_str(const char *a, const char *b) {
  return (a == NULL && b == NULL) ||
         (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static const char *const compared_headers[] = {"Host",
                                               "Upgrade",
                                               "Connection",
                                               "Origin",
                                               "Sec-WebSocket-Key",
                                               "Sec-WebSocket-Version",
                                               "X-Empty",
                                               "X-Pad",
                                               "Sec-WebSocket-Protocol",
                                               "Content-Length"};

/* Everything a caller can observe must not depend on the split. */
static void assert_same(const wschat__handshake *a, size_t ca,
                        const wschat__handshake *b, size_t cb,
                        const char *how) {
  size_t i;
  cr_assert_eq(wschat__handshake_state(a), wschat__handshake_state(b),
               "state differs (%s)", how);
  cr_assert_eq(wschat__handshake_status(a), wschat__handshake_status(b),
               "status differs (%s)", how);
  cr_assert_eq(ca, cb, "consumed %zu vs %zu (%s)", ca, cb, how);
  cr_assert_str_eq(wschat__handshake_error(a), wschat__handshake_error(b), "%s",
                   how);
  cr_assert_str_eq(wschat__handshake_method(a), wschat__handshake_method(b),
                   "%s", how);
  cr_assert_str_eq(wschat__handshake_path(a), wschat__handshake_path(b), "%s",
                   how);
  cr_assert_str_eq(wschat__handshake_query(a), wschat__handshake_query(b), "%s",
                   how);
  cr_assert_eq(wschat__handshake_subprotocol(a),
               wschat__handshake_subprotocol(b), "%s", how);
  for (i = 0; i < sizeof(compared_headers) / sizeof(*compared_headers); i++)
    cr_assert(same_str(wschat__handshake_header(a, compared_headers[i]),
                       wschat__handshake_header(b, compared_headers[i])),
              "header %s differs (%s)", compared_headers[i], how);
}

/*
 * Parse req whole, then byte by byte, then in 24 random splits, and check
 * that all agree. Returns the whole-input parser (the caller frees it) and
 * its *consumed.
 */
static wschat__handshake *parse_all_ways(const wschat__hs_config *cfg,
                                         const char *req, size_t len,
                                         size_t *consumed) {
  wschat__handshake *whole = feed_split(cfg, req, len, WHOLE, 0, consumed);
  wschat__handshake *other;
  size_t c;
  uint32_t seed;

  other = feed_split(cfg, req, len, BYTEWISE, 0, &c);
  assert_same(whole, *consumed, other, c, "byte by byte");
  wschat__handshake_free(other);
  for (seed = 1; seed <= 24; seed++) {
    char how[32];
    snprintf(how, sizeof(how), "random split, seed %u", (unsigned)seed);
    other = feed_split(cfg, req, len, RANDOM, seed * 2654435761u, &c);
    assert_same(whole, *consumed, other, c, how);
    wschat__handshake_free(other);
  }
  return whole;
}

static wschat__hs_state parse_status(const wschat__hs_config *cfg,
                                     const char *req, int *status,
                                     size_t *consumed) {
  wschat__handshake *hs = parse_all_ways(cfg, req, strlen(req), consumed);
  wschat__hs_state st = wschat__handshake_state(hs);
  *status = wschat__handshake_status(hs);
  wschat__handshake_free(hs);
  return st;
}

/* ------------------------------------------------------------------------
 * Sec-WebSocket-Accept
 * ---------------------------------------------------------------------- */

Test(accept_key, rfc6455_example) {
  char out[29];
  memset(out, 'x', sizeof(out));
  cr_assert_eq(wschat__accept_key(RFC_KEY, strlen(RFC_KEY), out), 0);
  cr_assert_str_eq(out, RFC_ACCEPT);
}

Test(accept_key, rejects_null) {
  char out[29];
  cr_assert_eq(wschat__accept_key(NULL, 0, out), WSCHAT_EINVAL);
}

/* ------------------------------------------------------------------------
 * Valid upgrades
 * ---------------------------------------------------------------------- */

static const char rfc_request[] =
    "GET /chat?room=lobby&lang=en HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

static const char rfc_reply_chat[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

Test(upgrade, rfc_request_in_every_split) {
  static const char *const protos[] = {"superchat", "chat"};
  wschat__hs_config cfg = {8192, 64, "/chat", protos, 2};
  size_t consumed;
  char reply[600];
  wschat__handshake *hs =
      parse_all_ways(&cfg, rfc_request, strlen(rfc_request), &consumed);

  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, strlen(rfc_request));
  cr_assert_str_eq(wschat__handshake_method(hs), "GET");
  cr_assert_str_eq(wschat__handshake_path(hs), "/chat");
  cr_assert_str_eq(wschat__handshake_query(hs), "room=lobby&lang=en");
  cr_assert_str_eq(wschat__handshake_header(hs, "host"), "server.example.com");
  cr_assert_str_eq(wschat__handshake_header(hs, "HOST"), "server.example.com");
  cr_assert_str_eq(wschat__handshake_header(hs, "origin"),
                   "http://example.com");
  cr_assert_str_eq(wschat__handshake_header(hs, "sec-websocket-key"), RFC_KEY);
  cr_assert_null(wschat__handshake_header(hs, "Cookie"));
  /* The client prefers "chat"; the pointer is the server's own string. */
  cr_assert_eq(wschat__handshake_subprotocol(hs), protos[1]);
  cr_assert_eq(wschat__handshake_build_101(hs, reply, sizeof(reply)),
               (int)strlen(rfc_reply_chat));
  cr_assert_str_eq(reply, rfc_reply_chat);
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);
}

Test(upgrade, no_subprotocol_and_extensions_ignored) {
  static const char expected[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                 "\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  char reply[512];
  const char *req =
      upgrade_request("/", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);

  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_null(wschat__handshake_subprotocol(hs));
  cr_assert_eq(wschat__handshake_build_101(hs, reply, sizeof(reply)),
               (int)strlen(expected));
  cr_assert_str_eq(reply, expected);
  wschat__handshake_free(hs);
}

Test(upgrade, frame_bytes_in_the_same_read) {
  /* RFC 6455 section 5.7: a masked "Hello" right behind the head. */
  static const char frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  wschat__hs_config cfg = default_cfg();
  const char *head = upgrade_request("/chat", "");
  size_t head_len = strlen(head);
  char buf[4096];
  size_t consumed;
  wschat__handshake *hs;

  memcpy(buf, head, head_len);
  memcpy(buf + head_len, frame, sizeof(frame) - 1);
  hs = parse_all_ways(&cfg, buf, head_len + sizeof(frame) - 1, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, head_len);
  cr_assert_eq(memcmp(buf + consumed, frame, sizeof(frame) - 1), 0);
  wschat__handshake_free(hs);
}

Test(upgrade, feeding_after_the_decision_does_nothing) {
  wschat__hs_config cfg = default_cfg();
  const char *req = upgrade_request("/", "");
  wschat__handshake *hs = wschat__handshake_new(&cfg, &counting);
  size_t consumed = 99;

  cr_assert_eq(wschat__handshake_feed(hs, req, strlen(req), &consumed),
               WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, strlen(req));
  cr_assert_eq(wschat__handshake_feed(hs, "\x81\x80xxxx", 6, &consumed),
               WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, 0);
  cr_assert_eq(wschat__handshake_feed(hs, "", 0, &consumed),
               WSCHAT__HS_UPGRADE);
  wschat__handshake_free(hs);
}

Test(upgrade, empty_feed_needs_more) {
  wschat__hs_config cfg = default_cfg();
  wschat__handshake *hs = wschat__handshake_new(&cfg, &counting);
  size_t consumed = 99;
  cr_assert_eq(wschat__handshake_feed(hs, "", 0, &consumed), WSCHAT__HS_MORE);
  cr_assert_eq(consumed, 0);
  cr_assert_eq(wschat__handshake_feed(hs, "GET / HT", 8, &consumed),
               WSCHAT__HS_MORE);
  cr_assert_eq(consumed, 8);
  wschat__handshake_free(hs);
}

Test(upgrade, key_with_surrounding_whitespace) {
  static const char req[] = "GET / HTTP/1.1\r\n"
                            "Host: h\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Key: \t " RFC_KEY " \t\r\n"
                            "Sec-WebSocket-Version:13 \r\n"
                            "\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  char reply[512];
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);

  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_str_eq(wschat__handshake_header(hs, "Sec-WebSocket-Key"), RFC_KEY);
  cr_assert_gt(wschat__handshake_build_101(hs, reply, sizeof(reply)), 0);
  cr_assert_not_null(strstr(reply, "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"));
  wschat__handshake_free(hs);
}

Test(upgrade, absolute_form_target) {
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  const char *req = upgrade_request("http://server.example.com/chat?x=1", "");
  wschat__handshake *hs;

  cfg.path = "/chat";
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_str_eq(wschat__handshake_path(hs), "/chat");
  cr_assert_str_eq(wschat__handshake_query(hs), "x=1");
  wschat__handshake_free(hs);
}

Test(upgrade, path_match_ignores_the_query) {
  wschat__hs_config cfg = default_cfg();
  int status;
  size_t consumed;
  cfg.path = "/chat";
  cr_assert_eq(
      parse_status(&cfg, upgrade_request("/chat?a=b", ""), &status, &consumed),
      WSCHAT__HS_UPGRADE);
  cr_assert_eq(
      parse_status(&cfg, upgrade_request("/chat/", ""), &status, &consumed),
      WSCHAT__HS_REJECT);
  cr_assert_eq(status, 404);
}

/* ------------------------------------------------------------------------
 * Token lists
 * ---------------------------------------------------------------------- */

static wschat__hs_state parse_with(const char *lines, int *status) {
  char req[2048];
  size_t consumed;
  wschat__hs_config cfg = default_cfg();
  snprintf(req, sizeof(req),
           "GET /chat HTTP/1.1\r\n"
           "Host: h\r\n"
           "Sec-WebSocket-Key: " RFC_KEY "\r\n"
           "Sec-WebSocket-Version: 13\r\n"
           "%s\r\n",
           lines);
  return parse_status(&cfg, req, status, &consumed);
}

Test(tokens, connection_and_upgrade_lists) {
  static const char *const accepted[] = {
      "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n",
      "Upgrade: websocket\r\nConnection: UPGRADE\r\n",
      "Upgrade: websocket\r\nConnection: upgrade\r\n",
      "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n",
      "Upgrade: websocket\r\nConnection: ,, Upgrade ,\r\n",
      "Upgrade: WebSocket\r\nConnection: Upgrade\r\n",
      "Upgrade: h2c, websocket\r\nConnection: Upgrade, HTTP2-Settings\r\n",
      "Upgrade: h2c\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
  };
  static const char *const refused[] = {
      "Upgrade: websocket\r\nConnection: keep-alive\r\n",
      "Upgrade: websocket\r\nConnection: upgraded\r\n",
      "Upgrade: websocket\r\nConnection: up grade\r\n",
      "Upgrade: websocket\r\nConnection:\r\n",
  };
  size_t i;
  int status;

  for (i = 0; i < sizeof(accepted) / sizeof(*accepted); i++)
    cr_assert_eq(parse_with(accepted[i], &status), WSCHAT__HS_UPGRADE,
                 "refused: %s", accepted[i]);
  for (i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
    cr_assert_eq(parse_with(refused[i], &status), WSCHAT__HS_REJECT,
                 "accepted: %s", refused[i]);
    cr_assert_eq(status, 400, "%s", refused[i]);
  }
}

Test(tokens, upgrade_to_something_else_is_plain_http) {
  int status;
  cr_assert_eq(parse_with("Upgrade: h2c\r\nConnection: Upgrade\r\n", &status),
               WSCHAT__HS_HTTP);
  cr_assert_eq(
      parse_with("Upgrade: websockets\r\nConnection: Upgrade\r\n", &status),
      WSCHAT__HS_HTTP);
}

/* ------------------------------------------------------------------------
 * Subprotocols
 * ---------------------------------------------------------------------- */

static const char *pick(const char *const *mine, size_t n, const char *lines,
                        wschat__handshake **out) {
  wschat__hs_config cfg = {8192, 64, NULL, mine, n};
  size_t consumed;
  const char *req = upgrade_request("/", lines);
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  const char *sel;
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  sel = wschat__handshake_subprotocol(hs);
  if (out != NULL)
    *out = hs;
  else
    wschat__handshake_free(hs);
  return sel;
}

Test(subprotocol, client_order_decides) {
  static const char *const ab[] = {"a", "b"};
  cr_assert_eq(pick(ab, 2, "Sec-WebSocket-Protocol: b, a\r\n", NULL), ab[1]);
  cr_assert_eq(pick(ab, 2, "Sec-WebSocket-Protocol: a, b\r\n", NULL), ab[0]);
  cr_assert_eq(pick(ab, 2, "Sec-WebSocket-Protocol: x,b,a\r\n", NULL), ab[1]);
}

Test(subprotocol, several_header_lines) {
  static const char *const ab[] = {"a", "b"};
  cr_assert_eq(pick(ab, 2,
                    "Sec-WebSocket-Protocol: x, y\r\n"
                    "Sec-WebSocket-Protocol: b\r\n"
                    "Sec-WebSocket-Protocol: a\r\n",
                    NULL),
               ab[1]);
}

Test(subprotocol, none_in_common) {
  static const char *const ab[] = {"a", "b"};
  static const char expected[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                 "\r\n";
  wschat__handshake *hs;
  char reply[512];

  cr_assert_null(pick(ab, 2, "Sec-WebSocket-Protocol: c, d\r\n", &hs));
  cr_assert_eq(wschat__handshake_build_101(hs, reply, sizeof(reply)),
               (int)strlen(expected));
  cr_assert_str_eq(reply, expected);
  wschat__handshake_free(hs);
  /* Tokens are case-sensitive, and partial matches do not count. */
  cr_assert_null(pick(ab, 2, "Sec-WebSocket-Protocol: A, B\r\n", NULL));
  cr_assert_null(pick(ab, 2, "Sec-WebSocket-Protocol: ab\r\n", NULL));
  cr_assert_null(pick(ab, 2, "", NULL));
  cr_assert_null(pick(NULL, 0, "Sec-WebSocket-Protocol: a\r\n", NULL));
}

Test(subprotocol, reply_names_it) {
  static const char *const mine[] = {"json.v1"};
  static const char expected[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                 "Sec-WebSocket-Protocol: json.v1\r\n"
                                 "\r\n";
  wschat__handshake *hs;
  char reply[512];

  cr_assert_eq(pick(mine, 1, "Sec-WebSocket-Protocol: text, json.v1\r\n", &hs),
               mine[0]);
  cr_assert_eq(wschat__handshake_build_101(hs, reply, sizeof(reply)),
               (int)strlen(expected));
  cr_assert_str_eq(reply, expected);
  /* One byte short of room for the reply and its NUL. */
  cr_assert_eq(wschat__handshake_build_101(hs, reply, strlen(expected)),
               WSCHAT_EINVAL);
  wschat__handshake_free(hs);
}

/* ------------------------------------------------------------------------
 * Rejections
 * ---------------------------------------------------------------------- */

typedef struct reject_case {
  const char *name;
  const char *request;
  int status;
  const char *reason; /* NULL: any non-empty reason */
} reject_case;

#define LINE_HOST "Host: h\r\n"
#define LINE_UPG  "Upgrade: websocket\r\n"
#define LINE_CONN "Connection: Upgrade\r\n"
#define LINE_KEY  "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define LINE_VER  "Sec-WebSocket-Version: 13\r\n"

static const reject_case reject_cases[] = {
    {"POST",
     "POST /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY LINE_VER
     "\r\n",
     405, NULL},
    {"HEAD",
     "HEAD /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY LINE_VER
     "\r\n",
     405, NULL},
    {"HTTP/1.0",
     "GET /chat HTTP/1.0\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY LINE_VER
     "\r\n",
     400, NULL},
    {"wrong path",
     "GET /other HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY LINE_VER
     "\r\n",
     404, NULL},
    {"no Host",
     "GET /chat HTTP/1.1\r\n" LINE_UPG LINE_CONN LINE_KEY LINE_VER "\r\n", 400,
     "missing Host header"},
    {"Upgrade without Connection",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_KEY LINE_VER "\r\n", 400,
     NULL},
    {"Connection: keep-alive only",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG
     "Connection: keep-alive\r\n" LINE_KEY LINE_VER "\r\n",
     400, NULL},
    {"version 8",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY
     "Sec-WebSocket-Version: 8\r\n\r\n",
     426, "unsupported Sec-WebSocket-Version"},
    {"version 13, 8",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY
     "Sec-WebSocket-Version: 13, 8\r\n\r\n",
     426, "unsupported Sec-WebSocket-Version"},
    {"no version",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY "\r\n", 426,
     NULL},
    {"key of 23 characters",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n" LINE_VER "\r\n",
     400, NULL},
    {"key of 25 characters",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n" LINE_VER "\r\n",
     400, NULL},
    {"key with a bad character",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n" LINE_VER "\r\n",
     400, NULL},
    {"key of 15 bytes",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" LINE_VER "\r\n",
     400, NULL},
    {"key of 17 bytes",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" LINE_VER "\r\n",
     400, NULL},
    {"key with inner space",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBu b25jZQ==\r\n" LINE_VER "\r\n",
     400, NULL},
    {"empty key",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN
     "Sec-WebSocket-Key:\r\n" LINE_VER "\r\n",
     400, NULL},
    {"no key",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_VER "\r\n", 400,
     "missing Sec-WebSocket-Key header"},
    /* Several faults: the first in the documented order wins. */
    {"POST, HTTP/1.0, no Host", "POST /other HTTP/1.0\r\n" LINE_UPG "\r\n", 405,
     NULL},
    {"HTTP/1.0 on a wrong path",
     "GET /other HTTP/1.0\r\n" LINE_HOST LINE_UPG LINE_CONN "\r\n", 400, NULL},
    {"wrong path, no Host", "GET /other HTTP/1.1\r\n" LINE_UPG "\r\n", 404,
     NULL},
    {"no Host, no Connection", "GET /chat HTTP/1.1\r\n" LINE_UPG "\r\n", 400,
     "missing Host header"},
    {"no version, no key",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN "\r\n", 426, NULL},
    /* Headers that must appear once (RFC 9112 3.2, RFC 6455 11.3). */
    {"two Host lines",
     "GET /chat HTTP/1.1\r\n" LINE_HOST
     "Host: other\r\n" LINE_UPG LINE_CONN LINE_KEY LINE_VER "\r\n",
     400, "more than one Host header"},
    {"two keys",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY
     "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" LINE_VER "\r\n",
     400, "more than one Sec-WebSocket-Key header"},
    {"two versions",
     "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_CONN LINE_KEY LINE_VER
     "Sec-WebSocket-Version: 8\r\n\r\n",
     400, "more than one Sec-WebSocket-Version header"},
};

Test(reject, each_fault_with_its_status) {
  wschat__hs_config cfg = default_cfg();
  size_t i;

  cfg.path = "/chat";
  for (i = 0; i < sizeof(reject_cases) / sizeof(*reject_cases); i++) {
    const reject_case *c = &reject_cases[i];
    size_t consumed;
    wschat__handshake *hs =
        parse_all_ways(&cfg, c->request, strlen(c->request), &consumed);
    cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT, "%s", c->name);
    cr_assert_eq(wschat__handshake_status(hs), c->status, "%s: got %d", c->name,
                 wschat__handshake_status(hs));
    cr_assert_gt(strlen(wschat__handshake_error(hs)), 0, "%s", c->name);
    if (c->reason != NULL)
      cr_assert_str_eq(wschat__handshake_error(hs), c->reason, "%s", c->name);
    /* Decided at the end of the head, not after waiting for a body. */
    cr_assert_eq(consumed, strlen(c->request), "%s", c->name);
    cr_assert_null(wschat__handshake_subprotocol(hs), "%s", c->name);
    wschat__handshake_free(hs);
  }
  cr_assert_eq(live_blocks, 0);
}

Test(reject, upgrade_without_connection_does_not_wait_for_a_body) {
  /* http-parser does not flag this as an upgrade; the head must still end
   * where it ends, with what follows left unread. */
  static const char req[] =
      "GET /chat HTTP/1.1\r\n" LINE_HOST LINE_UPG LINE_KEY LINE_VER "\r\n";
  char buf[1024];
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs;

  snprintf(buf, sizeof(buf), "%s\x81\x85\x37\xfa\x21\x3d\x7f", req);
  hs = parse_all_ways(&cfg, buf, strlen(buf), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 400);
  cr_assert_eq(consumed, strlen(req));
  wschat__handshake_free(hs);
}

Test(reject, complete_head_is_visible_after_a_rejection) {
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  const char *req = upgrade_request("/other?q=1", "");
  wschat__handshake *hs;

  cfg.path = "/chat";
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 404);
  cr_assert_str_eq(wschat__handshake_method(hs), "GET");
  cr_assert_str_eq(wschat__handshake_path(hs), "/other");
  cr_assert_str_eq(wschat__handshake_query(hs), "q=1");
  cr_assert_str_eq(wschat__handshake_header(hs, "Host"), "server.example.com");
  wschat__handshake_free(hs);
}

Test(reject, head_cut_short_shows_nothing) {
  /* Whatever the split, a head rejected half-way exposes no fields. */
  static const char req[] = "GET /a?b HTTP/1.1\r\nHost: h\r\nX-Bad: a\x01\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 400);
  cr_assert_str_eq(wschat__handshake_method(hs), "");
  cr_assert_str_eq(wschat__handshake_path(hs), "");
  cr_assert_str_eq(wschat__handshake_query(hs), "");
  cr_assert_null(wschat__handshake_header(hs, "Host"));
  wschat__handshake_free(hs);
}

Test(reject, errors_are_empty_until_rejected) {
  wschat__hs_config cfg = default_cfg();
  const char *req = upgrade_request("/", "");
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 0);
  cr_assert_str_eq(wschat__handshake_error(hs), "");
  wschat__handshake_free(hs);
}

Test(malformed, garbage_is_400) {
  static const char *const garbage[] = {
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
      "HELLO\r\n\r\n",
      "GET / HTTP/1.1\r\nHost\r\n\r\n",
      "GET / HTTP/1.1\r\n: x\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
      "GET / HTTP/x.1\r\n\r\n",
      "GET /a b HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "\r\n\r\n\r\n\x01",
  };
  wschat__hs_config cfg = default_cfg();
  size_t i;

  for (i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
    size_t consumed;
    wschat__handshake *hs =
        parse_all_ways(&cfg, garbage[i], strlen(garbage[i]), &consumed);
    cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT, "case %zu", i);
    cr_assert_eq(wschat__handshake_status(hs), 400, "case %zu", i);
    cr_assert_gt(strlen(wschat__handshake_error(hs)), 0);
    wschat__handshake_free(hs);
  }
}

Test(malformed, first_byte_decides) {
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs = wschat__handshake_new(&cfg, &counting);
  cr_assert_eq(wschat__handshake_feed(hs, "\x16\x03\x01", 3, &consumed),
               WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 400);
  cr_assert_eq(consumed, 1);
  wschat__handshake_free(hs);
}

/* ------------------------------------------------------------------------
 * Limits
 * ---------------------------------------------------------------------- */

/* An upgrade whose head is exactly `len` bytes, padded with an X-Pad
 * header (the result is malloc'd). */
static char *request_of_length(size_t len) {
  const char *base = upgrade_request("/", "X-Pad: \r\n");
  size_t base_len = strlen(base);
  size_t pad;
  char *req;

  cr_assert_geq(len, base_len);
  pad = len - base_len;
  req = malloc(len + 1);
  cr_assert_not_null(req);
  /* Insert the padding into the value of X-Pad, before its CRLF. */
  {
    const char *at = strstr(base, "X-Pad: ") + strlen("X-Pad: ");
    size_t head = (size_t)(at - base);
    memcpy(req, base, head);
    memset(req + head, 'p', pad);
    memcpy(req + head + pad, at, base_len - head + 1);
  }
  cr_assert_eq(strlen(req), len);
  return req;
}

Test(limits, head_of_exactly_max_header_is_accepted) {
  wschat__hs_config cfg = default_cfg();
  char *req = request_of_length(8192);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, 8192, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, 8192);
  cr_assert_eq(strlen(wschat__handshake_header(hs, "X-Pad")),
               8192 - strlen(upgrade_request("/", "X-Pad: \r\n")));
  wschat__handshake_free(hs);
  free(req);
}

Test(limits, one_byte_over_is_431) {
  wschat__hs_config cfg = default_cfg();
  char *req = request_of_length(8193);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, 8193, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  cr_assert_str_eq(wschat__handshake_error(hs), "request head too large");
  /* Decided on the byte that passed the limit. */
  cr_assert_eq(consumed, 8193);
  wschat__handshake_free(hs);
  free(req);
}

Test(limits, huge_header_is_431_without_reading_it_all) {
  wschat__hs_config cfg = default_cfg();
  size_t len = 100000;
  char *req = malloc(len);
  size_t consumed;
  wschat__handshake *hs;
  static const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ";

  cr_assert_not_null(req);
  memset(req, 'a', len);
  memcpy(req, start, strlen(start));
  hs = parse_all_ways(&cfg, req, len, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  cr_assert_eq(consumed, 8193);
  wschat__handshake_free(hs);
  free(req);
}

static char *many_headers(unsigned n) {
  size_t cap = 64 + (size_t)n * 16;
  char *req = malloc(cap);
  size_t len;
  unsigned i;
  cr_assert_not_null(req);
  len = (size_t)snprintf(req, cap, "GET / HTTP/1.1\r\n");
  for (i = 0; i < n; i++)
    len += (size_t)snprintf(req + len, cap - len, "X-%u: v\r\n", i);
  snprintf(req + len, cap - len, "\r\n");
  return req;
}

Test(limits, too_many_headers_is_431) {
  wschat__hs_config cfg = default_cfg();
  char *req = many_headers(500);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  const char *line65 = strstr(req, "X-64:");

  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  cr_assert_str_eq(wschat__handshake_error(hs), "too many header lines");
  /* Decided on the first byte of the 65th line. */
  cr_assert_eq(consumed, (size_t)(line65 - req) + 1);
  wschat__handshake_free(hs);
  free(req);
}

Test(limits, header_count_is_decided_before_a_later_syntax_error) {
  /* The third line is over the count before its bad character is read;
   * a whole-buffer parse must not see the error first. */
  static const char req[] =
      "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC=bad: 3\r\n\r\n";
  wschat__hs_config cfg = {8192, 2, NULL, NULL, 0};
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  cr_assert_eq(consumed, (size_t)(strchr(req, 'C') - req) + 1);
  wschat__handshake_free(hs);

  /* A bare CR: where the next line starts is up to the parser, but it
   * must not depend on the split (parse_all_ways checks that). */
  hs = parse_all_ways(&cfg, "GET / HTTP/1.1\r\nA: 1\r\nB: \rxyz=\r\n\r\n", 34,
                      &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  wschat__handshake_free(hs);
}

Test(limits, exactly_max_header_count_is_accepted) {
  wschat__hs_config cfg = default_cfg();
  char *req = many_headers(64);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_HTTP);
  cr_assert_str_eq(wschat__handshake_header(hs, "x-63"), "v");
  wschat__handshake_free(hs);
  free(req);
}

static char *request_with_target(size_t target_len) {
  char *req = malloc(target_len + 64);
  cr_assert_not_null(req);
  memcpy(req, "GET /", 5);
  memset(req + 5, 'a', target_len - 1);
  strcpy(req + 4 + target_len, " HTTP/1.1\r\nHost: h\r\n\r\n");
  return req;
}

Test(limits, long_target_is_414) {
  wschat__hs_config cfg = default_cfg();
  char *req = request_with_target(9000);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 414);
  cr_assert_str_eq(wschat__handshake_error(hs), "request target too long");
  /* Decided on the target's 8193rd byte, after "GET ". */
  cr_assert_eq(consumed, 4 + 8193);
  wschat__handshake_free(hs);
  free(req);
}

Test(limits, target_at_the_limit_in_a_head_over_it_is_431) {
  /* The head is over max_header but the target itself is not. */
  wschat__hs_config cfg = default_cfg();
  char *req = request_with_target(8192);
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  cr_assert_eq(consumed, 4 + 8192 + 1);
  wschat__handshake_free(hs);
  free(req);

  req = request_with_target(8193);
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 414);
  wschat__handshake_free(hs);
  free(req);
}

Test(limits, small_max_header) {
  wschat__hs_config cfg = {256, 64, NULL, NULL, 0};
  char *req = request_with_target(250);
  int status;
  size_t consumed;
  cr_assert_eq(parse_status(&cfg, req, &status, &consumed), WSCHAT__HS_REJECT);
  cr_assert_eq(status, 431);
  free(req);
  req = request_with_target(257);
  cr_assert_eq(parse_status(&cfg, req, &status, &consumed), WSCHAT__HS_REJECT);
  cr_assert_eq(status, 414);
  free(req);
}

Test(limits, largest_max_header) {
  /* 32 KiB is the most the parser accepts: telling 414 from 431 may read
   * twice that, which must stay under http-parser's own 80 KiB limit. */
  wschat__hs_config cfg = {32768, 64, NULL, NULL, 0};
  wschat__hs_config too_big = {32769, 64, NULL, NULL, 0};
  char *req = request_of_length(30000);
  size_t consumed;
  wschat__handshake *hs = feed_split(&cfg, req, 30000, WHOLE, 0, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, 30000);
  wschat__handshake_free(hs);
  hs = feed_split(&cfg, req, 30000, RANDOM, 7, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(consumed, 30000);
  wschat__handshake_free(hs);
  free(req);

  req = request_with_target(32760);
  hs = feed_split(&cfg, req, strlen(req), WHOLE, 0, &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 431);
  wschat__handshake_free(hs);
  free(req);
  req = request_with_target(32769);
  hs = feed_split(&cfg, req, strlen(req), WHOLE, 0, &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 414);
  wschat__handshake_free(hs);
  free(req);
  req = request_with_target(40000);
  hs = feed_split(&cfg, req, strlen(req), BYTEWISE, 0, &consumed);
  cr_assert_eq(wschat__handshake_status(hs), 414);
  wschat__handshake_free(hs);
  free(req);

  cr_assert_null(wschat__handshake_new(&too_big, &counting));
}

/* ------------------------------------------------------------------------
 * Plain HTTP
 * ---------------------------------------------------------------------- */

Test(http, plain_get) {
  static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  char reply[512];
  wschat__handshake *hs;

  cfg.path = "/chat";
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_HTTP);
  cr_assert_eq(consumed, strlen(req));
  cr_assert_str_eq(wschat__handshake_method(hs), "GET");
  cr_assert_str_eq(wschat__handshake_path(hs), "/");
  cr_assert_str_eq(wschat__handshake_query(hs), "");
  cr_assert_str_eq(wschat__handshake_header(hs, "host"), "h");
  cr_assert_null(wschat__handshake_subprotocol(hs));
  cr_assert_eq(wschat__handshake_build_101(hs, reply, sizeof(reply)),
               WSCHAT_EINVAL);
  wschat__handshake_free(hs);
}

Test(http, path_query_and_method) {
  static const char req[] =
      "HEAD /index.html?a=1&b=%20#frag HTTP/1.0\r\nUser-Agent: t\r\n\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_HTTP);
  cr_assert_str_eq(wschat__handshake_method(hs), "HEAD");
  cr_assert_str_eq(wschat__handshake_path(hs), "/index.html");
  cr_assert_str_eq(wschat__handshake_query(hs), "a=1&b=%20");
  cr_assert_null(wschat__handshake_header(hs, "Host"));
  wschat__handshake_free(hs);
}

Test(http, body_is_left_unread) {
  static const char head[] = "POST /form HTTP/1.1\r\nHost: h\r\n"
                             "Content-Length: 11\r\n\r\n";
  char req[256];
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs;

  snprintf(req, sizeof(req), "%shello world", head);
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_HTTP);
  cr_assert_str_eq(wschat__handshake_method(hs), "POST");
  cr_assert_eq(consumed, strlen(head));
  wschat__handshake_free(hs);
}

Test(http, header_values) {
  static const char req[] = "GET / HTTP/1.1\r\n"
                            "X-Empty:\r\n"
                            "Host: first\r\n"
                            "X-Trail: v \t \r\n"
                            "host: second\r\n"
                            "X-Blank:   \r\n"
                            "X-Inner: a  b\r\n"
                            "\r\n";
  wschat__hs_config cfg = default_cfg();
  size_t consumed;
  wschat__handshake *hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_HTTP);
  cr_assert_str_eq(wschat__handshake_header(hs, "x-empty"), "");
  cr_assert_str_eq(wschat__handshake_header(hs, "HOST"), "first");
  cr_assert_str_eq(wschat__handshake_header(hs, "x-trail"), "v");
  cr_assert_str_eq(wschat__handshake_header(hs, "X-BLANK"), "");
  cr_assert_str_eq(wschat__handshake_header(hs, "X-Inner"), "a  b");
  cr_assert_null(wschat__handshake_header(hs, "X-Emp"));
  cr_assert_null(wschat__handshake_header(hs, "X-Empty2"));
  cr_assert_null(wschat__handshake_header(hs, NULL));
  wschat__handshake_free(hs);
}

/* ------------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------- */

Test(memory, free_releases_everything) {
  static const char *const protos[] = {"chat"};
  wschat__hs_config cfg = {8192, 64, "/chat", protos, 1};
  wschat__handshake *hs;
  size_t consumed;

  cr_assert_eq(live_blocks, 0);
  hs = wschat__handshake_new(&cfg, &counting);
  cr_assert_not_null(hs);
  cr_assert_eq(live_blocks, 1, "one allocation per parser");
  wschat__handshake_feed(hs, rfc_request, strlen(rfc_request), &consumed);
  cr_assert_eq(live_blocks, 1, "no allocation while parsing a usual head");
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);

  /* Abandoned half-way, and rejected. */
  hs = wschat__handshake_new(&cfg, &counting);
  wschat__handshake_feed(hs, rfc_request, 40, &consumed);
  wschat__handshake_free(hs);
  hs = wschat__handshake_new(&cfg, &counting);
  wschat__handshake_feed(hs, "BREW / HTCPCP/1.0\r\n", 19, &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);
  wschat__handshake_free(NULL);
}

/* A head larger than the parser's inline room: the arena and the header
 * slots move to blocks of their own, every split still agrees, and the
 * path and query (stored before the move) still read right. */
Test(memory, large_head_grows_and_frees) {
  wschat__hs_config cfg = {8192, 64, NULL, NULL, 0};
  char extra[6000];
  char pad[2501];
  const char *req;
  size_t off = 0, consumed;
  wschat__handshake *hs;
  unsigned i;
  memset(pad, 'p', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  for (i = 0; i < 40; i++)
    off += (size_t)snprintf(extra + off, sizeof(extra) - off,
                            "X-H%u: value-%u\r\n", i, i);
  snprintf(extra + off, sizeof(extra) - off, "X-Pad: %s\r\n", pad);
  req = upgrade_request("/chat?room=a&b=1", extra);
  hs = parse_all_ways(&cfg, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_gt(live_blocks, 1, "a large head must leave the inline room");
  cr_assert_str_eq(wschat__handshake_path(hs), "/chat");
  cr_assert_str_eq(wschat__handshake_query(hs), "room=a&b=1");
  cr_assert_str_eq(wschat__handshake_header(hs, "X-H0"), "value-0");
  cr_assert_str_eq(wschat__handshake_header(hs, "x-h39"), "value-39");
  cr_assert_str_eq(wschat__handshake_header(hs, "X-Pad"), pad);
  cr_assert_str_eq(wschat__handshake_header(hs, "Sec-WebSocket-Key"),
                   RFC_KEY);
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);
}

/* reset: a finished parser starts over, giving back what it grew. */
Test(memory, reset_reuses_the_parser) {
  wschat__hs_config cfg = default_cfg();
  wschat__hs_config other = {4096, 32, "/other", NULL, 0};
  char pad[3000];
  char extra[3100];
  size_t consumed;
  const char *req;
  wschat__handshake *hs = wschat__handshake_new(&cfg, &counting);
  memset(pad, 'q', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  snprintf(extra, sizeof(extra), "X-Pad: %s\r\n", pad);
  req = upgrade_request("/chat", extra);
  wschat__handshake_feed(hs, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_UPGRADE);
  cr_assert_eq(live_blocks, 2);
  cr_assert_eq(wschat__handshake_reset(hs, &other), 0);
  cr_assert_eq(live_blocks, 1, "reset gives the grown arena back");
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_MORE);
  cr_assert_null(wschat__handshake_header(hs, "X-Pad"));
  req = upgrade_request("/chat", "");
  wschat__handshake_feed(hs, req, strlen(req), &consumed);
  /* The new config applies: its path is /other. */
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 404);
  cr_assert_eq(wschat__handshake_reset(NULL, &cfg), WSCHAT_EINVAL);
  cr_assert_eq(wschat__handshake_reset(hs, NULL), WSCHAT_EINVAL);
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);
}

/* Memory running out while the arena grows is the server's problem, not
 * the request's: 503, and nothing leaks. */
static int grow_budget;
static void *budget_realloc(void *ptr, size_t size) {
  if (ptr == NULL && grow_budget-- <= 0)
    return NULL;
  return counting_realloc(ptr, size);
}

Test(memory, out_of_memory_while_growing_is_503) {
  static const wschat__allocator budget = {budget_realloc, counting_free};
  wschat__hs_config cfg = default_cfg();
  char pad[2000];
  char extra[2100];
  size_t consumed;
  const char *req;
  wschat__handshake *hs;
  memset(pad, 'r', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  snprintf(extra, sizeof(extra), "X-Pad: %s\r\n", pad);
  req = upgrade_request("/chat", extra);
  grow_budget = 1; /* the parser itself, nothing more */
  hs = wschat__handshake_new(&cfg, &budget);
  cr_assert_not_null(hs);
  wschat__handshake_feed(hs, req, strlen(req), &consumed);
  cr_assert_eq(wschat__handshake_state(hs), WSCHAT__HS_REJECT);
  cr_assert_eq(wschat__handshake_status(hs), 503);
  cr_assert_str_eq(wschat__handshake_error(hs), "out of memory");
  wschat__handshake_free(hs);
  cr_assert_eq(live_blocks, 0);
}

Test(memory, out_of_memory_gives_null) {
  static const wschat__allocator failing = {failing_realloc, counting_free};
  wschat__hs_config cfg = default_cfg();
  cr_assert_null(wschat__handshake_new(&cfg, &failing));
  cr_assert_null(wschat__handshake_new(NULL, &counting));
  cfg.max_header = SIZE_MAX;
  cr_assert_null(wschat__handshake_new(&cfg, &counting));
  cr_assert_eq(live_blocks, 0);
}

/* ------------------------------------------------------------------------
 * HTTP response heads
 * ---------------------------------------------------------------------- */

Test(reply, head_426_names_the_version) {
  static const char expected[] = "HTTP/1.1 426 Upgrade Required\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 17\r\n"
                                 "Sec-WebSocket-Version: 13\r\n"
                                 "Connection: close\r\n"
                                 "\r\n";
  char out[512];
  cr_assert_eq(
      wschat__http_build_head(426, "text/plain", NULL, 17, out, sizeof(out)),
      (int)strlen(expected));
  cr_assert_str_eq(out, expected);
  cr_assert_not_null(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
}

Test(reply, head_405_allows_get) {
  static const char expected[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                                 "Content-Length: 0\r\n"
                                 "Allow: GET\r\n"
                                 "Connection: close\r\n"
                                 "\r\n";
  char out[512];
  cr_assert_eq(wschat__http_build_head(405, NULL, NULL, 0, out, sizeof(out)),
               (int)strlen(expected));
  cr_assert_str_eq(out, expected);
}

Test(reply, head_405_with_its_own_allow_line) {
  static const char expected[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                                 "Content-Length: 0\r\n"
                                 "Connection: close\r\n"
                                 "X-A: 1\r\n"
                                 "allow: GET, HEAD\r\n"
                                 "\r\n";
  char out[512];
  cr_assert_eq(wschat__http_build_head(405, NULL,
                                       "X-A: 1\r\nallow: GET, HEAD\r\n", 0, out,
                                       sizeof(out)),
               (int)strlen(expected));
  cr_assert_str_eq(out, expected);
}

Test(reply, head_with_extra_lines) {
  static const char expected[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: text/html\r\n"
                                 "Content-Length: 1234567\r\n"
                                 "Connection: close\r\n"
                                 "Cache-Control: no-store\r\n"
                                 "X-A: b\r\n"
                                 "\r\n";
  char out[512];
  cr_assert_eq(wschat__http_build_head(200, "text/html",
                                       "Cache-Control: no-store\r\nX-A: b\r\n",
                                       1234567, out, sizeof(out)),
               (int)strlen(expected));
  cr_assert_str_eq(out, expected);
}

Test(reply, no_content_length_for_204) {
  static const char expected[] = "HTTP/1.1 204 No Content\r\n"
                                 "Connection: close\r\n"
                                 "\r\n";
  char out[128];
  cr_assert_eq(wschat__http_build_head(204, NULL, NULL, 0, out, sizeof(out)),
               (int)strlen(expected));
  cr_assert_str_eq(out, expected);
}

Test(reply, head_that_does_not_fit) {
  char out[256];
  size_t need;
  cr_assert_eq(wschat__http_build_head(404, NULL, NULL, 0, out, 10),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat__http_build_head(404, NULL, NULL, 0, out, 0),
               WSCHAT_EINVAL);
  need = (size_t)wschat__http_build_head(404, NULL, NULL, 0, out, sizeof(out));
  cr_assert_eq(wschat__http_build_head(404, NULL, NULL, 0, out, need),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat__http_build_head(404, NULL, NULL, 0, out, need + 1),
               (int)need);
  cr_assert_eq(wschat__http_build_head(99, NULL, NULL, 0, out, sizeof(out)),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat__http_build_head(600, NULL, NULL, 0, out, sizeof(out)),
               WSCHAT_EINVAL);
}

Test(reply, status_texts) {
  static const struct {
    int status;
    const char *text;
  } known[] = {
      {101, "Switching Protocols"},
      {200, "OK"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {413, "Payload Too Large"},
      {414, "URI Too Long"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {299, "Unknown"},
      {-1, "Unknown"},
  };
  size_t i;
  for (i = 0; i < sizeof(known) / sizeof(*known); i++)
    cr_assert_str_eq(wschat__http_status_text(known[i].status), known[i].text);
}
