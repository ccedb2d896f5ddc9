/*
 * Differential tests of lib/proto/utf8.c against glibc's UTF-8 decoder,
 * reached through iconv(3) (UTF-8 to UTF-32LE), which rejects overlong
 * forms, surrogates and code points above U+10FFFF as RFC 3629 asks.
 *
 * iconv judges whole inputs; the validator judges every byte as it comes.
 * The two meet through prefixes: call q "extendable" when some completion
 * (at most three continuation bytes) makes it valid UTF-8 as iconv sees
 * it. Then the validator must accept exactly the extendable inputs, stop
 * at the first byte that makes the input non-extendable (bad_at), and
 * report an input complete exactly when iconv accepts it as it is. The
 * completions tried are enough: every range a continuation byte can be
 * limited to (80..BF, A0..BF, 80..9F, 90..BF, 80..8F) holds 80, 90 or A0,
 * and later bytes may always be 80.
 *
 * Each input is also fed in two pieces cut at every position and one byte
 * at a time, and must get the same verdict at the same absolute offset.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/utf8.h"

#define MAX_INPUT 64

static iconv_t cd = (iconv_t)-1;

static void open_iconv(void) {
  cd = iconv_open("UTF-32LE", "UTF-8");
  cr_assert_neq(cd, (iconv_t)-1, "iconv_open: %s", strerror(errno));
}

static void close_iconv(void) {
  if (cd != (iconv_t)-1)
    iconv_close(cd);
}

/* glibc's verdict: p[0..n) converts completely, as a whole. */
static int iconv_valid(const uint8_t *p, size_t n) {
  char out[4 * (MAX_INPUT + 4)];
  char *in = (char *)p, *o = out;
  size_t il = n, ol = sizeof(out);
  iconv(cd, NULL, NULL, NULL, NULL); /* reset the shift state */
  return iconv(cd, &in, &il, &o, &ol) != (size_t)-1 && il == 0;
}

/* Some completion of p[0..n) with up to three continuation bytes is
 * valid for glibc. */
static int iconv_extendable(const uint8_t *p, size_t n) {
  static const uint8_t firsts[] = {0x80, 0x90, 0xA0};
  uint8_t buf[MAX_INPUT + 4];
  cr_assert(n <= MAX_INPUT);
  if (iconv_valid(p, n))
    return 1;
  memcpy(buf, p, n);
  for (size_t extra = 1; extra <= 3; extra++)
    for (size_t f = 0; f < sizeof(firsts); f++) {
      buf[n] = firsts[f];
      for (size_t k = 1; k < extra; k++)
        buf[n + k] = 0x80;
      if (iconv_valid(buf, n + extra))
        return 1;
    }
  return 0;
}

static void hex(const uint8_t *p, size_t n, char *out) {
  out[0] = '\0';
  for (size_t i = 0; i < n && i < MAX_INPUT; i++)
    sprintf(out + 3 * i, "%02X ", p[i]);
}

/* Feed p[0..n) in pieces ending at cuts[0..ncuts) and then n; returns the
 * absolute offset of the failing byte, or SIZE_MAX; *complete gets the
 * final is_complete. */
static size_t feed_pieces(const uint8_t *p, size_t n, const size_t *cuts,
                          size_t ncuts, int *complete) {
  wschat__utf8 u;
  size_t start = 0;
  wschat__utf8_init(&u);
  for (size_t k = 0; k <= ncuts; k++) {
    size_t end = k < ncuts ? cuts[k] : n;
    size_t bad_at = SIZE_MAX;
    if (wschat__utf8_feed(&u, p + start, end - start, &bad_at) < 0) {
      cr_assert_lt(bad_at, end - start, "bad_at outside its piece");
      return start + bad_at;
    }
    start = end;
  }
  *complete = wschat__utf8_is_complete(&u);
  return SIZE_MAX;
}

/* The whole check for one input. */
static void check(const uint8_t *p, size_t n) {
  char h[3 * MAX_INPUT + 1];
  int complete = -1, complete2;
  size_t bad, bad2;

  cr_assert(n <= MAX_INPUT);
  bad = feed_pieces(p, n, NULL, 0, &complete);
  if (bad == SIZE_MAX) {
    if (!iconv_extendable(p, n)) {
      hex(p, n, h);
      cr_assert_fail("accepted, but glibc cannot complete it: %s", h);
    }
    if (!!complete != iconv_valid(p, n)) {
      hex(p, n, h);
      cr_assert_fail("is_complete %d, glibc valid %d: %s", complete,
                     iconv_valid(p, n), h);
    }
  } else {
    if (!iconv_extendable(p, bad) || iconv_extendable(p, bad + 1)) {
      hex(p, n, h);
      cr_assert_fail("refused at %zu, not where glibc's verdict turns: %s", bad,
                     h);
    }
  }
  cr_assert_eq(wschat__utf8_valid(p, n), bad == SIZE_MAX && complete);

  /* Two pieces, cut at every position. */
  for (size_t cut = 0; cut <= n; cut++) {
    complete2 = -1;
    bad2 = feed_pieces(p, n, &cut, 1, &complete2);
    if (bad2 != bad) {
      hex(p, n, h);
      cr_assert_fail("cut at %zu: refused at %zu, whole at %zu: %s", cut, bad2,
                     bad, h);
    }
    if (bad == SIZE_MAX)
      cr_assert_eq(complete2, complete, "cut at %zu", cut);
  }
  /* One byte at a time. */
  {
    size_t cuts[MAX_INPUT];
    for (size_t k = 0; k < n; k++)
      cuts[k] = k;
    complete2 = -1;
    bad2 = feed_pieces(p, n, cuts, n, &complete2);
    cr_assert_eq(bad2, bad, "byte at a time");
    if (bad == SIZE_MAX)
      cr_assert_eq(complete2, complete, "byte at a time");
  }
}

/* Encode cp in `len` bytes, overlong when len is more than it needs. */
static size_t encode(uint32_t cp, size_t len, uint8_t *out) {
  static const uint8_t lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  if (len == 1) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  for (size_t k = len - 1; k > 0; k--) {
    out[k] = (uint8_t)(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = (uint8_t)(lead[len] | cp);
  return len;
}

TestSuite(utf8_iconv, .init = open_iconv, .fini = close_iconv);

/* The oracle itself, on inputs whose verdict is known. */
Test(utf8_iconv, glibc_agrees_with_rfc3629) {
  cr_assert(iconv_valid((const uint8_t *)"\xF4\x8F\xBF\xBF", 4));
  cr_assert(!iconv_valid((const uint8_t *)"\xED\xA0\x80", 3));
  cr_assert(!iconv_valid((const uint8_t *)"\xC0\x80", 2));
  cr_assert(!iconv_valid((const uint8_t *)"\xF4\x90\x80\x80", 4));
  cr_assert(!iconv_valid((const uint8_t *)"\xE2\x82", 2));
  cr_assert(iconv_extendable((const uint8_t *)"\xE2\x82", 2));
  cr_assert(iconv_extendable((const uint8_t *)"\xED", 1));
  cr_assert(!iconv_extendable((const uint8_t *)"\xED\xA0", 2));
  cr_assert(!iconv_extendable((const uint8_t *)"\xF5", 1));
  cr_assert(!iconv_valid((const uint8_t *)"\xF5\x80\x80\x80", 4));
  cr_assert(!iconv_valid((const uint8_t *)"\xF8\x88\x80\x80\x80", 5));
}

/* Every code point from 0 to U+1FFFFF (surrogates and those above
 * U+10FFFF included) in every length from its shortest to 4 bytes, alone
 * and between ASCII: valid exactly when shortest, not a surrogate and at
 * most U+10FFFF, and glibc agrees at every byte. */
Test(utf8_iconv, every_code_point_every_length) {
  uint8_t buf[8];
  for (uint32_t cp = 0; cp <= 0x1FFFFF; cp++) {
    size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t len = shortest; len <= 4; len++) {
      int want =
          len == shortest && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
      size_t n = encode(cp, len, buf + 1);
      cr_assert_eq(wschat__utf8_valid(buf + 1, n), want, "U+%04X in %zu bytes",
                   cp, len);
      /* The full differential check is slower: run it on every code
       * point near a boundary and a sample of the rest. */
      if ((cp & 0x3F) == 0 || (cp & 0x3F) == 0x3F || cp < 0x100 ||
          (cp >= 0xD700 && cp <= 0xE0FF) ||
          (cp >= 0x10FF00 && cp <= 0x110100)) {
        buf[0] = 'a';
        buf[n + 1] = 'z';
        check(buf + 1, n);
        check(buf, n + 2);
      }
    }
  }
}

/* Every string of one to four bytes over bytes that sit on a boundary of
 * some range (ASCII, continuation classes, each kind of lead byte). */
Test(utf8_iconv, all_short_strings_of_boundary_bytes) {
  static const uint8_t alphabet[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                     0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                     0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1,
                                     0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFE, 0xFF};
  const size_t a = sizeof(alphabet);
  uint8_t buf[4];
  for (size_t len = 1; len <= 4; len++) {
    size_t total = 1;
    for (size_t k = 0; k < len; k++)
      total *= a;
    for (size_t idx = 0; idx < total; idx++) {
      size_t x = idx;
      for (size_t k = 0; k < len; k++) {
        buf[k] = alphabet[x % a];
        x /= a;
      }
      check(buf, len);
    }
  }
}

/* Every pair of bytes. */
Test(utf8_iconv, all_two_byte_strings) {
  uint8_t buf[2];
  for (unsigned b0 = 0; b0 < 256; b0++)
    for (unsigned b1 = 0; b1 < 256; b1++) {
      buf[0] = (uint8_t)b0;
      buf[1] = (uint8_t)b1;
      check(buf, 2);
    }
}

/* Random text: runs of ASCII (long enough for the 8-byte fast path),
 * valid sequences of each length, and random bytes, so that both valid
 * and invalid inputs are common. Fixed seed: a failure reproduces. */
Test(utf8_iconv, random_inputs) {
  uint64_t state = 0x9E3779B97F4A7C15u;
  uint8_t buf[MAX_INPUT];
  for (int round = 0; round < 20000; round++) {
    size_t n = 0, want;
    state = state * 6364136223846793005u + 1442695040888963407u;
    want = (size_t)(state >> 58); /* 0..63 */
    while (n < want) {
      uint32_t r;
      state = state * 6364136223846793005u + 1442695040888963407u;
      r = (uint32_t)(state >> 32);
      switch (r % 8) {
      case 0:
      case 1:
      case 2:
        for (size_t k = 0; k < 1 + (r >> 8) % 12 && n < want; k++)
          buf[n++] = (uint8_t)(0x20 + (r >> 3) % 0x5F);
        break;
      case 3:
      case 4: {
        /* A valid code point, maybe cut short by the end of the input. */
        static const uint32_t tops[] = {0x7FF, 0xFFFF, 0x10FFFF};
        uint8_t tmp[4];
        uint32_t cp = 0x80 + (r >> 4) % (tops[(r >> 3) % 3] - 0x7F);
        size_t len;
        if (cp >= 0xD800 && cp <= 0xDFFF)
          cp += 0x800;
        len = encode(cp, cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4, tmp);
        for (size_t k = 0; k < len && n < want; k++)
          buf[n++] = tmp[k];
        break;
      }
      default:
        buf[n++] = (uint8_t)(r >> 8);
      }
    }
    check(buf, n);
  }
}
