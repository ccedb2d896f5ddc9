/*
 * frame.c - RFC 6455 frame headers, masking and close payloads.
 */
#include "proto/frame.h"

#include <string.h>

#include "proto/utf8.h"

#define CLOSE_REASON_MAX (WSCHAT__MAX_CONTROL_PAYLOAD - 2)

static int opcode_is_reserved(unsigned op) {
  return (op >= 0x3 && op <= 0x7) || op >= 0xB;
}

/*
 * Each check runs as soon as the byte it needs is present, so a reader fed
 * one byte at a time rejects a bad frame at its first bad byte rather than
 * after buffering up to 14 bytes of header; on a complete header the order
 * of the checks is the same, so every split gives the same error.
 */
int wschat__frame_decode_header(const uint8_t *p, size_t n, unsigned flags,
                                uint8_t rsv_allowed, wschat__frame_header *h) {
  unsigned fin, rsv, opcode, masked, len7;
  size_t size;
  uint64_t len;

  if (n < 1)
    return 0;
  fin = p[0] >> 7;
  rsv = (p[0] >> 4) & 0x7;
  opcode = p[0] & 0xF;
  if (rsv & ~(unsigned)rsv_allowed)
    return WSCHAT_EPROTO;
  if (opcode_is_reserved(opcode))
    return WSCHAT_EPROTO;
  if (WSCHAT__OP_IS_CONTROL(opcode) && !fin)
    return WSCHAT_EPROTO;

  if (n < 2)
    return 0;
  masked = p[1] >> 7;
  len7 = p[1] & 0x7F;
  if ((flags & WSCHAT__FRAME_REQUIRE_MASK) && !masked)
    return WSCHAT_EUNMASKED;
  if ((flags & WSCHAT__FRAME_REQUIRE_UNMASKED) && masked)
    return WSCHAT_EUNMASKED;
  if (WSCHAT__OP_IS_CONTROL(opcode) && len7 > WSCHAT__MAX_CONTROL_PAYLOAD)
    return WSCHAT_EPROTO;

  size = 2;
  if (len7 == 126) {
    size += 2;
  } else if (len7 == 127) {
    size += 8;
    if (n >= 3 && (p[2] & 0x80))
      return WSCHAT_EPROTO;
  }
  if (masked)
    size += 4;
  if (n < size)
    return 0;

  if (len7 == 126) {
    len = (uint64_t)p[2] << 8 | p[3];
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | p[2 + i];
  } else {
    len = len7;
  }

  h->fin = (uint8_t)fin;
  h->rsv = (uint8_t)rsv;
  h->opcode = (uint8_t)opcode;
  h->masked = (uint8_t)masked;
  if (masked)
    memcpy(h->mask, p + size - 4, 4);
  else
    memset(h->mask, 0, 4);
  h->len = len;
  return (int)size;
}

size_t wschat__frame_encode_header(uint8_t *out, int fin, uint8_t rsv,
                                   int opcode, uint64_t len,
                                   const uint8_t *mask) {
  size_t n = 0;
  uint8_t mask_bit = mask != NULL ? 0x80 : 0;

  out[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0xF));
  if (len < 126) {
    out[n++] = (uint8_t)(mask_bit | len);
  } else if (len <= 0xFFFF) {
    out[n++] = mask_bit | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = mask_bit | 127;
    for (int shift = 56; shift >= 0; shift -= 8)
      out[n++] = (uint8_t)(len >> shift);
  }
  if (mask != NULL) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

size_t wschat__mask(uint8_t *p, size_t n, const uint8_t mask[4],
                    size_t offset) {
  size_t i = 0;

  offset &= 3;
  if (n >= 8) {
    /* Eight key bytes starting at `offset`, laid out as they meet the
     * payload; eight is a multiple of four, so the same word lines up
     * with every following 8-byte step. Built from bytes, so it is right
     * on either endianness. */
    uint8_t key8[8];
    uint64_t key;
    for (int k = 0; k < 8; k++)
      key8[k] = mask[(offset + (size_t)k) & 3];
    memcpy(&key, key8, sizeof(key));
    for (; n - i >= 32; i += 32) {
      uint64_t w[4];
      memcpy(w, p + i, sizeof(w));
      w[0] ^= key;
      w[1] ^= key;
      w[2] ^= key;
      w[3] ^= key;
      memcpy(p + i, w, sizeof(w));
    }
    for (; n - i >= 8; i += 8) {
      uint64_t word;
      memcpy(&word, p + i, sizeof(word));
      word ^= key;
      memcpy(p + i, &word, sizeof(word));
    }
  }
  for (; i < n; i++)
    p[i] ^= mask[(offset + i) & 3];
  return (offset + n) & 3;
}

int wschat__close_code_is_valid(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

int wschat__close_parse(const uint8_t *p, size_t n, int *code,
                        const char **reason, size_t *reason_len) {
  int c;

  if (n == 0) {
    *code = WSCHAT_CLOSE_NO_STATUS;
    *reason = (const char *)p;
    *reason_len = 0;
    return 0;
  }
  if (n == 1)
    return WSCHAT_EBADCLOSE;
  c = p[0] << 8 | p[1];
  if (!wschat__close_code_is_valid(c))
    return WSCHAT_EBADCLOSE;
  if (!wschat__utf8_valid(p + 2, n - 2))
    return WSCHAT_EBADUTF8;
  *code = c;
  *reason = (const char *)p + 2;
  *reason_len = n - 2;
  return 0;
}

size_t wschat__close_build(uint8_t *out, int code, const char *reason,
                           size_t reason_len) {
  if (code == 0)
    return 0;
  out[0] = (uint8_t)(code >> 8);
  out[1] = (uint8_t)code;
  if (reason == NULL)
    reason_len = 0;
  if (reason_len > CLOSE_REASON_MAX) {
    /* Back up over continuation bytes so the cut falls before a lead
     * byte; a reason that was valid UTF-8 stays valid. */
    reason_len = CLOSE_REASON_MAX;
    while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
      reason_len--;
  }
  if (reason_len > 0)
    memcpy(out + 2, reason, reason_len);
  return 2 + reason_len;
}
