/*
 * broadcast.c - fan-out. A message for many sessions is encoded once into
 * a frame; every recipient's write queue gets a reference to those bytes,
 * which are freed after the last write that carries them. Per recipient
 * that costs at most one queue slot, no copy and no encode: small frames
 * are carved one after another from shared blocks, so the frames a turn
 * sends a recipient extend one stretch of its queue (one iovec). Backpressure
 * is the session's own: a member whose unsent output passes max_queued at the
 * end of the turn is closed with 1008 there, without slowing this loop over the
 * others.
 */
#include <string.h>

#include "chat/room.h"
#include "core/alloc.h"
#include "proto/frame.h"
#include "proto/utf8.h"

/* A shared frame: its bytes are wb[off, off+len), in a block of small
 * frames (wschat__wbuf_carve) or in a wbuf of its own. */
struct wschat_frame {
  wschat__wbuf *wb;
  size_t off;
  size_t len;
};

int wschat_frame_new(wschat_msg_type type, const void *data, size_t len,
                     wschat_frame **out) {
  uint8_t hdr[WSCHAT__MAX_FRAME_HEADER];
  wschat_frame *f;
  size_t hl;
  int opcode;
  if (out == NULL || (data == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (type == WSCHAT_TEXT)
    opcode = WSCHAT__OP_TEXT;
  else if (type == WSCHAT_BINARY)
    opcode = WSCHAT__OP_BINARY;
  else
    return WSCHAT_EINVAL;
  if (opcode == WSCHAT__OP_TEXT && !wschat__utf8_valid(data, len))
    return WSCHAT_EBADUTF8;
  hl = wschat__frame_encode_header(hdr, 1, 0, opcode, len, NULL);
  if (len > SIZE_MAX - hl || (f = wschat__malloc(sizeof(*f))) == NULL)
    return WSCHAT_ENOMEM;
  f->len = hl + len;
  if (f->len <= WSCHAT__FRAME_CARVE_MAX) {
    if (wschat__wbuf_carve(f->len, &f->wb, &f->off) != 0)
      f->wb = NULL;
  } else if ((f->wb = wschat__wbuf_new(f->len)) != NULL) {
    f->off = 0;
    f->wb->len = f->len;
  }
  if (f->wb == NULL) {
    wschat__free(f);
    return WSCHAT_ENOMEM;
  }
  memcpy(f->wb->data + f->off, hdr, hl);
  if (len)
    memcpy(f->wb->data + f->off + hl, data, len);
  *out = f;
  return 0;
}

void wschat_frame_release(wschat_frame *frame) {
  if (frame == NULL)
    return;
  wschat__wbuf_unref(frame->wb);
  wschat__free(frame);
}

int wschat_session_send_frame(wschat_session *s, wschat_frame *frame) {
  int rc;
  if (s == NULL || frame == NULL)
    return WSCHAT_EINVAL;
  rc = wschat__session_queue_wbuf(s, frame->wb, frame->off, frame->len);
  if (rc == 0)
    wschat__session_server(s)->stats[WSCHAT_STAT_MESSAGES_OUT]++;
  return rc;
}

/* ------------------------------------------------------------------------
 * Broadcast
 * ---------------------------------------------------------------------- */

int wschat_room_broadcast(wschat_room *r, wschat_frame *frame,
                          const wschat_session *except) {
  uint32_t i, end;
  int count = 0;
  if (r == NULL || frame == NULL)
    return WSCHAT_EINVAL;
  end = r->nslots;
  r->walking++;
  for (i = 0; i < end; i++) {
    wschat__membership *m = r->members[i];
    if (m != NULL && m->session != except &&
        wschat__session_queue_wbuf(m->session, frame->wb, frame->off,
                                   frame->len) == 0)
      count++;
  }
  r->walking--;
  wschat__room_compact(r);
  r->server->stats[WSCHAT_STAT_MESSAGES_OUT] += (uint64_t)count;
  return count;
}
