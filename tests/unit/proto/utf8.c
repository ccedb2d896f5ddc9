/*
 * Unit tests for lib/proto/utf8.c: the incremental, fail-fast UTF-8
 * validator.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "proto/utf8.h"

typedef struct {
  const char *name;
  const char *bytes;
  size_t len;
  int ok;          /* feed returns 0 */
  size_t bad_at;   /* when !ok: offset of the first impossible byte */
  int is_complete; /* when ok: no sequence left open */
} vector;

#define V_OK(name, s)                                                          \
  { name, s, sizeof(s) - 1, 1, 0, 1 }
#define V_OPEN(name, s)                                                        \
  { name, s, sizeof(s) - 1, 1, 0, 0 }
#define V_BAD(name, s, at)                                                     \
  { name, s, sizeof(s) - 1, 0, at, 0 }

static const vector vectors[] = {
    V_OK("empty", ""),
    V_OK("ascii", "Hello, world"),
    V_OK("nul and del", "a\x00\x7f"),
    V_OK("U+0080, first 2-byte", "\xC2\x80"),
    V_OK("U+00E9", "\xC3\xA9"),
    V_OK("U+07FF, last 2-byte", "\xDF\xBF"),
    V_OK("U+0800, first 3-byte", "\xE0\xA0\x80"),
    V_OK("U+20AC", "\xE2\x82\xAC"),
    V_OK("U+D7FF, below the surrogates", "\xED\x9F\xBF"),
    V_OK("U+E000, above the surrogates", "\xEE\x80\x80"),
    V_OK("U+FFFD", "\xEF\xBF\xBD"),
    V_OK("U+FFFF", "\xEF\xBF\xBF"),
    V_OK("U+10000, first 4-byte", "\xF0\x90\x80\x80"),
    V_OK("U+1F600", "\xF0\x9F\x98\x80"),
    V_OK("U+10FFFF, the last code point", "\xF4\x8F\xBF\xBF"),
    V_OK("mixed", "a\xC3\xA9z\xE2\x82\xAC\xF0\x9F\x98\x80!"),
    V_BAD("overlong C0 80", "\xC0\x80", 0),
    V_BAD("overlong C1 BF", "\xC1\xBF", 0),
    V_BAD("overlong E0 80 80", "\xE0\x80\x80", 1),
    V_BAD("overlong E0 9F BF", "\xE0\x9F\xBF", 1),
    V_BAD("overlong F0 80 80 80", "\xF0\x80\x80\x80", 1),
    V_BAD("overlong F0 8F BF BF", "\xF0\x8F\xBF\xBF", 1),
    V_BAD("surrogate ED A0 80", "\xED\xA0\x80", 1),
    V_BAD("surrogate ED BF BF", "\xED\xBF\xBF", 1),
    V_BAD("above U+10FFFF F4 90 80 80", "\xF4\x90\x80\x80", 1),
    V_BAD("F5 lead", "\xF5\x80\x80\x80", 0),
    V_BAD("FF lead", "\xFF", 0),
    V_BAD("stray continuation", "\x80", 0),
    V_BAD("continuation after ascii", "ab\xBF", 2),
    V_BAD("ascii where continuation due", "\xC3\x28", 1),
    V_BAD("3-byte cut by ascii", "\xE2\x82\x28", 2),
    V_BAD("4-byte cut by ascii", "\xF0\x9F\x98\x28", 3),
    V_BAD("lead where continuation due", "\xE2\xC3\xA9", 1),
    V_BAD("bad after valid text", "h\xC3\xA9llo \xED\xA0\x80", 8),
    V_OPEN("truncated 2-byte", "ab\xC3"),
    V_OPEN("truncated 3-byte", "\xE2\x82"),
    V_OPEN("truncated 4-byte", "\xF0\x9F\x98"),
    V_OPEN("truncated 4-byte after one", "x\xF4"),
};

#define NVECTORS (sizeof(vectors) / sizeof(vectors[0]))

Test(utf8, vectors_whole) {
  for (size_t i = 0; i < NVECTORS; i++) {
    const vector *v = &vectors[i];
    wschat__utf8 u;
    size_t bad_at = 999;
    int rc;

    wschat__utf8_init(&u);
    rc = wschat__utf8_feed(&u, (const uint8_t *)v->bytes, v->len, &bad_at);
    cr_assert_eq(rc, v->ok ? 0 : -1, "%s: rc %d", v->name, rc);
    if (v->ok) {
      cr_assert_eq(bad_at, 999, "%s: bad_at written on success", v->name);
      cr_assert_eq(!!wschat__utf8_is_complete(&u), v->is_complete, "%s",
                   v->name);
    } else {
      cr_assert_eq(bad_at, v->bad_at, "%s: bad_at %zu, want %zu", v->name,
                   bad_at, v->bad_at);
    }
    cr_assert_eq(!!wschat__utf8_valid((const uint8_t *)v->bytes, v->len),
                 v->ok && v->is_complete, "%s: valid()", v->name);
  }
}

/* Fed one byte at a time, the failing call must be the one carrying the
 * byte named by bad_at, with offset 0 in that call. */
Test(utf8, vectors_byte_at_a_time) {
  for (size_t i = 0; i < NVECTORS; i++) {
    const vector *v = &vectors[i];
    wschat__utf8 u;
    size_t failed_at = SIZE_MAX;

    wschat__utf8_init(&u);
    for (size_t k = 0; k < v->len; k++) {
      size_t bad_at = 999;
      if (wschat__utf8_feed(&u, (const uint8_t *)v->bytes + k, 1, &bad_at) <
          0) {
        cr_assert_eq(bad_at, 0, "%s", v->name);
        failed_at = k;
        break;
      }
    }
    if (v->ok) {
      cr_assert_eq(failed_at, SIZE_MAX, "%s failed at %zu", v->name, failed_at);
      cr_assert_eq(!!wschat__utf8_is_complete(&u), v->is_complete, "%s",
                   v->name);
    } else {
      cr_assert_eq(failed_at, v->bad_at, "%s failed at %zu", v->name,
                   failed_at);
    }
  }
}

/* Every two-piece split: bad_at is relative to the piece that holds it. */
Test(utf8, vectors_every_split) {
  for (size_t i = 0; i < NVECTORS; i++) {
    const vector *v = &vectors[i];
    for (size_t cut = 0; cut <= v->len; cut++) {
      const uint8_t *p = (const uint8_t *)v->bytes;
      wschat__utf8 u;
      size_t bad_at = 999;
      int rc;

      wschat__utf8_init(&u);
      rc = wschat__utf8_feed(&u, p, cut, &bad_at);
      if (rc < 0) {
        cr_assert(!v->ok && v->bad_at < cut, "%s cut %zu", v->name, cut);
        cr_assert_eq(bad_at, v->bad_at, "%s cut %zu", v->name, cut);
        continue;
      }
      rc = wschat__utf8_feed(&u, p + cut, v->len - cut, &bad_at);
      if (v->ok) {
        cr_assert_eq(rc, 0, "%s cut %zu", v->name, cut);
        cr_assert_eq(!!wschat__utf8_is_complete(&u), v->is_complete,
                     "%s cut %zu", v->name, cut);
      } else {
        cr_assert_eq(rc, -1, "%s cut %zu", v->name, cut);
        cr_assert_eq(bad_at, v->bad_at - cut, "%s cut %zu", v->name, cut);
      }
    }
  }
}

Test(utf8, every_lead_byte_F5_to_FF_fails_at_once) {
  for (unsigned b = 0xF5; b <= 0xFF; b++) {
    uint8_t s[4] = {(uint8_t)b, 0x80, 0x80, 0x80};
    wschat__utf8 u;
    size_t bad_at = 999;
    wschat__utf8_init(&u);
    cr_assert_eq(wschat__utf8_feed(&u, s, sizeof(s), &bad_at), -1, "%02x", b);
    cr_assert_eq(bad_at, 0, "%02x", b);
  }
}

Test(utf8, failure_leaves_state_unchanged) {
  wschat__utf8 u;
  size_t bad_at = 999;

  wschat__utf8_init(&u);
  cr_assert_eq(wschat__utf8_feed(&u, (const uint8_t *)"\xF0", 1, NULL), 0);
  cr_assert_eq(u.need, 3);
  cr_assert_eq(u.lo, 0x90);
  cr_assert_eq(u.hi, 0xBF);
  /* 0x9F is fine, 0x28 is not: the whole call is rejected. */
  cr_assert_eq(wschat__utf8_feed(&u, (const uint8_t *)"\x9F\x28", 2, &bad_at),
               -1);
  cr_assert_eq(bad_at, 1);
  cr_assert_eq(u.need, 3);
  cr_assert_eq(u.lo, 0x90);
  cr_assert_eq(u.hi, 0xBF);
  /* And it can still go on from there. */
  cr_assert_eq(
      wschat__utf8_feed(&u, (const uint8_t *)"\x9F\x98\x80", 3, &bad_at), 0);
  cr_assert(wschat__utf8_is_complete(&u));
}

/* The word-at-a-time ASCII path must stop on the exact byte, wherever it
 * sits relative to the 8-byte steps and the buffer's alignment. */
Test(utf8, ascii_fast_path_finds_exact_offset) {
  static const uint8_t bad_bytes[] = {0x80, 0xBF, 0xC0, 0xFF};
  uint8_t storage[96 + 8];

  for (size_t align = 0; align < 8; align++) {
    uint8_t *buf = storage + align;
    for (size_t len = 1; len <= 96; len++) {
      memset(buf, 'a', len);
      cr_assert(wschat__utf8_valid(buf, len));
      for (size_t at = 0; at < len; at++) {
        for (size_t b = 0; b < sizeof(bad_bytes); b++) {
          wschat__utf8 u;
          size_t bad_at = 999;
          memset(buf, 'a', len);
          buf[at] = bad_bytes[b];
          wschat__utf8_init(&u);
          cr_assert_eq(wschat__utf8_feed(&u, buf, len, &bad_at), -1);
          cr_assert_eq(bad_at, at, "align %zu len %zu at %zu: %zu", align, len,
                       at, bad_at);
        }
      }
    }
  }
}

/* Multi-byte sequences right after long ASCII runs, with the text
 * continuing as ASCII: the fast path must resume after each one. */
Test(utf8, ascii_runs_around_sequences) {
  uint8_t buf[200];
  size_t n = 0;
  wschat__utf8 u;
  size_t bad_at = 999;

  for (int round = 0; round < 9; round++) {
    for (int k = 0; k < round * 3; k++)
      buf[n++] = (uint8_t)('A' + k % 26);
    memcpy(buf + n, "\xF0\x9F\x98\x80", 4);
    n += 4;
  }
  cr_assert(wschat__utf8_valid(buf, n));
  buf[n++] = 0xED;
  buf[n++] = 0xA0;
  wschat__utf8_init(&u);
  cr_assert_eq(wschat__utf8_feed(&u, buf, n, &bad_at), -1);
  cr_assert_eq(bad_at, n - 1);
}

/* A decoder written the slow, obvious way: decode the code point, then
 * reject overlong forms, surrogates and values above U+10FFFF. */
static int reference_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint32_t c = p[i], min;
    size_t len;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, c &= 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      c = c << 6 | (p[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

Test(utf8, agrees_with_reference_on_all_short_strings) {
  uint8_t s[3];
  size_t valid2 = 0;

  for (unsigned a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    cr_assert_eq(!!wschat__utf8_valid(s, 1), reference_valid(s, 1), "%02x", a);
    for (unsigned b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      int want = reference_valid(s, 2);
      valid2 += (size_t)want;
      cr_assert_eq(!!wschat__utf8_valid(s, 2), want, "%02x %02x", a, b);
      /* Three-byte strings starting with ASCII are covered above. */
      if (a < 0x80)
        continue;
      for (unsigned c = 0; c < 256; c++) {
        s[2] = (uint8_t)c;
        if (!!wschat__utf8_valid(s, 3) != reference_valid(s, 3))
          cr_assert_fail("%02x %02x %02x", a, b, c);
      }
    }
  }
  /* 128*128 ASCII pairs + 1920 two-byte code points. */
  cr_assert_eq(valid2, 128 * 128 + 1920);
}

Test(utf8, agrees_with_reference_on_random_four_byte_strings) {
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (int i = 0; i < 2000000; i++) {
    uint8_t s[4];
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    /* Bias toward 4-byte leads and continuation bytes, where the edge
     * cases live. */
    s[0] = (uint8_t)(0xF0 | (x & 0x0F));
    s[1] = (uint8_t)(0x80 | ((x >> 8) & 0x7F)) ^ (uint8_t)((x >> 40) & 0x40);
    s[2] = (uint8_t)(0x80 | ((x >> 16) & 0x3F));
    s[3] = (uint8_t)(0x80 | ((x >> 24) & 0x3F));
    if (!!wschat__utf8_valid(s, 4) != reference_valid(s, 4))
      cr_assert_fail("%02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
  }
}

Test(utf8, bad_at_may_be_null) {
  wschat__utf8 u;
  wschat__utf8_init(&u);
  cr_assert_eq(wschat__utf8_feed(&u, (const uint8_t *)"\xC0\x80", 2, NULL), -1);
  cr_assert(wschat__utf8_is_complete(&u));
}

/* The ASCII fast path steps 32 and 8 bytes at a time: a bad byte, or a
 * multi-byte sequence, at any position of a long ASCII run must still be
 * found at exactly that position, for every alignment. */
Test(utf8, long_ascii_runs_stop_at_the_exact_byte) {
  uint8_t buf[140 + 8];
  for (size_t align = 0; align < 8; align++) {
    uint8_t *p = buf + align;
    for (size_t at = 0; at < 140; at++) {
      wschat__utf8 u;
      size_t bad = 999;
      memset(p, 'x', 140);
      p[at] = 0xFF;
      wschat__utf8_init(&u);
      cr_assert_eq(wschat__utf8_feed(&u, p, 140, &bad), -1);
      cr_assert_eq(bad, at, "align %zu at %zu: bad_at %zu", align, at, bad);
      if (at + 2 <= 140) {
        p[at] = 0xC3; /* é */
        p[at + 1] = 0xA9;
        cr_assert(wschat__utf8_valid(p, 140), "align %zu at %zu", align, at);
      }
    }
  }
}
