/*
 * Unit tests for lib/proto/frame.c: frame headers, masking, close
 * payloads. The example frames are those of RFC 6455 section 5.7.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* RFC 6455 5.7. */
static const uint8_t rfc_hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t rfc_hel[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
static const uint8_t rfc_lo[] = {0x80, 0x02, 0x6c, 0x6f};
static const uint8_t rfc_ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t rfc_pong_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t rfc_256_header[] = {0x82, 0x7E, 0x01, 0x00};
static const uint8_t rfc_64k_header[] = {0x82, 0x7F, 0x00, 0x00, 0x00,
                                         0x00, 0x00, 0x01, 0x00, 0x00};

static void assert_header(const wschat__frame_header *h, int fin, int rsv,
                          int opcode, int masked, uint64_t len) {
  cr_assert_eq(h->fin, fin);
  cr_assert_eq(h->rsv, rsv);
  cr_assert_eq(h->opcode, opcode);
  cr_assert_eq(h->masked, masked);
  cr_assert_eq(h->len, len, "len %llu", (unsigned long long)h->len);
}

/* Every proper prefix of a header needs more bytes and leaves h alone. */
static void assert_prefixes_need_more(const uint8_t *p, size_t size,
                                      unsigned flags) {
  for (size_t n = 0; n < size; n++) {
    wschat__frame_header h;
    memset(&h, 0xAB, sizeof(h));
    cr_assert_eq(wschat__frame_decode_header(p, n, flags, 0, &h), 0,
                 "prefix %zu of %zu", n, size);
    cr_assert_eq(h.fin, 0xAB, "prefix %zu wrote the header", n);
  }
}

/* ---- decode ---------------------------------------------------------- */

Test(frame_decode, rfc_unmasked_hello) {
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(rfc_hello, sizeof(rfc_hello),
                                           WSCHAT__FRAME_REQUIRE_UNMASKED, 0,
                                           &h),
               2);
  assert_header(&h, 1, 0, WSCHAT__OP_TEXT, 0, 5);
  cr_assert_eq(memcmp(rfc_hello + 2, "Hello", 5), 0);
  cr_assert_eq(wschat__frame_decode_header(rfc_hello, 2, 0, 0, &h), 2);
  assert_prefixes_need_more(rfc_hello, 2, 0);
}

Test(frame_decode, rfc_masked_hello) {
  wschat__frame_header h;
  uint8_t payload[5];

  cr_assert_eq(wschat__frame_decode_header(rfc_hello_masked,
                                           sizeof(rfc_hello_masked),
                                           WSCHAT__FRAME_REQUIRE_MASK, 0, &h),
               6);
  assert_header(&h, 1, 0, WSCHAT__OP_TEXT, 1, 5);
  cr_assert_eq(memcmp(h.mask, rfc_key, 4), 0);
  memcpy(payload, rfc_hello_masked + 6, 5);
  cr_assert_eq(wschat__mask(payload, 5, h.mask, 0), 1);
  cr_assert_eq(memcmp(payload, "Hello", 5), 0);
  assert_prefixes_need_more(rfc_hello_masked, 6, WSCHAT__FRAME_REQUIRE_MASK);
}

Test(frame_decode, rfc_fragmented_hello) {
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(rfc_hel, sizeof(rfc_hel), 0, 0, &h),
               2);
  assert_header(&h, 0, 0, WSCHAT__OP_TEXT, 0, 3);
  cr_assert_eq(memcmp(rfc_hel + 2, "Hel", 3), 0);
  cr_assert_eq(wschat__frame_decode_header(rfc_lo, sizeof(rfc_lo), 0, 0, &h),
               2);
  assert_header(&h, 1, 0, WSCHAT__OP_CONT, 0, 2);
  cr_assert_eq(memcmp(rfc_lo + 2, "lo", 2), 0);
}

Test(frame_decode, rfc_ping_and_masked_pong) {
  wschat__frame_header h;
  uint8_t payload[5];

  cr_assert_eq(
      wschat__frame_decode_header(rfc_ping, sizeof(rfc_ping), 0, 0, &h), 2);
  assert_header(&h, 1, 0, WSCHAT__OP_PING, 0, 5);

  cr_assert_eq(wschat__frame_decode_header(rfc_pong_masked,
                                           sizeof(rfc_pong_masked),
                                           WSCHAT__FRAME_REQUIRE_MASK, 0, &h),
               6);
  assert_header(&h, 1, 0, WSCHAT__OP_PONG, 1, 5);
  cr_assert_eq(memcmp(h.mask, rfc_key, 4), 0);
  memcpy(payload, rfc_pong_masked + 6, 5);
  wschat__mask(payload, 5, h.mask, 0);
  cr_assert_eq(memcmp(payload, "Hello", 5), 0);
}

Test(frame_decode, rfc_256_and_64k_lengths) {
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(rfc_256_header, 4, 0, 0, &h), 4);
  assert_header(&h, 1, 0, WSCHAT__OP_BINARY, 0, 256);
  assert_prefixes_need_more(rfc_256_header, 4, 0);

  cr_assert_eq(wschat__frame_decode_header(rfc_64k_header, 10, 0, 0, &h), 10);
  assert_header(&h, 1, 0, WSCHAT__OP_BINARY, 0, 65536);
  assert_prefixes_need_more(rfc_64k_header, 10, 0);
}

Test(frame_decode, masked_64bit_length_is_14_bytes) {
  static const uint8_t p[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF,
                              0xFF, 0xFF, 0xFF, 1,    2,    3,    4};
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(p, sizeof(p), 0, 0, &h), 14);
  assert_header(&h, 1, 0, WSCHAT__OP_BINARY, 1, INT64_MAX);
  cr_assert_eq(h.mask[0], 1);
  cr_assert_eq(h.mask[3], 4);
  assert_prefixes_need_more(p, sizeof(p), 0);
}

Test(frame_decode, non_minimal_lengths_are_accepted) {
  static const uint8_t len16[] = {0x81, 0x7E, 0x00, 0x05};
  static const uint8_t len64[] = {0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x05};
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(len16, sizeof(len16), 0, 0, &h), 4);
  cr_assert_eq(h.len, 5);
  cr_assert_eq(wschat__frame_decode_header(len64, sizeof(len64), 0, 0, &h), 10);
  cr_assert_eq(h.len, 5);
}

Test(frame_decode, extra_bytes_after_the_header_are_not_consumed) {
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(rfc_hello_masked,
                                           sizeof(rfc_hello_masked), 0, 0, &h),
               6);
}

Test(frame_decode, reserved_opcodes) {
  for (unsigned op = 0; op <= 0xF; op++) {
    uint8_t p[6] = {(uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4};
    wschat__frame_header h;
    int reserved = (op >= 3 && op <= 7) || op >= 0xB;
    int rc = wschat__frame_decode_header(p, sizeof(p), 0, 0, &h);
    cr_assert_eq(rc, reserved ? WSCHAT_EPROTO : 6, "opcode %x: %d", op, rc);
    /* Known from the first byte alone. */
    rc = wschat__frame_decode_header(p, 1, 0, 0, &h);
    cr_assert_eq(rc, reserved ? WSCHAT_EPROTO : 0, "opcode %x: %d", op, rc);
  }
}

Test(frame_decode, rsv_bits) {
  static const uint8_t bits[] = {0x40, 0x20, 0x10};
  static const uint8_t rsv[] = {0x4, 0x2, 0x1};
  wschat__frame_header h;
  for (int i = 0; i < 3; i++) {
    uint8_t p[2] = {(uint8_t)(0x81 | bits[i]), 0x00};
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0, &h), WSCHAT_EPROTO);
    cr_assert_eq(wschat__frame_decode_header(p, 1, 0, 0, &h), WSCHAT_EPROTO);
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, rsv[i], &h), 2);
    cr_assert_eq(h.rsv, rsv[i]);
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0x7 & ~rsv[i], &h),
                 WSCHAT_EPROTO);
  }
  {
    uint8_t p[2] = {0xF1, 0x00};
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0x7, &h), 2);
    cr_assert_eq(h.rsv, 0x7);
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0x6, &h), WSCHAT_EPROTO);
  }
}

Test(frame_decode, fragmented_control_frames) {
  static const uint8_t ops[] = {0x8, 0x9, 0xA};
  wschat__frame_header h;
  for (int i = 0; i < 3; i++) {
    uint8_t p[2] = {ops[i], 0x00};
    cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0, &h), WSCHAT_EPROTO);
    cr_assert_eq(wschat__frame_decode_header(p, 1, 0, 0, &h), WSCHAT_EPROTO);
  }
}

Test(frame_decode, control_payload_over_125) {
  static const uint8_t ok[] = {0x89, 0xFD, 1, 2, 3, 4};
  static const uint8_t len126[] = {0x89, 0xFE, 0x00, 0x7E, 1, 2, 3, 4};
  static const uint8_t len126_short[] = {0x88, 0x7E, 0x00, 0x05};
  static const uint8_t len127[] = {0x8A, 0x7F, 0, 0, 0, 0, 0, 0, 0, 1};
  wschat__frame_header h;

  cr_assert_eq(wschat__frame_decode_header(ok, sizeof(ok), 0, 0, &h), 6);
  cr_assert_eq(h.len, 125);
  cr_assert_eq(wschat__frame_decode_header(len126, sizeof(len126), 0, 0, &h),
               WSCHAT_EPROTO);
  cr_assert_eq(wschat__frame_decode_header(len126, 2, 0, 0, &h), WSCHAT_EPROTO);
  /* Even a short length in the 16-bit form: control frames have only the
   * 7-bit one. */
  cr_assert_eq(
      wschat__frame_decode_header(len126_short, sizeof(len126_short), 0, 0, &h),
      WSCHAT_EPROTO);
  cr_assert_eq(wschat__frame_decode_header(len127, sizeof(len127), 0, 0, &h),
               WSCHAT_EPROTO);
}

Test(frame_decode, length_with_top_bit_set) {
  uint8_t p[14] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(p, sizeof(p), 0, 0, &h),
               WSCHAT_EPROTO);
  /* Known from the first length byte. */
  cr_assert_eq(wschat__frame_decode_header(p, 3, 0, 0, &h), WSCHAT_EPROTO);
  cr_assert_eq(wschat__frame_decode_header(p, 2, 0, 0, &h), 0);
  p[2] = 0xFF;
  cr_assert_eq(wschat__frame_decode_header(p, sizeof(p), 0, 0, &h),
               WSCHAT_EPROTO);
  p[2] = 0x7F;
  cr_assert_eq(wschat__frame_decode_header(p, sizeof(p), 0, 0, &h), 14);
}

Test(frame_decode, mask_requirements) {
  wschat__frame_header h;
  cr_assert_eq(wschat__frame_decode_header(rfc_hello, sizeof(rfc_hello),
                                           WSCHAT__FRAME_REQUIRE_MASK, 0, &h),
               WSCHAT_EUNMASKED);
  cr_assert_eq(wschat__frame_decode_header(rfc_hello, 2,
                                           WSCHAT__FRAME_REQUIRE_MASK, 0, &h),
               WSCHAT_EUNMASKED);
  cr_assert_eq(
      wschat__frame_decode_header(rfc_hello_masked, sizeof(rfc_hello_masked),
                                  WSCHAT__FRAME_REQUIRE_UNMASKED, 0, &h),
      WSCHAT_EUNMASKED);
  cr_assert_eq(
      wschat__frame_decode_header(rfc_hello, sizeof(rfc_hello), 0, 0, &h), 2);
  cr_assert_eq(wschat__frame_decode_header(rfc_hello_masked,
                                           sizeof(rfc_hello_masked), 0, 0, &h),
               6);
}

/* ---- encode ---------------------------------------------------------- */

static void assert_encodes(const uint8_t *want, size_t want_len, int fin,
                           int opcode, uint64_t len, const uint8_t *mask) {
  uint8_t out[WSCHAT__MAX_FRAME_HEADER + 2];
  memset(out, 0xEE, sizeof(out));
  cr_assert_eq(wschat__frame_encode_header(out, fin, 0, opcode, len, mask),
               want_len);
  cr_assert_eq(memcmp(out, want, want_len), 0);
  cr_assert_eq(out[want_len], 0xEE, "wrote past the header");
}

Test(frame_encode, rfc_examples) {
  assert_encodes(rfc_hello, 2, 1, WSCHAT__OP_TEXT, 5, NULL);
  assert_encodes(rfc_hello_masked, 6, 1, WSCHAT__OP_TEXT, 5, rfc_key);
  assert_encodes(rfc_hel, 2, 0, WSCHAT__OP_TEXT, 3, NULL);
  assert_encodes(rfc_lo, 2, 1, WSCHAT__OP_CONT, 2, NULL);
  assert_encodes(rfc_ping, 2, 1, WSCHAT__OP_PING, 5, NULL);
  assert_encodes(rfc_pong_masked, 6, 1, WSCHAT__OP_PONG, 5, rfc_key);
  assert_encodes(rfc_256_header, 4, 1, WSCHAT__OP_BINARY, 256, NULL);
  assert_encodes(rfc_64k_header, 10, 1, WSCHAT__OP_BINARY, 65536, NULL);
}

Test(frame_encode, rfc_masked_frames_whole) {
  uint8_t out[32];
  size_t n =
      wschat__frame_encode_header(out, 1, 0, WSCHAT__OP_TEXT, 5, rfc_key);
  memcpy(out + n, "Hello", 5);
  cr_assert_eq(wschat__mask(out + n, 5, rfc_key, 0), 1);
  cr_assert_eq(n + 5, sizeof(rfc_hello_masked));
  cr_assert_eq(memcmp(out, rfc_hello_masked, sizeof(rfc_hello_masked)), 0);

  n = wschat__frame_encode_header(out, 1, 0, WSCHAT__OP_PONG, 5, rfc_key);
  memcpy(out + n, "Hello", 5);
  wschat__mask(out + n, 5, rfc_key, 0);
  cr_assert_eq(memcmp(out, rfc_pong_masked, sizeof(rfc_pong_masked)), 0);
}

Test(frame_encode, shortest_length_encoding) {
  static const struct {
    uint64_t len;
    size_t size;
    uint8_t bytes[10];
  } cases[] = {
      {0, 2, {0x82, 0x00}},
      {125, 2, {0x82, 0x7D}},
      {126, 4, {0x82, 0x7E, 0x00, 0x7E}},
      {65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
      {65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
      {0x0102030405060708u,
       10,
       {0x82, 0x7F, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}},
      {INT64_MAX,
       10,
       {0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_encodes(cases[i].bytes, cases[i].size, 1, WSCHAT__OP_BINARY,
                   cases[i].len, NULL);
}

Test(frame_encode, rsv_fin_and_opcode_bits) {
  uint8_t out[WSCHAT__MAX_FRAME_HEADER];
  cr_assert_eq(
      wschat__frame_encode_header(out, 1, 0x4, WSCHAT__OP_TEXT, 0, NULL), 2);
  cr_assert_eq(out[0], 0xC1);
  cr_assert_eq(
      wschat__frame_encode_header(out, 0, 0x7, WSCHAT__OP_CONT, 0, NULL), 2);
  cr_assert_eq(out[0], 0x70);
  cr_assert_eq(
      wschat__frame_encode_header(out, 1, 0, WSCHAT__OP_CLOSE, 2, NULL), 2);
  cr_assert_eq(out[0], 0x88);
  cr_assert_eq(out[1], 0x02);
}

Test(frame_encode, round_trips_through_decode) {
  static const uint64_t lens[] = {
      0, 1, 125, 126, 127, 65535, 65536, 0xFFFFFFFF, 1ull << 32, INT64_MAX};
  static const int ops[] = {0x0, 0x1, 0x2};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    for (size_t o = 0; o < 3; o++) {
      for (int masked = 0; masked < 2; masked++) {
        for (uint8_t rsv = 0; rsv < 8; rsv++) {
          uint8_t out[WSCHAT__MAX_FRAME_HEADER];
          wschat__frame_header h;
          size_t n = wschat__frame_encode_header(
              out, rsv & 1, rsv, ops[o], lens[i], masked ? rfc_key : NULL);
          cr_assert_eq(wschat__frame_decode_header(out, n, 0, 0x7, &h), (int)n);
          assert_header(&h, rsv & 1, rsv, ops[o], masked, lens[i]);
          if (masked)
            cr_assert_eq(memcmp(h.mask, rfc_key, 4), 0);
        }
      }
    }
  }
}

/* ---- masking --------------------------------------------------------- */

static void naive_mask(uint8_t *p, size_t n, const uint8_t key[4],
                       size_t offset) {
  for (size_t i = 0; i < n; i++)
    p[i] ^= key[(offset + i) % 4];
}

Test(frame_mask, every_offset_length_and_alignment_matches_naive_loop) {
  static const uint8_t key[4] = {0x12, 0xA5, 0x5A, 0xF0};
  /* Lengths past 3 x 32 bytes: the 32-byte steps, the 8-byte steps and
   * the byte tail all meet every offset and alignment. */
  uint8_t want[112], got[112 + 8];

  for (size_t align = 0; align < 8; align++) {
    for (size_t offset = 0; offset < 4; offset++) {
      for (size_t len = 0; len <= 104; len++) {
        uint8_t *p = got + align;
        for (size_t i = 0; i < sizeof(want); i++)
          want[i] = (uint8_t)(i * 7 + 3);
        memcpy(p, want, sizeof(want));
        naive_mask(want, len, key, offset);
        cr_assert_eq(wschat__mask(p, len, key, offset), (offset + len) % 4);
        cr_assert_eq(memcmp(p, want, sizeof(want)), 0,
                     "align %zu offset %zu len %zu", align, offset, len);
      }
    }
  }
}

Test(frame_mask, offset_is_taken_modulo_4) {
  static const uint8_t key[4] = {1, 2, 4, 8};
  uint8_t a[13] = {0}, b[13] = {0};
  cr_assert_eq(wschat__mask(a, sizeof(a), key, 6), (6 + 13) % 4);
  naive_mask(b, sizeof(b), key, 2);
  cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
}

Test(frame_mask, pieces_equal_whole_and_mask_twice_restores) {
  static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
  enum { N = 1000 };
  uint8_t orig[N], whole[N], pieces[N];
  uint64_t x = 12345;

  for (size_t i = 0; i < N; i++)
    orig[i] = (uint8_t)(i ^ (i >> 3));
  memcpy(whole, orig, N);
  memcpy(pieces, orig, N);
  cr_assert_eq(wschat__mask(whole, N, key, 0), N % 4);
  naive_mask(orig, N, key, 0);
  cr_assert_eq(memcmp(whole, orig, N), 0);

  for (int round = 0; round < 50; round++) {
    size_t pos = 0, off = 0;
    memcpy(pieces, whole, N);
    while (pos < N) {
      size_t n;
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      n = (size_t)(x % 37);
      if (n > N - pos)
        n = N - pos;
      off = wschat__mask(pieces + pos, n, key, off);
      pos += n;
    }
    /* Masking is its own inverse: the pieces undo the whole. */
    naive_mask(orig, N, key, 0);
    cr_assert_eq(memcmp(pieces, orig, N), 0, "round %d", round);
    naive_mask(orig, N, key, 0);
  }
}

/* ---- close codes and payloads ---------------------------------------- */

Test(frame_close, every_code_0_to_5000) {
  int valid = 0;
  for (int code = 0; code <= 5000; code++) {
    int want = (code >= 1000 && code <= 1003) ||
               (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
    cr_assert_eq(!!wschat__close_code_is_valid(code), want, "code %d", code);
    valid += want;
  }
  cr_assert_eq(valid, 4 + 8 + 2000);
}

Test(frame_close, specific_codes) {
  static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                             1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
  static const int bad[] = {-1,   0,    999,  1004, 1005,  1006,  1015, 1016,
                            1100, 2000, 2999, 5000, 65535, 65536, -1000};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert(wschat__close_code_is_valid(good[i]), "%d", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(wschat__close_code_is_valid(bad[i]), "%d", bad[i]);
}

Test(frame_close, parse_empty_is_1005) {
  int code = 0;
  const char *reason = "x";
  size_t reason_len = 99;
  uint8_t p[1] = {0};
  cr_assert_eq(wschat__close_parse(p, 0, &code, &reason, &reason_len), 0);
  cr_assert_eq(code, 1005);
  cr_assert_eq(reason_len, 0);
}

Test(frame_close, parse_code_and_reason) {
  static const uint8_t only_code[] = {0x03, 0xE8};
  static const uint8_t with_reason[] = {0x03, 0xE9, 'b', 'y', 'e'};
  static const uint8_t utf8_reason[] = {0x0F, 0xA0, 0xC3, 0xA9,
                                        0xF0, 0x9F, 0x98, 0x80};
  int code;
  const char *reason;
  size_t reason_len;

  cr_assert_eq(wschat__close_parse(only_code, 2, &code, &reason, &reason_len),
               0);
  cr_assert_eq(code, 1000);
  cr_assert_eq(reason_len, 0);

  cr_assert_eq(wschat__close_parse(with_reason, sizeof(with_reason), &code,
                                   &reason, &reason_len),
               0);
  cr_assert_eq(code, 1001);
  cr_assert_eq(reason, (const char *)with_reason + 2);
  cr_assert_eq(reason_len, 3);
  cr_assert_eq(memcmp(reason, "bye", 3), 0);

  cr_assert_eq(wschat__close_parse(utf8_reason, sizeof(utf8_reason), &code,
                                   &reason, &reason_len),
               0);
  cr_assert_eq(code, 4000);
  cr_assert_eq(reason_len, 6);
}

Test(frame_close, parse_one_byte_payload) {
  static const uint8_t p[] = {0x03};
  int code = 7;
  const char *reason;
  size_t reason_len;
  cr_assert_eq(wschat__close_parse(p, 1, &code, &reason, &reason_len),
               WSCHAT_EBADCLOSE);
}

Test(frame_close, parse_invalid_codes) {
  static const int bad[] = {0,    999,  1004, 1005, 1006,
                            1015, 1016, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint8_t p[5] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i], 'o', 'k', '!'};
    int code;
    const char *reason;
    size_t reason_len;
    cr_assert_eq(wschat__close_parse(p, 2, &code, &reason, &reason_len),
                 WSCHAT_EBADCLOSE, "%d", bad[i]);
    cr_assert_eq(wschat__close_parse(p, 5, &code, &reason, &reason_len),
                 WSCHAT_EBADCLOSE, "%d", bad[i]);
  }
}

Test(frame_close, parse_invalid_reason_utf8) {
  static const uint8_t bad_byte[] = {0x03, 0xE8, 'a', 0xFF};
  static const uint8_t truncated[] = {0x03, 0xE8, 'a', 0xE2, 0x82};
  static const uint8_t surrogate[] = {0x03, 0xE8, 0xED, 0xA0, 0x80};
  /* The code is checked first: a bad code wins over a bad reason. */
  static const uint8_t both[] = {0x03, 0xED, 0xFF};
  int code;
  const char *reason;
  size_t reason_len;

  cr_assert_eq(wschat__close_parse(bad_byte, sizeof(bad_byte), &code, &reason,
                                   &reason_len),
               WSCHAT_EBADUTF8);
  cr_assert_eq(wschat__close_parse(truncated, sizeof(truncated), &code, &reason,
                                   &reason_len),
               WSCHAT_EBADUTF8);
  cr_assert_eq(wschat__close_parse(surrogate, sizeof(surrogate), &code, &reason,
                                   &reason_len),
               WSCHAT_EBADUTF8);
  cr_assert_eq(
      wschat__close_parse(both, sizeof(both), &code, &reason, &reason_len),
      WSCHAT_EBADCLOSE);
}

Test(frame_close, build_code_only_and_empty) {
  uint8_t out[125];
  memset(out, 0xEE, sizeof(out));
  cr_assert_eq(wschat__close_build(out, 0, "ignored", 7), 0);
  cr_assert_eq(out[0], 0xEE);
  cr_assert_eq(wschat__close_build(out, 1000, NULL, 0), 2);
  cr_assert_eq(out[0], 0x03);
  cr_assert_eq(out[1], 0xE8);
  cr_assert_eq(out[2], 0xEE);
}

Test(frame_close, build_with_reason) {
  uint8_t out[125];
  cr_assert_eq(wschat__close_build(out, 4999, "bye", 3), 5);
  cr_assert_eq(memcmp(out,
                      "\x13\x87"
                      "bye",
                      5),
               0);
}

/* A reason of `ascii` ASCII bytes followed by `tail`, built and parsed
 * back. */
static size_t build_reason(uint8_t *out, size_t ascii, const char *tail) {
  char reason[300];
  size_t tail_len = strlen(tail);
  memset(reason, 'a', ascii);
  memcpy(reason + ascii, tail, tail_len);
  return wschat__close_build(out, 1001, reason, ascii + tail_len);
}

Test(frame_close, build_truncates_at_a_code_point_boundary) {
  static const struct {
    size_t ascii;
    const char *tail;
    size_t want_reason;
  } cases[] = {
      {123, "", 123},                 /* exactly the limit */
      {200, "", 123},                 /* long ASCII: cut at 123 */
      {121, "\xC3\xA9", 123},         /* 2-byte ends at 123: kept */
      {122, "\xC3\xA9", 122},         /* 2-byte across 123: dropped */
      {121, "\xE2\x82\xAC", 121},     /* 3-byte across 123 */
      {120, "\xE2\x82\xAC", 123},     /* 3-byte ends at 123 */
      {120, "\xF0\x9F\x98\x80", 120}, /* 4-byte across 123 */
      {119, "\xF0\x9F\x98\x80", 123}, /* 4-byte ends at 123 */
      {122, "\xF0\x9F\x98\x80", 122}, /* 4-byte starting at 122 */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t out[125 + 8];
    int code;
    const char *reason;
    size_t reason_len;
    size_t n = build_reason(out, cases[i].ascii, cases[i].tail);

    cr_assert_eq(n, 2 + cases[i].want_reason, "case %zu: %zu", i, n);
    cr_assert_leq(n, 125);
    cr_assert_eq(wschat__close_parse(out, n, &code, &reason, &reason_len), 0,
                 "case %zu", i);
    cr_assert_eq(code, 1001);
    cr_assert_eq(reason_len, cases[i].want_reason);
  }
}

Test(frame_close, build_then_parse_round_trip) {
  uint8_t out[125];
  int code;
  const char *reason;
  size_t reason_len;
  size_t n = wschat__close_build(out, 3000, "caf\xC3\xA9", 5);
  cr_assert_eq(n, 7);
  cr_assert_eq(wschat__close_parse(out, n, &code, &reason, &reason_len), 0);
  cr_assert_eq(code, 3000);
  cr_assert_eq(reason_len, 5);
  cr_assert_eq(memcmp(reason, "caf\xC3\xA9", 5), 0);
}
