/*
 * fragment.c - the receive side of a connection: bytes in, messages and
 * control frames out.
 *
 * The reader is a small state machine driven by whatever chunks the
 * socket hands us. Only an incomplete frame header (at most 14 bytes) is
 * ever copied aside; payload is unmasked where it lies and either handed
 * out in place (a single-frame message wholly inside the fed buffer, the
 * common case, costs no allocation and no copy) or appended to the message
 * buffer. Every decision that depends on a frame header (sequence rules,
 * the size limit) is taken when the header completes, before any of its
 * payload is looked at, so a hostile length never reaches the allocator.
 */
#include "proto/fragment.h"

#include <string.h>

/* Below this, growing a message buffer by doubling is not worth a
 * realloc per step. */
#define MSG_MIN_CAPACITY 64

/* What a payload step asks of the feed loop. */
enum { STEP_GO_ON = 0, STEP_STOP = 1 };

static int fail(wschat__reader *r, int err, const char *why) {
  switch (err) {
  case WSCHAT_EBADUTF8:
    r->close_code = WSCHAT_CLOSE_INVALID_DATA;
    break;
  case WSCHAT_ETOOBIG:
    r->close_code = WSCHAT_CLOSE_TOO_BIG;
    break;
  case WSCHAT_ENOMEM:
    r->close_code = WSCHAT_CLOSE_INTERNAL;
    break;
  default:
    r->close_code = WSCHAT_CLOSE_PROTOCOL_ERROR;
    break;
  }
  r->error = why;
  return err;
}

void wschat__reader_init(wschat__reader *r, uint64_t max_message,
                         const wschat__allocator *alloc) {
  memset(r, 0, sizeof(*r));
  r->max_message = max_message;
  r->header_flags = WSCHAT__FRAME_REQUIRE_MASK;
  r->rsv_allowed = 0;
  r->alloc = alloc;
  wschat__utf8_init(&r->utf8);
}

int wschat__reader_is_idle(const wschat__reader *r) {
  return r->hdr_len == 0 && !r->in_frame && r->msg_opcode == 0 &&
         r->msg == NULL && r->ctl == NULL && r->error == NULL;
}

void wschat__reader_free(wschat__reader *r) {
  if (r->msg != NULL)
    r->alloc->free_fn(r->msg);
  if (r->ctl != NULL)
    r->alloc->free_fn(r->ctl);
  r->ctl = NULL;
  r->ctl_len = 0;
  r->msg = NULL;
  r->msg_len = 0;
  r->msg_cap = 0;
}

size_t wschat__reader_buffered(const wschat__reader *r) {
  return r->msg_len;
}

/*
 * wschat__frame_decode_header() says only EPROTO or EUNMASKED; the log
 * line deserves the reason. The checks are repeated in the decoder's
 * order so that the first rule it tripped over is the one named.
 */
static const char *header_error(const wschat__reader *r, const uint8_t *h,
                                int err) {
  unsigned rsv = (h[0] >> 4) & 0x7;
  unsigned op = h[0] & 0xF;

  if (err == WSCHAT_EUNMASKED)
    return (r->header_flags & WSCHAT__FRAME_REQUIRE_MASK)
               ? "unmasked client frame"
               : "masked server frame";
  if (rsv & ~(unsigned)r->rsv_allowed)
    return "RSV bits set";
  if ((op >= 0x3 && op <= 0x7) || op >= 0xB)
    return "reserved opcode";
  if (WSCHAT__OP_IS_CONTROL(op) && !(h[0] & 0x80))
    return "fragmented control frame";
  if (WSCHAT__OP_IS_CONTROL(op) && (h[1] & 0x7F) > WSCHAT__MAX_CONTROL_PAYLOAD)
    return "control frame too long";
  return "64-bit length with the top bit set";
}

/* The header in r->fh is complete: apply the rules that span frames and
 * the size limit, then expect its payload. */
static int begin_frame(wschat__reader *r) {
  const wschat__frame_header *h = &r->fh;

  if (!WSCHAT__OP_IS_CONTROL(h->opcode)) {
    if (h->opcode == WSCHAT__OP_CONT) {
      if (r->msg_opcode == 0)
        return fail(r, WSCHAT_EPROTO, "continuation without a message");
    } else if (r->msg_opcode != 0) {
      return fail(r, WSCHAT_EPROTO, "data frame inside a fragmented message");
    }
    /* Written so that nothing can overflow: the length may be 2^63 - 1,
     * and max_message may have been lowered since msg_len grew. */
    if (r->msg_len > r->max_message || h->len > r->max_message - r->msg_len ||
        h->len > (uint64_t)(SIZE_MAX - r->msg_len))
      return fail(r, WSCHAT_ETOOBIG, "message too big");
    if (h->opcode != WSCHAT__OP_CONT) {
      r->msg_opcode = h->opcode;
      wschat__utf8_init(&r->utf8);
    }
  }
  r->ctl_len = 0;
  r->remaining = h->len;
  r->mask_off = 0;
  r->in_frame = 1;
  return 0;
}

/*
 * Take header bytes from p[0..n). Returns 1 once a frame has begun, 0 when
 * all of p was kept as a partial header, or an error. *used is set to the
 * bytes of p that belong to the header.
 */
static int take_header(wschat__reader *r, const uint8_t *p, size_t n,
                       size_t *used) {
  const uint8_t *h = p;
  size_t have = n;
  size_t kept = r->hdr_len;
  int rc;

  if (kept > 0) {
    size_t take = sizeof(r->hdr) - kept;
    if (take > n)
      take = n;
    memcpy(r->hdr + kept, p, take);
    h = r->hdr;
    have = kept + take;
  }
  rc = wschat__frame_decode_header(h, have, r->header_flags, r->rsv_allowed,
                                   &r->fh);
  if (rc < 0)
    return fail(r, rc, header_error(r, h, rc));
  if (rc == 0) {
    /* Fewer than 14 bytes in all, or the decoder would have finished:
     * so all of p fits, and all of p is header. */
    if (kept == 0)
      memcpy(r->hdr, p, n);
    r->hdr_len = (uint8_t)have;
    *used = n;
    return 0;
  }
  *used = (size_t)rc - kept;
  r->hdr_len = 0;
  rc = begin_frame(r);
  return rc < 0 ? rc : 1;
}

/*
 * Make room for n more message bytes. Doubling keeps the number of
 * reallocs logarithmic in the message size. A final frame announces where
 * the message ends, so the buffer never grows past that end; before it,
 * only max_message bounds the doubling, because a cap at each fragment's
 * own end would cost one realloc (and maybe a copy of everything so far)
 * per fragment, quadratic for a peer that sends many tiny fragments.
 */
static int msg_reserve(wschat__reader *r, size_t n) {
  size_t need = r->msg_len + n;
  uint64_t limit, cap;
  void *grown;

  if (need <= r->msg_cap)
    return 0;
  limit = r->fh.fin ? r->msg_len + n + r->remaining : r->max_message;
  if (limit > SIZE_MAX)
    limit = SIZE_MAX;
  cap = r->msg_cap < MSG_MIN_CAPACITY / 2 ? MSG_MIN_CAPACITY
                                          : (uint64_t)r->msg_cap * 2;
  if (cap > limit)
    cap = limit;
  if (cap < need)
    cap = need;
  grown = r->alloc->realloc_fn(r->msg, (size_t)cap);
  if (grown == NULL)
    return fail(r, WSCHAT_ENOMEM, "out of memory");
  r->msg = grown;
  r->msg_cap = (size_t)cap;
  return 0;
}

/* What an empty fragmented message points at: never written (length 0). */
static uint8_t empty_payload[1];

static int deliver(int (*cb)(void *, int, uint8_t *, size_t), void *ctx,
                   int opcode, uint8_t *data, size_t len) {
  if (cb != NULL && cb(ctx, opcode, data, len) != 0)
    return STEP_STOP;
  return STEP_GO_ON;
}

static int control_payload(wschat__reader *r, uint8_t *p, size_t n,
                           const wschat__reader_cbs *cbs, void *ctx) {
  int op = r->fh.opcode;
  size_t len;
  int rc;

  if (n == r->fh.len) {
    r->in_frame = 0;
    return deliver(cbs->on_control, ctx, op, p, n);
  }
  /* Split across feeds: at most 125 bytes, gathered in r->ctl. */
  if (r->ctl == NULL && (r->ctl = r->alloc->realloc_fn(
                             NULL, WSCHAT__MAX_CONTROL_PAYLOAD)) == NULL)
    return fail(r, WSCHAT_ENOMEM, "out of memory");
  memcpy(r->ctl + r->ctl_len, p, n);
  r->ctl_len = (uint8_t)(r->ctl_len + n);
  if (r->remaining > 0)
    return STEP_GO_ON;
  r->in_frame = 0;
  len = r->ctl_len;
  r->ctl_len = 0;
  rc = deliver(cbs->on_control, ctx, op, r->ctl, len);
  r->alloc->free_fn(r->ctl);
  r->ctl = NULL;
  return rc;
}

static int data_payload(wschat__reader *r, uint8_t *p, size_t n,
                        const wschat__reader_cbs *cbs, void *ctx) {
  const wschat__frame_header *h = &r->fh;
  int is_frame_done = r->remaining == 0;
  int op = r->msg_opcode;
  uint8_t *msg;
  size_t msg_len;
  int rc;

  if (op == WSCHAT__OP_TEXT) {
    if (wschat__utf8_feed(&r->utf8, p, n, NULL) < 0)
      return fail(r, WSCHAT_EBADUTF8, "invalid UTF-8");
    if (is_frame_done && h->fin && !wschat__utf8_is_complete(&r->utf8))
      return fail(r, WSCHAT_EBADUTF8, "text ends inside a UTF-8 sequence");
  }

  if (h->fin && h->opcode != WSCHAT__OP_CONT && n == h->len) {
    /* The whole message is here: hand it out where it lies. */
    r->in_frame = 0;
    r->msg_opcode = 0;
    return deliver(cbs->on_message, ctx, op, p, n);
  }

  if (n > 0) {
    rc = msg_reserve(r, n);
    if (rc < 0)
      return rc;
    memcpy(r->msg + r->msg_len, p, n);
    r->msg_len += n;
  }
  if (!is_frame_done)
    return STEP_GO_ON;
  r->in_frame = 0;
  if (!h->fin)
    return STEP_GO_ON;

  /* Detach first so the reader is consistent whatever the callback does,
   * and free after, so an idle reader holds no memory. */
  msg = r->msg;
  msg_len = r->msg_len;
  r->msg = NULL;
  r->msg_len = 0;
  r->msg_cap = 0;
  r->msg_opcode = 0;
  /* An empty fragmented message has no buffer; callers still get a
   * valid pointer. */
  rc = deliver(cbs->on_message, ctx, op, msg != NULL ? msg : empty_payload,
               msg_len);
  if (msg != NULL)
    r->alloc->free_fn(msg);
  return rc;
}

/* The next n bytes (n <= r->remaining) of the current frame's payload. */
static int payload(wschat__reader *r, uint8_t *p, size_t n,
                   const wschat__reader_cbs *cbs, void *ctx) {
  if (r->fh.masked)
    r->mask_off = (uint8_t)wschat__mask(p, n, r->fh.mask, r->mask_off);
  r->remaining -= n;
  if (WSCHAT__OP_IS_CONTROL(r->fh.opcode))
    return control_payload(r, p, n, cbs, ctx);
  return data_payload(r, p, n, cbs, ctx);
}

int64_t wschat__reader_feed(wschat__reader *r, uint8_t *data, size_t len,
                            const wschat__reader_cbs *cbs, void *ctx) {
  size_t pos = 0;

  for (;;) {
    size_t n;
    int rc;

    if (!r->in_frame) {
      size_t used;
      if (pos == len)
        break;
      rc = take_header(r, data + pos, len - pos, &used);
      if (rc < 0)
        return rc;
      pos += used;
      if (rc == 0)
        break;
    }
    /* An empty payload still passes through here: its frame completes
     * even when the header ended exactly at the end of the buffer. */
    n = len - pos;
    if (r->remaining <= n)
      n = (size_t)r->remaining;
    else if (n == 0)
      break;
    rc = payload(r, data + pos, n, cbs, ctx);
    pos += n;
    if (rc < 0)
      return rc;
    if (rc == STEP_STOP)
      break;
  }
  return (int64_t)pos;
}
