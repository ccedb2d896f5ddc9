/*
 * frame.h - RFC 6455 section 5 frame headers, masking, and close frame
 * payloads (section 5.5.1, 7.4). Pure functions over caller buffers.
 */
#ifndef WSCHAT_PROTO_FRAME_H
#define WSCHAT_PROTO_FRAME_H

#include "proto.h"

typedef struct wschat__frame_header {
  uint8_t fin;     /* 0 or 1 */
  uint8_t rsv;     /* RSV1..3 as bits 0x4, 0x2, 0x1 */
  uint8_t opcode;  /* 0x0..0xF */
  uint8_t masked;  /* 0 or 1 */
  uint8_t mask[4]; /* masking key when masked */
  uint64_t len;    /* payload length */
} wschat__frame_header;

/* Flags for wschat__frame_decode_header(). */
enum {
  /* Frames must be masked (a server reading client frames). */
  WSCHAT__FRAME_REQUIRE_MASK = 1 << 0,
  /* Frames must not be masked (a client reading server frames). */
  WSCHAT__FRAME_REQUIRE_UNMASKED = 1 << 1
};

/*
 * Decode the frame header at p[0..n). Works on any split of the input:
 * returns the header's size (2..14) once it is complete, or 0 when more
 * bytes are needed (nothing is consumed then; call again with more).
 *
 * Errors (the frame is a protocol error, close code 1002):
 *   WSCHAT_EPROTO    RSV bits not in rsv_allowed, a reserved opcode
 *                    (0x3-0x7, 0xB-0xF), a fragmented control frame, a
 *                    control payload over 125 bytes, or a 64-bit length
 *                    with the most significant bit set;
 *   WSCHAT_EUNMASKED the mask bit does not match what flags require.
 * A length encoded with more bytes than needed is accepted.
 */
int wschat__frame_decode_header(const uint8_t *p, size_t n, unsigned flags,
                                uint8_t rsv_allowed, wschat__frame_header *h);

/*
 * Encode a frame header into out (at least WSCHAT__MAX_FRAME_HEADER
 * bytes) using the shortest length encoding. mask NULL gives an unmasked
 * (server) frame; otherwise the mask bit and key are written. rsv is
 * written as given (bits 0x4, 0x2, 0x1). Returns the header's size.
 */
size_t wschat__frame_encode_header(uint8_t *out, int fin, uint8_t rsv,
                                   int opcode, uint64_t len,
                                   const uint8_t *mask);

/*
 * XOR p[0..n) with mask, starting at byte `offset` of the key (so a
 * payload can be unmasked in pieces), a machine word at a time. Returns
 * the key offset for the next piece: (offset + n) % 4.
 */
size_t wschat__mask(uint8_t *p, size_t n, const uint8_t mask[4],
                    size_t offset);

/* Nonzero if a close frame received from a peer may carry this code:
 * 1000-1003, 1007-1014, 3000-4999. */
int wschat__close_code_is_valid(int code);

/*
 * Parse a received close frame payload (already unmasked). On success
 * returns 0 and sets *code (1005 when the payload is empty) and the reason
 * (pointer into p, not NUL-terminated; length 0 when none).
 * Errors: WSCHAT_EBADCLOSE for a 1-byte payload or an invalid code (answer
 * with 1002), WSCHAT_EBADUTF8 for a reason that is not UTF-8 (answer with
 * 1007).
 */
int wschat__close_parse(const uint8_t *p, size_t n, int *code,
                        const char **reason, size_t *reason_len);

/*
 * Build a close payload into out (at least 125 bytes): the code in network
 * order then the reason, truncated to 123 bytes at a UTF-8 boundary.
 * code 0 builds an empty payload. Returns the payload length.
 */
size_t wschat__close_build(uint8_t *out, int code, const char *reason,
                           size_t reason_len);

#endif
