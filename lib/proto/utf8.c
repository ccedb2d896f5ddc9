/*
 * utf8.c - incremental UTF-8 validation that fails at the first impossible
 * byte.
 *
 * Instead of decoding a code point and checking it afterwards, the lead
 * byte narrows the range of the byte that follows it (RFC 3629 section 4's
 * table): E0 needs A0..BF (no overlong 3-byte forms), ED needs 80..9F (no
 * surrogates), F0 needs 90..BF (no overlong 4-byte forms), F4 needs 80..8F
 * (nothing above U+10FFFF). Every other continuation is 80..BF. That makes
 * each byte's verdict final, which is what lets a WebSocket reader close
 * with 1007 at the byte where a text message went wrong.
 */
#include "proto/utf8.h"

#include <string.h>

#define ASCII_ONLY_MASK UINT64_C(0x8080808080808080)

void wschat__utf8_init(wschat__utf8 *u) {
  u->need = 0;
  u->lo = 0x80;
  u->hi = 0xBF;
}

/* Skip the all-ASCII prefix of p[i..len), 32 bytes at a time (four words
 * tested with one branch), then eight; chat text is mostly ASCII, and this
 * is the loop that sees it. */
static size_t skip_ascii(const uint8_t *p, size_t i, size_t len) {
  while (len - i >= 32) {
    uint64_t w[4];
    memcpy(w, p + i, sizeof(w));
    if ((w[0] | w[1] | w[2] | w[3]) & ASCII_ONLY_MASK)
      break;
    i += 32;
  }
  while (len - i >= 8) {
    uint64_t word;
    memcpy(&word, p + i, sizeof(word));
    if (word & ASCII_ONLY_MASK)
      break;
    i += 8;
  }
  while (i < len && p[i] < 0x80)
    i++;
  return i;
}

int wschat__utf8_feed(wschat__utf8 *u, const uint8_t *p, size_t len,
                      size_t *bad_at) {
  /* Work on copies so that a failure leaves *u exactly as the caller
   * passed it. */
  unsigned need = u->need, lo = u->lo, hi = u->hi;
  size_t i = 0;

  while (i < len) {
    unsigned b;
    if (need == 0) {
      i = skip_ascii(p, i, len);
      if (i == len)
        break;
      b = p[i];
      lo = 0x80;
      hi = 0xBF;
      if (b < 0xC2) {
        goto bad; /* stray continuation, or C0/C1 (always overlong) */
      } else if (b < 0xE0) {
        need = 1;
      } else if (b < 0xF0) {
        need = 2;
        if (b == 0xE0)
          lo = 0xA0;
        else if (b == 0xED)
          hi = 0x9F;
      } else if (b < 0xF5) {
        need = 3;
        if (b == 0xF0)
          lo = 0x90;
        else if (b == 0xF4)
          hi = 0x8F;
      } else {
        goto bad;
      }
    } else {
      b = p[i];
      if (b < lo || b > hi)
        goto bad;
      need--;
      lo = 0x80;
      hi = 0xBF;
    }
    i++;
  }
  u->need = (uint8_t)need;
  u->lo = (uint8_t)lo;
  u->hi = (uint8_t)hi;
  return 0;

bad:
  if (bad_at != NULL)
    *bad_at = i;
  return -1;
}

int wschat__utf8_is_complete(const wschat__utf8 *u) {
  return u->need == 0;
}

int wschat__utf8_valid(const uint8_t *p, size_t len) {
  wschat__utf8 u;
  wschat__utf8_init(&u);
  return wschat__utf8_feed(&u, p, len, NULL) == 0 &&
         wschat__utf8_is_complete(&u);
}
