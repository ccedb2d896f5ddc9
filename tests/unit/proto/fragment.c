/*
 * Unit tests for lib/proto/fragment.c: the streaming frame reader.
 *
 * Input is fed from exactly-sized heap blocks (one per chunk), so that a
 * read past the end of what was fed shows up under ASan and valgrind, and
 * memory comes from a counting allocator, so that tests can assert what
 * was allocated, when, and that nothing is left behind.
 */
#include <criterion/criterion.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto/fragment.h"

/* ---- counting allocator ---------------------------------------------- */

typedef union block {
  size_t size;
  max_align_t align;
} block;

static size_t live_blocks;
static size_t live_bytes;
static size_t peak_bytes;
static size_t alloc_calls;
static long fail_after = -1; /* calls that succeed before one fails */

static void *test_realloc(void *ptr, size_t size) {
  block *old = ptr != NULL ? (block *)ptr - 1 : NULL;
  size_t old_size = old != NULL ? old->size : 0;
  block *b;

  cr_assert_gt(size, 0, "realloc of 0 bytes");
  if (fail_after == 0)
    return NULL;
  if (fail_after > 0)
    fail_after--;
  alloc_calls++;
  b = realloc(old, sizeof(block) + size);
  cr_assert_not_null(b);
  if (old == NULL)
    live_blocks++;
  b->size = size;
  live_bytes = live_bytes - old_size + size;
  if (live_bytes > peak_bytes)
    peak_bytes = live_bytes;
  return b + 1;
}

static void test_free(void *ptr) {
  block *b;
  if (ptr == NULL)
    return;
  b = (block *)ptr - 1;
  live_blocks--;
  live_bytes -= b->size;
  free(b);
}

static const wschat__allocator test_alloc = {test_realloc, test_free};

static void reset_allocator(void) {
  live_blocks = live_bytes = peak_bytes = alloc_calls = 0;
  fail_after = -1;
}

/* ---- recording callbacks --------------------------------------------- */

enum { EV_MESSAGE = 1, EV_CONTROL = 2 };

typedef struct event {
  int kind;
  int opcode;
  size_t len;
  uint8_t *data;      /* a copy */
  const uint8_t *ptr; /* what the reader passed */
} event;

#define MAX_EVENTS 64

typedef struct recorder {
  event ev[MAX_EVENTS];
  size_t n;
  int stop_every; /* every callback returns nonzero */
} recorder;

static int record(recorder *rec, int kind, int opcode, uint8_t *data,
                  size_t len) {
  event *e;
  cr_assert_lt(rec->n, MAX_EVENTS);
  cr_assert_not_null(data, "callbacks always get a valid pointer");
  e = &rec->ev[rec->n++];
  e->kind = kind;
  e->opcode = opcode;
  e->len = len;
  e->ptr = data;
  e->data = malloc(len + 1);
  cr_assert_not_null(e->data);
  memcpy(e->data, data, len);
  /* The data is writable: scribbling on it must be harmless. */
  if (len > 0)
    data[0] ^= 0xFF;
  return rec->stop_every;
}

static int on_message(void *ctx, int opcode, uint8_t *data, size_t len) {
  cr_assert(opcode == WSCHAT__OP_TEXT || opcode == WSCHAT__OP_BINARY);
  if (opcode == WSCHAT__OP_TEXT)
    cr_assert(wschat__utf8_valid(data, len));
  return record(ctx, EV_MESSAGE, opcode, data, len);
}

static int on_control(void *ctx, int opcode, uint8_t *data, size_t len) {
  cr_assert(WSCHAT__OP_IS_CONTROL(opcode));
  cr_assert_leq(len, 125);
  return record(ctx, EV_CONTROL, opcode, data, len);
}

static const wschat__reader_cbs cbs = {on_message, on_control};

static void recorder_clear(recorder *rec) {
  for (size_t i = 0; i < rec->n; i++)
    free(rec->ev[i].data);
  rec->n = 0;
}

static void expect_event(const recorder *rec, size_t i, int kind, int opcode,
                         const void *data, size_t len) {
  const event *e;
  cr_assert_lt(i, rec->n, "event %zu missing (%zu events)", i, rec->n);
  e = &rec->ev[i];
  cr_assert_eq(e->kind, kind, "event %zu kind %d", i, e->kind);
  cr_assert_eq(e->opcode, opcode, "event %zu opcode %d", i, e->opcode);
  cr_assert_eq(e->len, len, "event %zu len %zu, want %zu", i, e->len, len);
  cr_assert_eq(memcmp(e->data, data, len), 0, "event %zu data", i);
}

static void expect_same_events(const recorder *a, const recorder *b,
                               const char *what) {
  cr_assert_eq(a->n, b->n, "%s: %zu events, want %zu", what, b->n, a->n);
  for (size_t i = 0; i < a->n; i++)
    expect_event(b, i, a->ev[i].kind, a->ev[i].opcode, a->ev[i].data,
                 a->ev[i].len);
}

static int points_into(const uint8_t *p, const uint8_t *buf, size_t len) {
  uintptr_t x = (uintptr_t)p, lo = (uintptr_t)buf;
  return x >= lo && x <= lo + len;
}

/* ---- building client streams ----------------------------------------- */

typedef struct bytes {
  uint8_t *p;
  size_t len;
  size_t cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    cr_assert_not_null(b->p);
  }
  if (n > 0)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void bytes_free(bytes *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

static unsigned key_counter;

/* A frame with any bits; masked with a key that changes from frame to
 * frame, applied here with a plain loop. */
static size_t frame_bits(bytes *b, int fin, uint8_t rsv, int opcode,
                         const void *payload, size_t len, int masked) {
  uint8_t hdr[WSCHAT__MAX_FRAME_HEADER];
  uint8_t key[4];
  size_t start = b->len, at, h;

  key_counter++;
  key[0] = (uint8_t)(0x37 + key_counter);
  key[1] = (uint8_t)(0xFA ^ key_counter);
  key[2] = (uint8_t)(0x21 + 3 * key_counter);
  key[3] = (uint8_t)(0x3D ^ (key_counter << 1));
  h = wschat__frame_encode_header(hdr, fin, rsv, opcode, len,
                                  masked ? key : NULL);
  put(b, hdr, h);
  at = b->len;
  put(b, payload, len);
  if (masked)
    for (size_t i = 0; i < len; i++)
      b->p[at + i] ^= key[i % 4];
  return b->len - start;
}

/* A masked client frame. */
static size_t frame(bytes *b, int fin, int opcode, const void *payload,
                    size_t len) {
  return frame_bits(b, fin, 0, opcode, payload, len, 1);
}

static size_t text(bytes *b, const char *s) {
  return frame(b, 1, WSCHAT__OP_TEXT, s, strlen(s));
}

/* ---- feeding --------------------------------------------------------- */

typedef struct splitter {
  size_t fixed; /* chunk size; 0 = everything at once */
  uint64_t rng; /* nonzero: random sizes in 1..max */
  size_t max;
} splitter;

static uint64_t next_random(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static size_t next_chunk(splitter *sp, size_t left) {
  size_t n = left;
  if (sp->rng != 0)
    n = 1 + (size_t)(next_random(&sp->rng) % sp->max);
  else if (sp->fixed != 0)
    n = sp->fixed;
  return n < left ? n : left;
}

static const splitter whole = {0, 0, 0};
static const splitter byte_at_a_time = {1, 0, 0};

/*
 * Feed s[0..len) through r in the chunks sp chooses. When a callback
 * stops the feed, the rest of the chunk is fed again, as a session would
 * on its next turn. Returns the total consumed, or the error.
 */
static int64_t feed_stream(wschat__reader *r, const uint8_t *s, size_t len,
                           splitter sp, recorder *rec) {
  size_t pos = 0;
  while (pos < len) {
    size_t n = next_chunk(&sp, len - pos), off = 0;
    uint8_t *chunk = malloc(n);
    cr_assert_not_null(chunk);
    memcpy(chunk, s + pos, n);
    while (off < n) {
      int64_t rc = wschat__reader_feed(r, chunk + off, n - off, &cbs, rec);
      if (rc < 0) {
        free(chunk);
        return rc;
      }
      cr_assert_gt(rc, 0, "a feed of %zu bytes consumed nothing", n - off);
      cr_assert_leq((size_t)rc, n - off);
      off += (size_t)rc;
    }
    free(chunk);
    pos += n;
  }
  return (int64_t)pos;
}

typedef struct conf {
  uint64_t max_message;
  unsigned flags;
  uint8_t rsv_allowed;
} conf;

static const conf server = {1 << 20, WSCHAT__FRAME_REQUIRE_MASK, 0};
static const conf client = {1 << 20, WSCHAT__FRAME_REQUIRE_UNMASKED, 0};

static void setup(wschat__reader *r, const conf *c) {
  wschat__reader_init(r, c->max_message, &test_alloc);
  r->header_flags = c->flags;
  r->rsv_allowed = c->rsv_allowed;
}

/* Feed a whole stream and expect it all consumed, nothing left held. */
static void feed_ok(const conf *c, const bytes *s, splitter sp, recorder *rec) {
  wschat__reader r;
  setup(&r, c);
  cr_assert_eq(feed_stream(&r, s->p, s->len, sp, rec), (int64_t)s->len);
  cr_assert_eq(wschat__reader_buffered(&r), 0);
  cr_assert_eq(live_blocks, 0, "an idle reader holds memory");
  wschat__reader_free(&r);
}

/*
 * Feed s whole, one byte at a time and in random pieces: each must fail
 * with err, close_code and why after the same callbacks, and leak
 * nothing. The callbacks of the whole feed are left in *rec.
 */
static void expect_failure(const conf *c, const bytes *s, int err,
                           int close_code, const char *why, recorder *rec) {
  for (int mode = 0; mode < 12; mode++) {
    splitter sp = mode == 0 ? whole : byte_at_a_time;
    recorder got = {0};
    wschat__reader r;
    int64_t rc;

    if (mode >= 2)
      sp = (splitter){0, 0x1234567ull * (uint64_t)mode, 2 + 3 * mode};
    setup(&r, c);
    rc = feed_stream(&r, s->p, s->len, sp, mode == 0 ? rec : &got);
    cr_assert_eq(rc, err, "mode %d: rc %lld, want %d", mode, (long long)rc,
                 err);
    cr_assert_eq(r.close_code, close_code, "mode %d: close code %d", mode,
                 r.close_code);
    cr_assert_not_null(r.error);
    cr_assert_str_eq(r.error, why, "mode %d", mode);
    wschat__reader_free(&r);
    cr_assert_eq(live_blocks, 0, "mode %d leaked", mode);
    if (mode > 0) {
      expect_same_events(rec, &got, "split feed");
      recorder_clear(&got);
    }
  }
}

/* Most rejection tests put one good message first and check it was
 * delivered before the error. */
static void expect_rejected(const conf *c, const bytes *bad, int err,
                            int close_code, const char *why) {
  bytes s = {0};
  recorder rec = {0};
  if (c->flags & WSCHAT__FRAME_REQUIRE_UNMASKED)
    frame_bits(&s, 1, 0, WSCHAT__OP_TEXT, "ok", 2, 0);
  else
    text(&s, "ok");
  put(&s, bad->p, bad->len);
  expect_failure(c, &s, err, close_code, why, &rec);
  cr_assert_eq(rec.n, 1, "%zu events", rec.n);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
  recorder_clear(&rec);
  bytes_free(&s);
}

static void raw(bytes *b, const char *s, size_t n) {
  put(b, s, n);
}

TestSuite(reader, .init = reset_allocator);

/* ---- RFC 6455 section 5.7 examples ----------------------------------- */

static const uint8_t rfc_hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t rfc_fragmented[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                         0x80, 0x02, 0x6c, 0x6f};
static const uint8_t rfc_ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t rfc_ping_masked[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};

static void expect_rfc(const conf *c, const uint8_t *p, size_t len, int kind,
                       int opcode, const char *want) {
  bytes s = {0};
  recorder rec = {0};
  raw(&s, (const char *)p, len);
  feed_ok(c, &s, whole, &rec);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, kind, opcode, want, strlen(want));
  recorder_clear(&rec);
  feed_ok(c, &s, byte_at_a_time, &rec);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, kind, opcode, want, strlen(want));
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, rfc_unmasked_hello_as_client) {
  expect_rfc(&client, rfc_hello, sizeof(rfc_hello), EV_MESSAGE, WSCHAT__OP_TEXT,
             "Hello");
}

Test(reader, rfc_masked_hello_as_server) {
  expect_rfc(&server, rfc_hello_masked, sizeof(rfc_hello_masked), EV_MESSAGE,
             WSCHAT__OP_TEXT, "Hello");
}

Test(reader, rfc_fragmented_hello_as_client) {
  expect_rfc(&client, rfc_fragmented, sizeof(rfc_fragmented), EV_MESSAGE,
             WSCHAT__OP_TEXT, "Hello");
}

Test(reader, rfc_pings_and_pong) {
  expect_rfc(&client, rfc_ping, sizeof(rfc_ping), EV_CONTROL, WSCHAT__OP_PING,
             "Hello");
  expect_rfc(&server, rfc_ping_masked, sizeof(rfc_ping_masked), EV_CONTROL,
             WSCHAT__OP_PING, "Hello");
  expect_rfc(&server, rfc_pong_masked, sizeof(rfc_pong_masked), EV_CONTROL,
             WSCHAT__OP_PONG, "Hello");
}

Test(reader, rfc_256_byte_and_64k_binary) {
  static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
  static const uint8_t h64k[] = {0x82, 0x7F, 0x00, 0x00, 0x00,
                                 0x00, 0x00, 0x01, 0x00, 0x00};
  const conf c = {65536, WSCHAT__FRAME_REQUIRE_UNMASKED, 0};
  uint8_t *payload = malloc(65536);
  bytes s = {0};
  recorder rec = {0};

  for (size_t i = 0; i < 65536; i++)
    payload[i] = (uint8_t)(i * 31 + (i >> 8));
  put(&s, h256, sizeof(h256));
  put(&s, payload, 256);
  put(&s, h64k, sizeof(h64k));
  put(&s, payload, 65536);
  feed_ok(&c, &s, whole, &rec);
  cr_assert_eq(rec.n, 2);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_BINARY, payload, 256);
  expect_event(&rec, 1, EV_MESSAGE, WSCHAT__OP_BINARY, payload, 65536);
  recorder_clear(&rec);
  feed_ok(&c, &s, (splitter){1000, 0, 0}, &rec);
  cr_assert_eq(rec.n, 2);
  expect_event(&rec, 1, EV_MESSAGE, WSCHAT__OP_BINARY, payload, 65536);
  recorder_clear(&rec);
  bytes_free(&s);
  free(payload);
}

/* ---- any split gives the same callbacks ------------------------------ */

#define MIXED_TEXT "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 plain ascii words"

static void build_mixed_stream(bytes *s, uint8_t *big, size_t big_len) {
  static const char close_payload[] = "\x03\xE8"
                                      "bye";
  uint8_t ping125[125];
  memset(ping125, 'p', sizeof(ping125));

  /* Fragmented text with control frames between the fragments. */
  frame(s, 0, WSCHAT__OP_TEXT, "Hel", 3);
  frame(s, 1, WSCHAT__OP_PING, "p1", 2);
  frame(s, 0, WSCHAT__OP_CONT, "lo, w", 5);
  frame(s, 1, WSCHAT__OP_PONG, NULL, 0);
  frame(s, 1, WSCHAT__OP_CONT, "orld", 4);
  /* A 4-byte sequence split across fragments. */
  frame(s, 0, WSCHAT__OP_TEXT, "a\xF0\x9F", 3);
  frame(s, 1, WSCHAT__OP_CONT,
        "\x98\x80"
        "b",
        3);
  frame(s, 1, WSCHAT__OP_BINARY, big, 300);
  frame(s, 1, WSCHAT__OP_BINARY, big, big_len);
  text(s, MIXED_TEXT);
  text(s, "");
  /* Fragmented binary with an empty middle and a full-size ping. */
  frame(s, 0, WSCHAT__OP_BINARY, big, 1000);
  frame(s, 1, WSCHAT__OP_PING, ping125, sizeof(ping125));
  frame(s, 0, WSCHAT__OP_CONT, NULL, 0);
  frame(s, 1, WSCHAT__OP_CONT, big + 1000, 1);
  /* An empty fragmented text message. */
  frame(s, 0, WSCHAT__OP_TEXT, NULL, 0);
  frame(s, 1, WSCHAT__OP_CONT, NULL, 0);
  frame(s, 1, WSCHAT__OP_CLOSE, close_payload, 5);
}

static void expect_mixed_events(const recorder *rec, const uint8_t *big,
                                size_t big_len) {
  uint8_t ping125[125];
  memset(ping125, 'p', sizeof(ping125));
  cr_assert_eq(rec->n, 12, "%zu events", rec->n);
  expect_event(rec, 0, EV_CONTROL, WSCHAT__OP_PING, "p1", 2);
  expect_event(rec, 1, EV_CONTROL, WSCHAT__OP_PONG, "", 0);
  expect_event(rec, 2, EV_MESSAGE, WSCHAT__OP_TEXT, "Hello, world", 12);
  expect_event(rec, 3, EV_MESSAGE, WSCHAT__OP_TEXT,
               "a\xF0\x9F\x98\x80"
               "b",
               6);
  expect_event(rec, 4, EV_MESSAGE, WSCHAT__OP_BINARY, big, 300);
  expect_event(rec, 5, EV_MESSAGE, WSCHAT__OP_BINARY, big, big_len);
  expect_event(rec, 6, EV_MESSAGE, WSCHAT__OP_TEXT, MIXED_TEXT,
               strlen(MIXED_TEXT));
  expect_event(rec, 7, EV_MESSAGE, WSCHAT__OP_TEXT, "", 0);
  expect_event(rec, 8, EV_CONTROL, WSCHAT__OP_PING, ping125, 125);
  expect_event(rec, 9, EV_MESSAGE, WSCHAT__OP_BINARY, big, 1001);
  expect_event(rec, 10, EV_MESSAGE, WSCHAT__OP_TEXT, "", 0);
  expect_event(rec, 11, EV_CONTROL, WSCHAT__OP_CLOSE,
               "\x03\xE8"
               "bye",
               5);
}

Test(reader, any_split_gives_the_same_callbacks) {
  enum { BIG = 70000 };
  static const size_t maxima[] = {2, 3, 7, 16, 64, 200, 1500, 20000, 80000};
  uint8_t *big = malloc(BIG);
  bytes s = {0};
  recorder want = {0}, got = {0};

  for (size_t i = 0; i < BIG; i++)
    big[i] = (uint8_t)(i ^ (i >> 7));
  build_mixed_stream(&s, big, BIG);

  feed_ok(&server, &s, whole, &want);
  expect_mixed_events(&want, big, BIG);

  feed_ok(&server, &s, byte_at_a_time, &got);
  expect_same_events(&want, &got, "byte at a time");
  recorder_clear(&got);

  for (int i = 0; i < 400; i++) {
    splitter sp = {0, 0x9E3779B97F4A7C15ull + (uint64_t)i * 7919,
                   maxima[i % (sizeof(maxima) / sizeof(maxima[0]))]};
    feed_ok(&server, &s, sp, &got);
    expect_same_events(&want, &got, "random split");
    recorder_clear(&got);
  }
  /* Every two-piece split, around each frame boundary. */
  for (size_t cut = 1; cut < 400; cut++) {
    wschat__reader r;
    uint8_t *copy = malloc(s.len);
    memcpy(copy, s.p, s.len);
    setup(&r, &server);
    cr_assert_eq(wschat__reader_feed(&r, copy, cut, &cbs, &got), (int64_t)cut);
    cr_assert_eq(wschat__reader_feed(&r, copy + cut, s.len - cut, &cbs, &got),
                 (int64_t)(s.len - cut));
    expect_same_events(&want, &got, "two pieces");
    recorder_clear(&got);
    wschat__reader_free(&r);
    free(copy);
  }
  recorder_clear(&want);
  bytes_free(&s);
  free(big);
}

Test(reader, callback_stop_returns_through_that_frame) {
  bytes s = {0};
  recorder rec = {0};
  size_t ends[6], n = 0;
  wschat__reader r;
  uint8_t *copy;
  size_t pos = 0;

  /* Where each callback's frame ends: "b" alone delivers nothing. */
  text(&s, "a");
  ends[n++] = s.len;
  frame(&s, 0, WSCHAT__OP_TEXT, "b", 1);
  frame(&s, 1, WSCHAT__OP_PING, "p", 1);
  ends[n++] = s.len;
  frame(&s, 1, WSCHAT__OP_CONT, "c", 1);
  ends[n++] = s.len;
  frame(&s, 1, WSCHAT__OP_BINARY, "d", 1);
  ends[n++] = s.len;
  copy = malloc(s.len);
  memcpy(copy, s.p, s.len);

  setup(&r, &server);
  rec.stop_every = 1;
  for (size_t i = 0; i < n; i++) {
    int64_t rc = wschat__reader_feed(&r, copy + pos, s.len - pos, &cbs, &rec);
    cr_assert_eq(rc, (int64_t)(ends[i] - pos), "stop %zu: %lld", i,
                 (long long)rc);
    pos += (size_t)rc;
  }
  cr_assert_eq(pos, s.len);
  cr_assert_eq(rec.n, 4);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "a", 1);
  expect_event(&rec, 1, EV_CONTROL, WSCHAT__OP_PING, "p", 1);
  expect_event(&rec, 2, EV_MESSAGE, WSCHAT__OP_TEXT, "bc", 2);
  expect_event(&rec, 3, EV_MESSAGE, WSCHAT__OP_BINARY, "d", 1);
  cr_assert_eq(live_blocks, 0);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  free(copy);
  bytes_free(&s);
}

/* ---- zero copy ------------------------------------------------------- */

Test(reader, single_frame_messages_are_delivered_in_place) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *buf;

  text(&s, "Hello");
  frame(&s, 1, WSCHAT__OP_PING, "ping", 4);
  frame(&s, 1, WSCHAT__OP_BINARY, "\x00\x01\x02", 3);
  text(&s, "");
  buf = malloc(s.len);
  memcpy(buf, s.p, s.len);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, buf, s.len, &cbs, &rec), (int64_t)s.len);
  cr_assert_eq(rec.n, 4);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "Hello", 5);
  expect_event(&rec, 2, EV_MESSAGE, WSCHAT__OP_BINARY, "\x00\x01\x02", 3);
  for (size_t i = 0; i < rec.n; i++)
    cr_assert(points_into(rec.ev[i].ptr, buf, s.len), "event %zu copied", i);
  /* The payload was unmasked where it lay (the callback then flipped the
   * first byte, as it may). */
  cr_assert_eq(rec.ev[0].ptr[0], 'H' ^ 0xFF);
  cr_assert_eq(memcmp(rec.ev[0].ptr + 1, "ello", 4), 0);
  cr_assert_eq(alloc_calls, 0, "zero copy allocated");
  wschat__reader_free(&r);
  recorder_clear(&rec);
  free(buf);
  bytes_free(&s);
}

Test(reader, rfc_masked_hello_points_into_input) {
  uint8_t buf[sizeof(rfc_hello_masked)];
  recorder rec = {0};
  wschat__reader r;

  memcpy(buf, rfc_hello_masked, sizeof(buf));
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, buf, sizeof(buf), &cbs, &rec),
               (int64_t)sizeof(buf));
  cr_assert_eq(rec.n, 1);
  cr_assert_eq(rec.ev[0].ptr, buf + 6);
  cr_assert_eq(rec.ev[0].len, 5);
  cr_assert_eq(alloc_calls, 0);
  wschat__reader_free(&r);
  recorder_clear(&rec);
}

Test(reader, fragmented_message_is_assembled_then_freed) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *buf;

  frame(&s, 0, WSCHAT__OP_TEXT, "Hel", 3);
  frame(&s, 1, WSCHAT__OP_CONT, "lo", 2);
  buf = malloc(s.len);
  memcpy(buf, s.p, s.len);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, buf, s.len, &cbs, &rec), (int64_t)s.len);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "Hello", 5);
  cr_assert_not(points_into(rec.ev[0].ptr, buf, s.len));
  cr_assert_gt(alloc_calls, 0);
  cr_assert_eq(live_blocks, 0, "message buffer kept after delivery");
  wschat__reader_free(&r);
  recorder_clear(&rec);
  free(buf);
  bytes_free(&s);
}

Test(reader, split_payload_is_assembled_split_header_is_not) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *a, *b;
  size_t cut;

  text(&s, "Hello");
  /* The payload split across feeds: assembled. */
  cut = 6 + 2;
  a = malloc(cut);
  b = malloc(s.len - cut);
  memcpy(a, s.p, cut);
  memcpy(b, s.p + cut, s.len - cut);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, a, cut, &cbs, &rec), (int64_t)cut);
  cr_assert_eq(rec.n, 0);
  cr_assert_eq(wschat__reader_buffered(&r), 2);
  cr_assert_eq(wschat__reader_feed(&r, b, s.len - cut, &cbs, &rec),
               (int64_t)(s.len - cut));
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "Hello", 5);
  cr_assert_not(points_into(rec.ev[0].ptr, a, cut));
  cr_assert_not(points_into(rec.ev[0].ptr, b, s.len - cut));
  /* Never more than the frame announced. */
  cr_assert_eq(peak_bytes, 5);
  cr_assert_eq(live_blocks, 0);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  free(a);
  free(b);

  /* Only the header split: the payload is still delivered in place. */
  reset_allocator();
  cut = 3;
  a = malloc(cut);
  b = malloc(s.len - cut);
  memcpy(a, s.p, cut);
  memcpy(b, s.p + cut, s.len - cut);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, a, cut, &cbs, &rec), (int64_t)cut);
  cr_assert_eq(wschat__reader_feed(&r, b, s.len - cut, &cbs, &rec),
               (int64_t)(s.len - cut));
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "Hello", 5);
  cr_assert_eq(rec.ev[0].ptr, b + 3);
  cr_assert_eq(alloc_calls, 0);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  free(a);
  free(b);
  bytes_free(&s);
}

Test(reader, split_control_frame_is_assembled_then_released) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t payload[125];

  for (size_t i = 0; i < sizeof(payload); i++)
    payload[i] = (uint8_t)i;
  frame(&s, 1, WSCHAT__OP_PING, payload, sizeof(payload));
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, (splitter){10, 0, 0}, &rec),
               (int64_t)s.len);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_CONTROL, WSCHAT__OP_PING, payload, 125);
  /* Gathered in one 125-byte buffer, released once delivered. */
  cr_assert_eq(alloc_calls, 1);
  cr_assert_eq(live_blocks, 0, "an idle reader holds memory");
  cr_assert_null(r.ctl);
  /* Whole in one feed: delivered in place, nothing allocated. */
  alloc_calls = 0;
  cr_assert_eq(feed_stream(&r, s.p, s.len, (splitter){0, 0, 0}, &rec),
               (int64_t)s.len);
  cr_assert_eq(alloc_calls, 0);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, empty_messages_get_a_valid_pointer) {
  bytes s = {0};
  recorder rec = {0};
  text(&s, "");
  frame(&s, 0, WSCHAT__OP_BINARY, NULL, 0);
  frame(&s, 1, WSCHAT__OP_CONT, NULL, 0);
  frame(&s, 1, WSCHAT__OP_CLOSE, NULL, 0);
  feed_ok(&server, &s, whole, &rec);
  cr_assert_eq(rec.n, 3);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "", 0);
  expect_event(&rec, 1, EV_MESSAGE, WSCHAT__OP_BINARY, "", 0);
  expect_event(&rec, 2, EV_CONTROL, WSCHAT__OP_CLOSE, "", 0);
  cr_assert_eq(alloc_calls, 0);
  recorder_clear(&rec);
  bytes_free(&s);
}

/* ---- memory ---------------------------------------------------------- */

Test(reader, buffer_grows_geometrically_up_to_the_announced_end) {
  enum { LEN = 10000 };
  uint8_t *payload = malloc(LEN);
  bytes s = {0};
  recorder rec = {0};

  memset(payload, 'x', LEN);
  frame(&s, 1, WSCHAT__OP_BINARY, payload, LEN);
  feed_ok(&server, &s, (splitter){100, 0, 0}, &rec);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_BINARY, payload, LEN);
  cr_assert_eq(peak_bytes, LEN, "peak %zu", peak_bytes);
  cr_assert_leq(alloc_calls, 10, "%zu reallocs", alloc_calls);
  recorder_clear(&rec);
  bytes_free(&s);
  free(payload);
}

Test(reader, many_tiny_fragments_cost_few_reallocs) {
  enum { N = 3000 };
  bytes s = {0};
  recorder rec = {0};
  char want[N];

  for (size_t i = 0; i < N; i++) {
    want[i] = (char)('a' + i % 26);
    frame(&s, i == N - 1, i == 0 ? WSCHAT__OP_TEXT : WSCHAT__OP_CONT, &want[i],
          1);
  }
  feed_ok(&server, &s, whole, &rec);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, want, N);
  cr_assert_leq(alloc_calls, 12, "%zu reallocs", alloc_calls);
  cr_assert_leq(peak_bytes, 2 * N);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, free_releases_a_partial_message) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;

  frame(&s, 0, WSCHAT__OP_TEXT, "partial", 7);
  frame(&s, 0, WSCHAT__OP_CONT, " message", 8);
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, whole, &rec), (int64_t)s.len);
  cr_assert_eq(rec.n, 0);
  cr_assert_eq(wschat__reader_buffered(&r), 15);
  cr_assert_eq(live_blocks, 1);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  cr_assert_eq(live_bytes, 0);
  cr_assert_eq(wschat__reader_buffered(&r), 0);
  wschat__reader_free(&r); /* twice is harmless */

  /* Reusable after another init. */
  bytes_free(&s);
  text(&s, "again");
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, whole, &rec), (int64_t)s.len);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "again", 5);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, out_of_memory_is_1011) {
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;

  text(&s, "ok");
  frame(&s, 0, WSCHAT__OP_TEXT, "Hel", 3);
  frame(&s, 1, WSCHAT__OP_CONT, "lo", 2);
  fail_after = 0;
  /* Whole, "ok" needs no memory and arrives before the failure. */
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, whole, &rec), WSCHAT_ENOMEM);
  cr_assert_eq(r.close_code, 1011);
  cr_assert_str_eq(r.error, "out of memory");
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
  wschat__reader_free(&r);
  recorder_clear(&rec);
  /* Byte at a time even "ok" must be assembled, and cannot be. */
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, byte_at_a_time, &rec),
               WSCHAT_ENOMEM);
  cr_assert_eq(r.close_code, 1011);
  cr_assert_eq(rec.n, 0);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  bytes_free(&s);
}

Test(reader, out_of_memory_while_growing_keeps_the_old_block) {
  enum { LEN = 5000 };
  uint8_t *payload = calloc(1, LEN);
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;

  frame(&s, 1, WSCHAT__OP_BINARY, payload, LEN);
  fail_after = 1;
  setup(&r, &server);
  cr_assert_eq(feed_stream(&r, s.p, s.len, (splitter){500, 0, 0}, &rec),
               WSCHAT_ENOMEM);
  cr_assert_eq(r.close_code, 1011);
  cr_assert_eq(live_blocks, 1);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  cr_assert_eq(rec.n, 0);
  bytes_free(&s);
  free(payload);
}

/* ---- protocol errors: 1002 ------------------------------------------- */

Test(reader, reserved_opcodes) {
  for (int op = 0x3; op <= 0xF; op++) {
    bytes bad = {0};
    if (op >= 0x8 && op <= 0xA)
      continue;
    frame(&bad, 1, op, "x", 1);
    expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002, "reserved opcode");
    bytes_free(&bad);
  }
}

Test(reader, unmasked_client_frame) {
  bytes bad = {0};
  frame_bits(&bad, 1, 0, WSCHAT__OP_TEXT, "hi", 2, 0);
  expect_rejected(&server, &bad, WSCHAT_EUNMASKED, 1002,
                  "unmasked client frame");
  bytes_free(&bad);
}

Test(reader, masked_server_frame) {
  bytes bad = {0};
  frame_bits(&bad, 1, 0, WSCHAT__OP_TEXT, "hi", 2, 1);
  expect_rejected(&client, &bad, WSCHAT_EUNMASKED, 1002, "masked server frame");
  bytes_free(&bad);
}

Test(reader, control_frame_too_long) {
  static const char hdr[] = {(char)0x89, (char)0xFE, 0x00, 0x7E, 1, 2, 3, 4};
  bytes bad = {0};
  raw(&bad, hdr, sizeof(hdr));
  expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002, "control frame too long");
  bytes_free(&bad);
}

Test(reader, fragmented_control_frame) {
  static const int ops[] = {WSCHAT__OP_CLOSE, WSCHAT__OP_PING, WSCHAT__OP_PONG};
  for (int i = 0; i < 3; i++) {
    bytes bad = {0};
    frame(&bad, 0, ops[i], "x", 1);
    expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002,
                    "fragmented control frame");
    bytes_free(&bad);
  }
}

Test(reader, continuation_without_a_message) {
  bytes bad = {0};
  frame(&bad, 1, WSCHAT__OP_CONT, "x", 1);
  expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002,
                  "continuation without a message");
  bytes_free(&bad);
}

Test(reader, continuation_after_a_finished_fragmented_message) {
  bytes s = {0};
  recorder rec = {0};
  text(&s, "ok");
  frame(&s, 0, WSCHAT__OP_TEXT, "a", 1);
  frame(&s, 1, WSCHAT__OP_CONT, "b", 1);
  frame(&s, 0, WSCHAT__OP_CONT, "c", 1);
  expect_failure(&server, &s, WSCHAT_EPROTO, 1002,
                 "continuation without a message", &rec);
  cr_assert_eq(rec.n, 2);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
  expect_event(&rec, 1, EV_MESSAGE, WSCHAT__OP_TEXT, "ab", 2);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, data_frame_inside_a_fragmented_message) {
  static const int first[] = {WSCHAT__OP_TEXT, WSCHAT__OP_TEXT,
                              WSCHAT__OP_BINARY, WSCHAT__OP_BINARY};
  static const int second[] = {WSCHAT__OP_TEXT, WSCHAT__OP_BINARY,
                               WSCHAT__OP_TEXT, WSCHAT__OP_BINARY};
  for (int i = 0; i < 4; i++) {
    bytes bad = {0};
    frame(&bad, 0, first[i], "a", 1);
    frame(&bad, 1, WSCHAT__OP_PING, NULL, 0);
    frame(&bad, i & 1, second[i], "b", 1);
    {
      bytes s = {0};
      recorder rec = {0};
      text(&s, "ok");
      put(&s, bad.p, bad.len);
      expect_failure(&server, &s, WSCHAT_EPROTO, 1002,
                     "data frame inside a fragmented message", &rec);
      cr_assert_eq(rec.n, 2);
      expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
      expect_event(&rec, 1, EV_CONTROL, WSCHAT__OP_PING, "", 0);
      recorder_clear(&rec);
      bytes_free(&s);
    }
    bytes_free(&bad);
  }
}

Test(reader, rsv_bits_set) {
  static const uint8_t rsv[] = {0x4, 0x2, 0x1};
  for (int i = 0; i < 3; i++) {
    bytes bad = {0};
    frame_bits(&bad, 1, rsv[i], WSCHAT__OP_TEXT, "x", 1, 1);
    expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002, "RSV bits set");
    bytes_free(&bad);
  }
}

Test(reader, rsv_bits_an_extension_allows) {
  const conf c = {1 << 20, WSCHAT__FRAME_REQUIRE_MASK, 0x4};
  bytes s = {0}, bad = {0};
  recorder rec = {0};

  frame_bits(&s, 1, 0x4, WSCHAT__OP_BINARY, "x", 1, 1);
  feed_ok(&c, &s, whole, &rec);
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_BINARY, "x", 1);
  recorder_clear(&rec);

  frame_bits(&bad, 1, 0x2, WSCHAT__OP_TEXT, "x", 1, 1);
  expect_rejected(&c, &bad, WSCHAT_EPROTO, 1002, "RSV bits set");
  bytes_free(&bad);
  bytes_free(&s);
}

Test(reader, length_with_the_top_bit_set) {
  static const char hdr[] = {(char)0x82, (char)0xFF, (char)0x80, 0, 0, 0, 0,
                             0,          0,          0,          1, 2, 3, 4};
  bytes bad = {0};
  raw(&bad, hdr, sizeof(hdr));
  expect_rejected(&server, &bad, WSCHAT_EPROTO, 1002,
                  "64-bit length with the top bit set");
  bytes_free(&bad);
}

/* ---- size limit: 1009 ------------------------------------------------ */

Test(reader, huge_length_fails_from_the_header_alone) {
  /* 2^62 bytes announced, nothing of it sent. */
  static const uint8_t hdr[] = {0x82, 0xFF, 0x40, 0, 0, 0, 0,
                                0,    0,    0,    1, 2, 3, 4};
  bytes bad = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t copy[sizeof(hdr)];

  raw(&bad, (const char *)hdr, sizeof(hdr));
  expect_rejected(&(conf){1000, WSCHAT__FRAME_REQUIRE_MASK, 0}, &bad,
                  WSCHAT_ETOOBIG, 1009, "message too big");

  /* The very byte that completes the header is the one that fails. */
  reset_allocator();
  memcpy(copy, hdr, sizeof(hdr));
  wschat__reader_init(&r, 1000, &test_alloc);
  for (size_t i = 0; i + 1 < sizeof(copy); i++)
    cr_assert_eq(wschat__reader_feed(&r, copy + i, 1, &cbs, &rec), 1);
  cr_assert_eq(wschat__reader_feed(&r, copy + 13, 1, &cbs, &rec),
               WSCHAT_ETOOBIG);
  cr_assert_eq(r.close_code, 1009);
  cr_assert_eq(alloc_calls, 0);
  wschat__reader_free(&r);

  /* Even when the limit would allow it, nothing is allocated before the
   * payload arrives. */
  memcpy(copy, hdr, sizeof(hdr));
  wschat__reader_init(&r, UINT64_C(1) << 63, &test_alloc);
  cr_assert_eq(wschat__reader_feed(&r, copy, sizeof(copy), &cbs, &rec),
               (int64_t)sizeof(copy));
  cr_assert_eq(alloc_calls, 0);
  wschat__reader_free(&r);
  bytes_free(&bad);
}

Test(reader, single_frame_at_and_over_the_limit) {
  const conf c = {100, WSCHAT__FRAME_REQUIRE_MASK, 0};
  char payload[101];
  bytes s = {0}, bad = {0};
  recorder rec = {0};

  memset(payload, 'z', sizeof(payload));
  frame(&s, 1, WSCHAT__OP_TEXT, payload, 100);
  feed_ok(&c, &s, whole, &rec);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, payload, 100);
  recorder_clear(&rec);

  frame(&bad, 1, WSCHAT__OP_TEXT, payload, 101);
  expect_rejected(&c, &bad, WSCHAT_ETOOBIG, 1009, "message too big");
  bytes_free(&s);
  bytes_free(&bad);
}

Test(reader, control_frames_are_not_subject_to_the_limit) {
  const conf c = {1, WSCHAT__FRAME_REQUIRE_MASK, 0};
  bytes s = {0};
  recorder rec = {0};
  frame(&s, 1, WSCHAT__OP_PING, "Hello", 5);
  feed_ok(&c, &s, whole, &rec);
  expect_event(&rec, 0, EV_CONTROL, WSCHAT__OP_PING, "Hello", 5);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, fragments_whose_sum_passes_the_limit) {
  char payload[600];
  bytes first = {0}, second = {0}, s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *copy;
  size_t hdr2;

  memset(payload, 'a', sizeof(payload));
  frame(&first, 0, WSCHAT__OP_TEXT, payload, 600);
  hdr2 = frame(&second, 1, WSCHAT__OP_CONT, payload, 401) - 401;

  /* The first fragment is buffered whole; the second's header alone
   * fails, before any of its payload is taken. */
  wschat__reader_init(&r, 1000, &test_alloc);
  copy = malloc(first.len + second.len);
  memcpy(copy, first.p, first.len);
  memcpy(copy + first.len, second.p, second.len);
  cr_assert_eq(wschat__reader_feed(&r, copy, first.len, &cbs, &rec),
               (int64_t)first.len);
  cr_assert_eq(wschat__reader_buffered(&r), 600);
  cr_assert_eq(wschat__reader_feed(&r, copy + first.len, hdr2, &cbs, &rec),
               WSCHAT_ETOOBIG);
  cr_assert_eq(r.close_code, 1009);
  cr_assert_str_eq(r.error, "message too big");
  cr_assert_eq(wschat__reader_buffered(&r), 600);
  cr_assert_leq(peak_bytes, 1000);
  cr_assert_eq(rec.n, 0);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  free(copy);

  /* Any split: same error, after the same ("ok") message. */
  put(&s, first.p, first.len);
  put(&s, second.p, second.len);
  expect_rejected(&(conf){1000, WSCHAT__FRAME_REQUIRE_MASK, 0}, &s,
                  WSCHAT_ETOOBIG, 1009, "message too big");

  /* Exactly at the limit is fine. */
  bytes_free(&second);
  frame(&second, 1, WSCHAT__OP_CONT, payload, 400);
  bytes_free(&s);
  put(&s, first.p, first.len);
  put(&s, second.p, second.len);
  feed_ok(&(conf){1000, WSCHAT__FRAME_REQUIRE_MASK, 0}, &s, byte_at_a_time,
          &rec);
  cr_assert_eq(rec.n, 1);
  cr_assert_eq(rec.ev[0].len, 1000);
  recorder_clear(&rec);
  bytes_free(&first);
  bytes_free(&second);
  bytes_free(&s);
}

/* ---- UTF-8: 1007 ----------------------------------------------------- */

Test(reader, invalid_utf8_in_a_single_frame) {
  static const char *const bad_texts[] = {
      "ab\xFF",       "\xC0\x80",     "\xE0\x80\x80",     "\xF0\x80\x80\x80",
      "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80", "x\xF5"};
  for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
    bytes bad = {0};
    text(&bad, bad_texts[i]);
    expect_rejected(&server, &bad, WSCHAT_EBADUTF8, 1007, "invalid UTF-8");
    bytes_free(&bad);
  }
}

Test(reader, binary_is_not_checked) {
  bytes s = {0};
  recorder rec = {0};
  frame(&s, 1, WSCHAT__OP_BINARY, "\xFF\xC0\x80", 3);
  feed_ok(&server, &s, whole, &rec);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_BINARY, "\xFF\xC0\x80", 3);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, text_ending_inside_a_sequence) {
  static const char *const truncated[] = {"ab\xC3", "\xE2\x82", "\xF0\x9F\x98"};
  for (size_t i = 0; i < 3; i++) {
    bytes bad = {0};
    text(&bad, truncated[i]);
    expect_rejected(&server, &bad, WSCHAT_EBADUTF8, 1007,
                    "text ends inside a UTF-8 sequence");
    bytes_free(&bad);
  }
  {
    /* Across fragments: the open sequence is only an error at the end. */
    bytes bad = {0};
    frame(&bad, 0, WSCHAT__OP_TEXT, "a\xE2\x82", 3);
    frame(&bad, 1, WSCHAT__OP_CONT, NULL, 0);
    expect_rejected(&server, &bad, WSCHAT_EBADUTF8, 1007,
                    "text ends inside a UTF-8 sequence");
    bytes_free(&bad);
  }
}

Test(reader, four_byte_sequence_split_across_fragments) {
  bytes s = {0};
  recorder rec = {0};
  frame(&s, 0, WSCHAT__OP_TEXT, "\xF0", 1);
  frame(&s, 0, WSCHAT__OP_CONT, "\x9F", 1);
  frame(&s, 1, WSCHAT__OP_PING, "between", 7);
  frame(&s, 0, WSCHAT__OP_CONT, "\x98", 1);
  frame(&s, 1, WSCHAT__OP_CONT, "\x80", 1);
  feed_ok(&server, &s, byte_at_a_time, &rec);
  cr_assert_eq(rec.n, 2);
  expect_event(&rec, 0, EV_CONTROL, WSCHAT__OP_PING, "between", 7);
  expect_event(&rec, 1, EV_MESSAGE, WSCHAT__OP_TEXT, "\xF0\x9F\x98\x80", 4);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, invalid_sequence_split_across_fragments) {
  bytes s = {0};
  recorder rec = {0};
  text(&s, "ok");
  frame(&s, 0, WSCHAT__OP_TEXT, "a\xF0\x9F", 3);
  frame(&s, 1, WSCHAT__OP_PING, "p", 1);
  frame(&s, 1, WSCHAT__OP_CONT, "\x28zzz", 4);
  expect_failure(&server, &s, WSCHAT_EBADUTF8, 1007, "invalid UTF-8", &rec);
  cr_assert_eq(rec.n, 2);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
  expect_event(&rec, 1, EV_CONTROL, WSCHAT__OP_PING, "p", 1);
  recorder_clear(&rec);
  bytes_free(&s);
}

Test(reader, bad_utf8_fails_before_the_frame_is_complete) {
  char payload[100];
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *copy;

  memset(payload, 'a', sizeof(payload));
  payload[5] = (char)0xFF;
  text(&s, "ok");
  frame(&s, 1, WSCHAT__OP_TEXT, payload, 100);

  /* The header announcing 100 bytes and 10 of them, in one feed. */
  copy = malloc(s.len);
  memcpy(copy, s.p, s.len);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, copy, s.len - 100 + 10, &cbs, &rec),
               WSCHAT_EBADUTF8);
  cr_assert_eq(r.close_code, 1007);
  cr_assert_str_eq(r.error, "invalid UTF-8");
  cr_assert_eq(rec.n, 1);
  expect_event(&rec, 0, EV_MESSAGE, WSCHAT__OP_TEXT, "ok", 2);
  wschat__reader_free(&r);
  recorder_clear(&rec);

  /* Byte at a time: the feed carrying payload byte 5 fails. */
  memcpy(copy, s.p, s.len);
  setup(&r, &server);
  for (size_t i = 0; i < s.len - 100 + 5; i++)
    cr_assert_eq(wschat__reader_feed(&r, copy + i, 1, &cbs, &rec), 1,
                 "byte %zu", i);
  cr_assert_eq(wschat__reader_feed(&r, copy + s.len - 100 + 5, 1, &cbs, &rec),
               WSCHAT_EBADUTF8);
  cr_assert_eq(r.close_code, 1007);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  recorder_clear(&rec);
  free(copy);
  bytes_free(&s);
}

Test(reader, bad_utf8_in_a_later_fragment_fails_at_once) {
  char payload[50];
  bytes s = {0};
  recorder rec = {0};
  wschat__reader r;
  uint8_t *copy;
  size_t first;

  memset(payload, 'b', sizeof(payload));
  payload[0] = (char)0xC0;
  first = frame(&s, 0, WSCHAT__OP_TEXT, "fine so far", 11);
  frame(&s, 1, WSCHAT__OP_CONT, payload, 50);
  copy = malloc(s.len);
  memcpy(copy, s.p, s.len);
  setup(&r, &server);
  cr_assert_eq(wschat__reader_feed(&r, copy, first + 6 + 1, &cbs, &rec),
               WSCHAT_EBADUTF8);
  cr_assert_eq(r.close_code, 1007);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
  free(copy);
  bytes_free(&s);
}

/* A stream of good frames and then an error, split every way: the
 * callbacks before the error never change. */
Test(reader, errors_after_mixed_stream_under_random_splits) {
  enum { BIG = 5000 };
  uint8_t *big = malloc(BIG);
  bytes s = {0};
  recorder rec = {0};

  for (size_t i = 0; i < BIG; i++)
    big[i] = (uint8_t)i;
  build_mixed_stream(&s, big, BIG);
  frame(&s, 0, WSCHAT__OP_TEXT, "tail", 4);
  frame(&s, 1, WSCHAT__OP_CONT, "\xED\xA0\x80", 3);
  expect_failure(&server, &s, WSCHAT_EBADUTF8, 1007, "invalid UTF-8", &rec);
  expect_mixed_events(&rec, big, BIG);
  recorder_clear(&rec);
  bytes_free(&s);
  free(big);
}

/* ---- idleness (the session gives an idle reader back to its pool) ----- */

/* Feed a stream one byte at a time and record, after each byte, whether
 * the reader said it was idle. */
static void idle_after_each_byte(const bytes *s, char *out) {
  wschat__reader r;
  recorder rec = {0};
  size_t i;
  setup(&r, &server);
  cr_assert(wschat__reader_is_idle(&r), "a fresh reader is idle");
  for (i = 0; i < s->len; i++) {
    uint8_t b = s->p[i];
    cr_assert_eq(wschat__reader_feed(&r, &b, 1, &cbs, &rec), 1);
    out[i] = wschat__reader_is_idle(&r) ? 'I' : '-';
  }
  out[s->len] = '\0';
  recorder_clear(&rec);
  wschat__reader_free(&r);
  cr_assert_eq(live_blocks, 0);
}

Test(reader, idle_only_between_messages) {
  bytes s = {0};
  char got[64];
  /* "hi" in one frame: 6 header bytes (2 + mask key), 2 payload bytes. */
  text(&s, "hi");
  idle_after_each_byte(&s, got);
  cr_assert_str_eq(got, "-------I");
  bytes_free(&s);
  /* A fragmented "ab" with a ping between the fragments: idle only after
   * the last fragment (the ping arrives inside the message). */
  frame(&s, 0, WSCHAT__OP_TEXT, "a", 1);
  frame(&s, 1, WSCHAT__OP_PING, "", 0);
  frame(&s, 1, WSCHAT__OP_CONT, "b", 1);
  idle_after_each_byte(&s, got);
  cr_assert_str_eq(got, "-------------------I"); /* 7 + 6 + 7 bytes */
  bytes_free(&s);
  /* An empty ping on its own: idle once its header is complete. */
  frame(&s, 1, WSCHAT__OP_PING, "", 0);
  idle_after_each_byte(&s, got);
  cr_assert_str_eq(got, "-----I");
  bytes_free(&s);
}

Test(reader, not_idle_after_an_error) {
  wschat__reader r;
  recorder rec = {0};
  bytes s = {0};
  /* A continuation with no message started. */
  frame(&s, 1, WSCHAT__OP_CONT, "x", 1);
  setup(&r, &server);
  cr_assert_lt(wschat__reader_feed(&r, s.p, s.len, &cbs, &rec), 0);
  cr_assert_not(wschat__reader_is_idle(&r));
  recorder_clear(&rec);
  wschat__reader_free(&r);
  bytes_free(&s);
}
