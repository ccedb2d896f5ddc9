/*
 * utf8.h - incremental UTF-8 validation (RFC 3629) that fails on the first
 * byte that cannot start or continue a valid sequence: overlong forms,
 * UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF are
 * rejected at the byte where they become impossible, not at the end of the
 * sequence. State carries across calls, so a message can be checked as its
 * fragments arrive.
 */
#ifndef WSCHAT_PROTO_UTF8_H
#define WSCHAT_PROTO_UTF8_H

#include "proto.h"

typedef struct wschat__utf8 {
  uint8_t need; /* continuation bytes still expected, 0..3 */
  uint8_t lo;   /* allowed range of the next continuation byte */
  uint8_t hi;
} wschat__utf8;

/* Reset to "between code points". */
void wschat__utf8_init(wschat__utf8 *u);

/*
 * Check len more bytes. Returns 0 when every byte so far can be part of
 * valid UTF-8 (a sequence may still be open at the end), or -1 at the
 * first byte that cannot; then *bad_at (if not NULL) is that byte's offset
 * in p and the state is left unchanged for inspection.
 */
int wschat__utf8_feed(wschat__utf8 *u, const uint8_t *p, size_t len,
                      size_t *bad_at);

/* Nonzero when no sequence is open (the text so far is complete). */
int wschat__utf8_is_complete(const wschat__utf8 *u);

/* Nonzero when p[0..len) is, as a whole, valid UTF-8. */
int wschat__utf8_valid(const uint8_t *p, size_t len);

#endif
