/*
 * broadcast.c - fan-out. A message for many sessions is encoded once into
 * a refcounted frame (a wbuf); every recipient's write queue gets a
 * reference to that one buffer, which is freed after the last write that
 * carries it. Per recipient that costs one queue slot, no copy and no
 * encode. Backpressure is the session's own: a member whose unsent output
 * passes max_queued at the end of the turn is closed with 1008 there,
 * without slowing this loop over the others.
 */
#include <string.h>

#include "chat/room.h"
#include "proto/frame.h"
#include "proto/utf8.h"

int wschat_frame_new(wschat_msg_type type, const void *data, size_t len,
                     wschat_frame **out) {
  uint8_t hdr[WSCHAT__MAX_FRAME_HEADER];
  wschat__wbuf *wb;
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
  if (len > SIZE_MAX - hl || (wb = wschat__wbuf_new(hl + len)) == NULL)
    return WSCHAT_ENOMEM;
  memcpy(wb->data, hdr, hl);
  if (len)
    memcpy(wb->data + hl, data, len);
  wb->len = hl + len;
  *out = (wschat_frame *)wb;
  return 0;
}

void wschat_frame_release(wschat_frame *frame) {
  if (frame != NULL)
    wschat__wbuf_unref((wschat__wbuf *)frame);
}

int wschat_session_send_frame(wschat_session *s, wschat_frame *frame) {
  wschat__wbuf *wb = (wschat__wbuf *)frame;
  int rc;
  if (s == NULL || frame == NULL)
    return WSCHAT_EINVAL;
  rc = wschat__session_queue_wbuf(s, wb, 0, wb->len);
  if (rc == 0)
    s->server->stats[WSCHAT_STAT_MESSAGES_OUT]++;
  return rc;
}

/* ------------------------------------------------------------------------
 * Broadcast
 * ---------------------------------------------------------------------- */

int wschat_room_broadcast(wschat_room *r, wschat_frame *frame,
                          const wschat_session *except) {
  wschat__wbuf *wb = (wschat__wbuf *)frame;
  uint32_t i, end;
  int count = 0;
  if (r == NULL || frame == NULL)
    return WSCHAT_EINVAL;
  end = r->nslots;
  r->walking++;
  for (i = 0; i < end; i++) {
    wschat__membership *m = r->members[i];
    if (m != NULL && m->session != except &&
        wschat__session_queue_wbuf(m->session, wb, 0, wb->len) == 0)
      count++;
  }
  r->walking--;
  wschat__room_compact(r);
  r->server->stats[WSCHAT_STAT_MESSAGES_OUT] += (uint64_t)count;
  return count;
}
