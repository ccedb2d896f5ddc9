/*
 * fragment.h - the receive side of a WebSocket connection, sans I/O:
 * bytes in, whole messages and control frames out. Decodes frame headers
 * (frame.h), unmasks in place, reassembles fragmented messages with control
 * frames allowed between fragments, enforces the message size limit from
 * the frame header before buffering the payload, and validates text as it
 * arrives (utf8.h), so that invalid UTF-8 fails at the first bad byte.
 *
 * A single-frame message whose payload lies wholly inside one fed buffer
 * is delivered in place, without a copy; anything else is assembled in a
 * buffer from the reader's allocator.
 */
#ifndef WSCHAT_PROTO_FRAGMENT_H
#define WSCHAT_PROTO_FRAGMENT_H

#include "frame.h"
#include "utf8.h"

typedef struct wschat__reader_cbs {
  /*
   * A complete message: opcode WSCHAT__OP_TEXT (already validated) or
   * WSCHAT__OP_BINARY. data is writable and borrowed until the return.
   * Return 0 to go on; nonzero makes wschat__reader_feed() return at once
   * with the bytes consumed so far.
   */
  int (*on_message)(void *ctx, int opcode, uint8_t *data, size_t len);
  /* A complete control frame (CLOSE, PING or PONG), payload <= 125
   * bytes, unmasked. Return value as for on_message. */
  int (*on_control)(void *ctx, int opcode, uint8_t *data, size_t len);
} wschat__reader_cbs;

/* One per connection, so its fields are ordered to leave no padding. */
typedef struct wschat__reader {
  /* Configuration: set by init, may be changed between feeds. */
  uint64_t max_message; /* 1009 past this many bytes in one message */
  const wschat__allocator *alloc;

  /* After an error: the close code the peer deserves (1002, 1007, 1009,
   * 1011) and a static description for logs. */
  const char *error;
  int close_code;

  uint8_t header_flags; /* WSCHAT__FRAME_REQUIRE_* */
  uint8_t rsv_allowed;  /* RSV bits a negotiated extension allows */

  /* Private state. */
  uint8_t hdr_len;
  uint8_t in_frame; /* a header is decoded, payload pending */
  uint8_t hdr[WSCHAT__MAX_FRAME_HEADER]; /* partial frame header */
  uint8_t mask_off;   /* key offset into the current payload */
  uint8_t msg_opcode; /* TEXT/BINARY of the message in progress, or 0 */
  wschat__frame_header fh;
  uint64_t remaining; /* payload bytes of the current frame still due */
  uint8_t *msg;       /* assembled message (allocator) */
  size_t msg_len;
  size_t msg_cap;
  /* A control frame split across feeds is gathered here (allocated for
   * it, freed after delivery: most never split, and an idle reader holds
   * no buffer). */
  uint8_t *ctl;
  wschat__utf8 utf8;
  uint8_t ctl_len;
} wschat__reader;

/* Set up a reader for a server (client frames must be masked) with the
 * given message limit and allocator. Allocates nothing. */
void wschat__reader_init(wschat__reader *r, uint64_t max_message,
                         const wschat__allocator *alloc);

/* Release any partial message buffer. The reader may be reused after
 * another init. */
void wschat__reader_free(wschat__reader *r);

/*
 * Consume data[0..len), which the reader may modify (unmasking in place).
 * Calls cbs for each complete message and control frame, in order.
 *
 * Returns the number of bytes consumed: len, or fewer if a callback
 * returned nonzero (the bytes of that frame are counted as consumed).
 * On a protocol violation returns a negative error (WSCHAT_EPROTO,
 * WSCHAT_EUNMASKED, WSCHAT_EBADUTF8, WSCHAT_ETOOBIG, WSCHAT_ENOMEM) after
 * delivering every message that was complete before the bad byte, and sets
 * r->close_code and r->error; the reader must not be fed again.
 */
int64_t wschat__reader_feed(wschat__reader *r, uint8_t *data, size_t len,
                            const wschat__reader_cbs *cbs, void *ctx);

/* Whether the reader stands between messages with nothing held: no
 * partial header, frame, message or control frame, no error. Such a
 * reader behaves as a freshly initialized one with the same settings. */
int wschat__reader_is_idle(const wschat__reader *r);

/* Bytes this reader holds for a message in progress. */
size_t wschat__reader_buffered(const wschat__reader *r);

#endif
