/*
 * session.c - one connection: the handshake, the read path (frames in,
 * callbacks out), the write queue (frames out, batched per loop turn), the
 * close handshake and the timeouts the server's sweep enforces.
 *
 * State machine:
 *   HANDSHAKE -> OPEN            valid upgrade (on_open)
 *   HANDSHAKE -> DRAIN           HTTP reply or rejection status
 *   OPEN -> CLOSE_SENT           we sent a close frame (API, idle, stop)
 *   OPEN/CLOSE_SENT -> DRAIN     close handshake done, or protocol failure
 *   DRAIN -> DEAD                output flushed, FIN sent, peer's EOF seen
 *                                (or the close timeout expired)
 *   any -> DEAD                  connection lost
 * on_close runs once, when a session that had on_open leaves OPEN or
 * CLOSE_SENT. The memory is released in the uv_close() callback, a later
 * loop phase, so a session closed inside any callback stays valid until
 * that callback returns.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "net/net.h"
#include "proto/frame.h"
#include "proto/utf8.h"

static void session_destroy(wschat_session *s);
static void session_enter_drain(wschat_session *s);
static void session_fail(wschat_session *s, int close_code, const char *why);

static uint64_t session_now(const wschat_session *s) {
  return uv_now(wschat__session_server(s)->loop);
}

static uv_stream_t *session_stream(wschat_session *s) {
  return (uv_stream_t *)&s->tcp;
}

/* ------------------------------------------------------------------------
 * Write queue
 * ---------------------------------------------------------------------- */

/* Give back a reference a queue segment held. A chunk nobody else holds
 * goes back to the server's pool for reuse, so the server does not malloc
 * per turn and an idle session holds no buffer. */
static void session_release_wbuf(wschat_session *s, wschat__wbuf *wb) {
  if (wb->kind == WSCHAT__WBUF_CHUNK && wb->refs == 1)
    wschat__server_chunk_put(wschat__session_server(s), wb);
  else
    wschat__wbuf_unref(wb);
}

static wschat__out_seg *session_seg(wschat_session *s, uint32_t i) {
  return &s->q->seg[(s->q->head + i) % s->q->cap];
}

/* Segments queued, and unsent bytes (in flight included). */
static uint32_t session_queue_count(const wschat_session *s) {
  return s->q != NULL ? s->q->count : 0;
}
static uint64_t session_queued_bytes(const wschat_session *s) {
  return s->q != NULL ? s->q->queued_bytes : 0;
}
static int session_is_writing(const wschat_session *s) {
  return s->q != NULL && s->q->wreq != NULL;
}

static int session_queue_grow(wschat_session *s) {
  wschat__outq *old = s->q;
  wschat__outq *q;
  uint32_t cap, i;
  if (old == NULL) {
    s->q = wschat__server_queue_get(wschat__session_server(s));
    return s->q != NULL ? 0 : WSCHAT_ENOMEM;
  }
  cap = old->cap * 2;
  if (cap < old->cap)
    return WSCHAT_ENOMEM;
  q = wschat__malloc(sizeof(*q) + sizeof(wschat__out_seg) * cap);
  if (q == NULL)
    return WSCHAT_ENOMEM;
  *q = *old;
  /* Unroll the ring so that head becomes 0. */
  for (i = 0; i < old->count; i++)
    q->seg[i] = *session_seg(s, i);
  q->cap = cap;
  q->head = 0;
  wschat__free(old);
  s->q = q;
  return 0;
}

/* An empty queue of the initial size goes back to the server's pool (a
 * grown one stays: its session has shown it needs it). */
static void session_queue_release(wschat_session *s) {
  if (s->q != NULL && s->q->count == 0 && s->q->wreq == NULL &&
      s->q->cap == WSCHAT__QUEUE_INITIAL) {
    wschat__server_queue_put(wschat__session_server(s), s->q);
    s->q = NULL;
  }
}

/* Append a segment; takes over one reference to wb. */
static int session_queue_push(wschat_session *s, wschat__wbuf *wb, size_t off,
                              size_t len) {
  wschat__out_seg *seg;
  int rc;
  if ((s->q == NULL || s->q->count == s->q->cap) &&
      (rc = session_queue_grow(s)) != 0) {
    session_release_wbuf(s, wb);
    return rc;
  }
  seg = session_seg(s, s->q->count);
  seg->wb = wb;
  seg->off = off;
  seg->len = len;
  s->q->count++;
  return 0;
}

static void session_note_queued(wschat_session *s, size_t len) {
  s->q->queued_bytes += len;
  wschat__server_mark_dirty(wschat__session_server(s), s);
}

/* Bytes wb[off, off+len) that start where the last queued segment ends
 * (and that segment is not in a write already) extend it instead of
 * taking a segment of their own: 1 when they did. */
static int session_extend_last(wschat_session *s, const wschat__wbuf *wb,
                               size_t off, size_t len) {
  wschat__out_seg *last;
  if (s->q == NULL || s->q->count <= s->q->inflight)
    return 0;
  last = session_seg(s, s->q->count - 1);
  if (last->wb != wb || last->off + last->len != off)
    return 0;
  last->len += len;
  session_note_queued(s, len);
  return 1;
}

/*
 * Queue a + b (either may be empty) as one contiguous stretch. Small
 * stretches are copied into the server's current chunk, extending the
 * last segment when it ends where the copy starts, so that many small
 * frames leave as one iovec; large ones get a wbuf of their own. Every
 * session writing during a turn shares the chunk (a burst of handshakes
 * or echoes fills a few chunks, not one per session); output that has to
 * wait for the socket is moved out of it (session_unshare), so a slow
 * reader never pins chunks it shares with others.
 */
static int session_queue_copy(wschat_session *s, const void *a, size_t alen,
                              const void *b, size_t blen) {
  size_t total = alen + blen;
  wschat__wbuf *wb;
  int rc;

  if (total == 0)
    return 0;
  if (total <= WSCHAT__COALESCE_MAX) {
    wschat_server *srv = wschat__session_server(s);
    if (srv->chunk != NULL && srv->chunk->cap - srv->chunk->len < total) {
      session_release_wbuf(s, srv->chunk);
      srv->chunk = NULL;
    }
    if (srv->chunk == NULL) {
      srv->chunk = wschat__server_chunk_get(srv);
      if (srv->chunk == NULL)
        return WSCHAT_ENOMEM;
    }
    wb = srv->chunk;
    s->has_chunk_segs = 1;
    size_t off = wb->len;
    if (alen)
      memcpy(wb->data + off, a, alen);
    if (blen)
      memcpy(wb->data + off + alen, b, blen);
    wb->len += total;
    if (session_extend_last(s, wb, off, total))
      return 0;
    rc = session_queue_push(s, wschat__wbuf_ref(wb), off, total);
  } else {
    wb = wschat__wbuf_new(total);
    if (wb == NULL)
      return WSCHAT_ENOMEM;
    if (alen)
      memcpy(wb->data, a, alen);
    if (blen)
      memcpy(wb->data + alen, b, blen);
    wb->len = total;
    rc = session_queue_push(s, wb, 0, total);
  }
  if (rc == 0)
    session_note_queued(s, total);
  return rc;
}

static int session_queue_frame(wschat_session *s, int opcode,
                               const void *payload, size_t len) {
  uint8_t hdr[WSCHAT__MAX_FRAME_HEADER];
  size_t hl = wschat__frame_encode_header(hdr, 1, 0, opcode, len, NULL);
  return session_queue_copy(s, hdr, hl, payload, len);
}

int wschat__session_queue_wbuf(wschat_session *s, wschat__wbuf *wb, size_t off,
                               size_t len) {
  int rc;
  if (s->state != WSCHAT__S_OPEN || s->is_slow)
    return WSCHAT_ECLOSED;
  if (wb->kind != WSCHAT__WBUF_OWN) {
    /* A frame carved right after the last one queued here extends its
     * stretch (unless that is in a write already). */
    s->has_chunk_segs = 1;
    if (session_extend_last(s, wb, off, len))
      return 0;
  }
  rc = session_queue_push(s, wschat__wbuf_ref(wb), off, len);
  if (rc == 0)
    session_note_queued(s, len);
  return rc;
}

/* Drop every queued segment that is not part of the write in flight. */
static void session_queue_discard_unsent(wschat_session *s) {
  while (s->q != NULL && s->q->count > s->q->inflight) {
    wschat__out_seg *seg = session_seg(s, s->q->count - 1);
    s->q->queued_bytes -= seg->len;
    session_release_wbuf(s, seg->wb);
    s->q->count--;
  }
}

static size_t session_fill_iov(wschat_session *s, uv_buf_t *iov, unsigned max,
                               unsigned *n) {
  size_t total = 0;
  unsigned i;
  for (i = 0; i < max && i < session_queue_count(s); i++) {
    wschat__out_seg *seg = session_seg(s, i);
    iov[i] = uv_buf_init((char *)seg->wb->data + seg->off, (unsigned)seg->len);
    total += seg->len;
  }
  *n = i;
  return total;
}

/* Forget the first `bytes` queued bytes, which the socket took. */
static void session_queue_consume(wschat_session *s, size_t bytes) {
  if (bytes == 0)
    return;
  s->q->queued_bytes -= bytes;
  wschat__session_server(s)->stats[WSCHAT_STAT_BYTES_OUT] += bytes;
  while (bytes > 0) {
    wschat__out_seg *seg = session_seg(s, 0);
    if (seg->len > bytes) {
      seg->off += bytes;
      seg->len -= bytes;
      return;
    }
    bytes -= seg->len;
    session_release_wbuf(s, seg->wb);
    s->q->head = (s->q->head + 1) % s->q->cap;
    s->q->count--;
  }
}

static void session_on_shutdown(uv_shutdown_t *req, int status) {
  wschat_session *s = req->data;
  wschat__free(req);
  if (s->state == WSCHAT__S_DEAD)
    return;
  /* With our FIN sent: if the peer has closed its side, or has sent its
   * close frame (after which it sends nothing), we are done. Otherwise
   * it may still be sending, and closing now could answer with a reset
   * that destroys our last bytes in its receive buffer: wait for its EOF
   * (read callback) or the close timeout (sweep). */
  if (status < 0 || s->is_eof || s->is_peer_closed)
    session_destroy(s);
}

static void session_on_write(uv_write_t *req, int status);

/*
 * Move the queued bytes of segments [from, q_count) that live in shared
 * buffers (the server's chunks, blocks of carved frames) into one buffer
 * of the session's own. Output that waits for the
 * socket then pins only its own bytes (bounded by max_queued), never a
 * chunk other sessions filled. Out of memory, the segments simply keep
 * their chunks. Segments before `from` (in flight) were moved already,
 * and a queue that got no chunk bytes since the last move is not scanned
 * at all, so a slow receiver of broadcasts costs nothing here.
 */
static void session_unshare(wschat_session *s, uint32_t from) {
  wschat__wbuf *own;
  size_t bytes = 0;
  size_t off = 0;
  uint32_t i;
  if (!s->has_chunk_segs)
    return;
  for (i = from; i < session_queue_count(s); i++)
    if (session_seg(s, i)->wb->kind != WSCHAT__WBUF_OWN)
      bytes += session_seg(s, i)->len;
  if (bytes == 0) {
    s->has_chunk_segs = 0;
    return;
  }
  if ((own = wschat__wbuf_new(bytes)) == NULL)
    return;
  for (i = from; i < s->q->count; i++) {
    wschat__out_seg *seg = session_seg(s, i);
    if (seg->wb->kind == WSCHAT__WBUF_OWN)
      continue;
    memcpy(own->data + off, seg->wb->data + seg->off, seg->len);
    session_release_wbuf(s, seg->wb);
    seg->wb = wschat__wbuf_ref(own);
    seg->off = off;
    off += seg->len;
  }
  own->len = bytes;
  wschat__wbuf_unref(own); /* the segments hold it now */
  s->has_chunk_segs = 0;
}

/*
 * uv_try_write(), except for the last bytes before close(2): those are
 * sent with MSG_MORE, so the kernel holds them until the close and its FIN
 * leaves in the same segment (the batched send does the same). uv_buf_t
 * has the layout of struct iovec on Unix.
 */
static int session_try_write(wschat_session *s, uv_buf_t *iov, unsigned n) {
#ifdef MSG_MORE
  uv_os_fd_t fd;
  if (wschat__session_send_is_last(s, n) &&
      uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
    struct msghdr mh;
    ssize_t r;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = (struct iovec *)iov;
    mh.msg_iovlen = n;
    do
      r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
      return (int)r;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
  }
#endif
  return uv_try_write(session_stream(s), iov, n);
}

/*
 * Send what is queued: uv_try_write() first, so a socket with room takes
 * everything without a request; whatever remains goes in one uv_write().
 * Called at the end of every loop turn for sessions that queued output,
 * and when a write completes.
 */
void wschat__session_flush(wschat_session *s) {
  uv_buf_t iov[WSCHAT__IOV_BATCH];
  unsigned n;
  size_t total;
  int rc;

  if (s->state == WSCHAT__S_DEAD || session_is_writing(s))
    return;
  /* The batched send of this turn found the socket full: straight to a
   * request that waits for room. */
  while (session_queue_count(s) > 0 && !s->is_send_full) {
    total = session_fill_iov(s, iov, WSCHAT__IOV_BATCH, &n);
    rc = session_try_write(s, iov, n);
    if (rc == UV_EAGAIN || rc == UV_ENOSYS)
      rc = 0;
    if (rc < 0) {
      session_destroy(s);
      return;
    }
    session_queue_consume(s, (size_t)rc);
    if ((size_t)rc < total)
      break;
  }
  s->is_send_full = 0;
  if (session_queue_count(s) > 0) {
    wschat__wreq *w = wschat__server_wreq_get(wschat__session_server(s));
    session_unshare(s, 0);
    session_fill_iov(s, iov, WSCHAT__IOV_BATCH, &n);
    rc = w == NULL
             ? WSCHAT_ENOMEM
             : uv_write(&w->req, session_stream(s), iov, n, session_on_write);
    if (rc < 0) {
      if (w != NULL)
        wschat__server_wreq_put(wschat__session_server(s), w);
      session_destroy(s);
      return;
    }
    w->session = s;
    s->q->wreq = w;
    s->q->inflight = n;
    return;
  }
  session_queue_release(s);
  /* Everything is with the kernel. A peer that sent its close frame (or
   * its FIN) sends nothing more, so close(2) alone sends our FIN without
   * risking a reset: no shutdown(2) and no loop turn waiting for it. */
  if (s->state == WSCHAT__S_DRAIN && (s->is_peer_closed || s->is_eof)) {
    session_destroy(s);
    return;
  }
  if (s->state == WSCHAT__S_DRAIN && !s->is_shutdown_sent) {
    uv_shutdown_t *req = wschat__malloc(sizeof(*req));
    s->is_shutdown_sent = 1;
    if (req == NULL) {
      session_destroy(s);
      return;
    }
    req->data = s;
    if (uv_shutdown(req, session_stream(s), session_on_shutdown) < 0) {
      wschat__free(req);
      session_destroy(s);
    }
  }
}

size_t wschat__session_send_prepare(wschat_session *s, struct iovec *iov,
                                    unsigned max, unsigned *n) {
  size_t total = 0;
  unsigned i;
  *n = 0;
  if (s->state == WSCHAT__S_DEAD || session_is_writing(s))
    return 0;
  for (i = 0; i < max && i < session_queue_count(s); i++) {
    wschat__out_seg *seg = session_seg(s, i);
    iov[i].iov_base = (char *)seg->wb->data + seg->off;
    iov[i].iov_len = seg->len;
    total += seg->len;
  }
  *n = i;
  return total;
}

int wschat__session_send_is_last(const wschat_session *s, unsigned n) {
  return s->state == WSCHAT__S_DRAIN && (s->is_peer_closed || s->is_eof) &&
         n == session_queue_count(s);
}

void wschat__session_sent(wschat_session *s, int res) {
  if (res > 0)
    session_queue_consume(s, (size_t)res);
}

void wschat__session_turn_end_sent(wschat_session *s, int res, size_t total) {
  if (res != WSCHAT__SEND_NONE && res < 0 && res != -EAGAIN) {
    session_destroy(s); /* as when uv_try_write() fails */
    return;
  }
  if (res == -EAGAIN || (res >= 0 && (size_t)res < total))
    s->is_send_full = 1;
  wschat__session_turn_end(s);
}

static void session_on_write(uv_write_t *req, int status) {
  wschat__wreq *w = WSCHAT__CONTAINER_OF(req, wschat__wreq, req);
  wschat_session *s = w->session;
  uint32_t done = s->q->inflight;
  size_t bytes = 0;
  uint32_t i;

  wschat__server_wreq_put(wschat__session_server(s), w);
  s->q->wreq = NULL;
  for (i = 0; i < done; i++)
    bytes += session_seg(s, i)->len;
  s->q->inflight = 0;
  session_queue_consume(s, bytes);
  if (s->state == WSCHAT__S_DEAD)
    return;
  if (status < 0) {
    session_destroy(s);
    return;
  }
  wschat__session_flush(s);
}

/* ------------------------------------------------------------------------
 * Closing
 * ---------------------------------------------------------------------- */

static void session_report_close(wschat_session *s, int code,
                                 const char *reason, size_t reason_len) {
  wschat_server *srv = wschat__session_server(s);
  if (!s->is_open_reported || s->is_close_reported)
    return;
  s->is_close_reported = 1;
  if (code >= 1000 && code <= 1015)
    srv->closes[1 + code - 1000]++;
  else
    srv->closes[0]++;
  if (srv->on_close != NULL)
    srv->on_close(s, code, reason != NULL ? reason : "", reason_len,
                  srv->userdata);
  wschat__chat_session_gone(s);
}

/* Report our own close code, the one this side sent first. */
static void session_report_own_close(wschat_session *s) {
  session_report_close(s, s->close_code ? s->close_code : 1005, s->close_reason,
                       s->close_reason_len);
}

static void session_on_closed(uv_handle_t *handle) {
  wschat_session *s = (wschat_session *)handle;
  while (session_queue_count(s) > 0) {
    session_release_wbuf(s, session_seg(s, 0)->wb);
    s->q->head = (s->q->head + 1) % s->q->cap;
    s->q->count--;
  }
  if (s->q != NULL && s->q->cap == WSCHAT__QUEUE_INITIAL)
    wschat__server_queue_put(wschat__session_server(s), s->q);
  else
    wschat__free(s->q);
  wschat__server_reader_put(wschat__session_server(s), s->reader);
  if (s->is_open_reported)
    wschat__free(s->close_reason);
  else
    wschat__server_hs_put(wschat__session_server(s), s->hs);
  wschat__server_path_release(s->info);
  wschat__chat_session_gone(s);
  wschat__server_session_gone(wschat__session_server(s), s);
  wschat__slab_free(&wschat__session_server(s)->session_slab, s);
}

/* Close the TCP connection now; what is queued is dropped. */
static void session_destroy(wschat_session *s) {
  if (s->state == WSCHAT__S_DEAD)
    return;
  if (s->state == WSCHAT__S_OPEN)
    session_report_close(s, WSCHAT_CLOSE_ABNORMAL, NULL, 0);
  else if (s->state == WSCHAT__S_CLOSE_SENT)
    session_report_own_close(s);
  /* Left in the server's dirty list, if there: the flush skips dead
   * sessions, and the close callback unlinks one it has not reached. */
  s->state = WSCHAT__S_DEAD;
  if (s->is_fixed)
    wschat__server_session_unfix(wschat__session_server(s), s);
  uv_close((uv_handle_t *)&s->tcp, session_on_closed);
}

/* Flush, send FIN, wait for the peer's EOF; bounded by the close
 * timeout. */
static void session_enter_drain(wschat_session *s) {
  s->state = WSCHAT__S_DRAIN;
  s->deadline =
      wschat__ms(session_now(s) + wschat__session_server(s)->close_timeout);
  wschat__server_mark_dirty(wschat__session_server(s), s);
}

static void session_remember_close(wschat_session *s, int code,
                                   const char *reason, size_t len) {
  /* Codes are 1000..4999 and reasons at most 123 bytes (RFC 6455 5.5),
   * which the narrow fields hold. */
  s->close_code = (int16_t)code;
  wschat__free(s->close_reason);
  s->close_reason = NULL;
  s->close_reason_len = 0;
  if (len > 123)
    len = 123;
  if (len > 0 && (s->close_reason = wschat__malloc(len)) != NULL) {
    memcpy(s->close_reason, reason, len);
    s->close_reason_len = (uint8_t)len;
  }
}

static int session_queue_close(wschat_session *s, int code, const char *reason,
                               size_t len) {
  uint8_t payload[WSCHAT__MAX_CONTROL_PAYLOAD];
  size_t n = wschat__close_build(payload, code, reason, len);
  return session_queue_frame(s, WSCHAT__OP_CLOSE, payload, n);
}

/* Start the close handshake from this side. */
static void session_begin_close(wschat_session *s, int code, const char *reason,
                                size_t len) {
  if (len > 123)
    len = 123;
  session_queue_close(s, code, reason, len);
  session_remember_close(s, code, reason, len);
  s->state = WSCHAT__S_CLOSE_SENT;
  s->deadline =
      wschat__ms(session_now(s) + wschat__session_server(s)->close_timeout);
}

/* The configured close code for one of the library's own situations. */
static int session_code_for(const wschat_session *s, int wire_code) {
  const int *codes = wschat__session_server(s)->close_codes;
  switch (wire_code) {
  case WSCHAT_CLOSE_PROTOCOL_ERROR:
    return codes[WSCHAT_CLOSE_ON_PROTOCOL_ERROR];
  case WSCHAT_CLOSE_INVALID_DATA:
    return codes[WSCHAT_CLOSE_ON_BAD_UTF8];
  case WSCHAT_CLOSE_TOO_BIG:
    return codes[WSCHAT_CLOSE_ON_TOO_BIG];
  default:
    return codes[WSCHAT_CLOSE_ON_INTERNAL];
  }
}

/*
 * Fail the WebSocket connection (RFC 6455 7.1.7): send a close frame with
 * the code the peer deserves (unless ours is already out), then close TCP
 * without waiting for the peer's close frame.
 */
static void session_fail(wschat_session *s, int close_code, const char *why) {
  size_t len = why != NULL ? strlen(why) : 0;
  if (s->state == WSCHAT__S_OPEN) {
    int code = session_code_for(s, close_code);
    session_queue_close(s, code, why, len);
    session_remember_close(s, code, why, len);
    session_enter_drain(s);
    session_report_own_close(s);
  } else if (s->state == WSCHAT__S_CLOSE_SENT) {
    session_enter_drain(s);
    session_report_own_close(s);
  }
}

/* Past max_queued: throw away what the socket has not taken and close
 * with the slow-consumer code. Called at the end of the turn, after the
 * flush, never from inside a send, so a broadcast in progress is not
 * disturbed and only output the peer really failed to read counts. */
static void session_close_slow(wschat_session *s) {
  int code =
      wschat__session_server(s)->close_codes[WSCHAT_CLOSE_ON_SLOW_CONSUMER];
  static const char why[] = "slow consumer";
  s->is_slow = 1;
  wschat__session_server(s)->stats[WSCHAT_STAT_SLOW_CLOSES]++;
  session_queue_discard_unsent(s);
  if (s->state == WSCHAT__S_OPEN) {
    session_queue_close(s, code, why, sizeof(why) - 1);
    session_remember_close(s, code, why, sizeof(why) - 1);
  }
  session_enter_drain(s);
  session_report_own_close(s);
}

/* ------------------------------------------------------------------------
 * Read path
 * ---------------------------------------------------------------------- */

static int session_on_frame_message(void *ctx, int opcode, uint8_t *data,
                                    size_t len) {
  wschat_session *s = ctx;
  wschat_server *srv = wschat__session_server(s);
  /* After our close frame, data is read (to find the peer's close) but
   * not delivered. */
  if (s->state != WSCHAT__S_OPEN)
    return 0;
  srv->stats[WSCHAT_STAT_MESSAGES_IN]++;
  if (srv->on_message != NULL)
    srv->on_message(s, opcode == WSCHAT__OP_TEXT ? WSCHAT_TEXT : WSCHAT_BINARY,
                    (const char *)data, len, srv->userdata);
  return s->state == WSCHAT__S_DRAIN || s->state == WSCHAT__S_DEAD;
}

static int session_on_frame_close(wschat_session *s, const uint8_t *data,
                                  size_t len) {
  const char *reason;
  size_t reason_len;
  int code;
  int rc = wschat__close_parse(data, len, &code, &reason, &reason_len);

  if (rc == WSCHAT_EBADUTF8) {
    session_fail(s, WSCHAT_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason");
    return 1;
  }
  if (rc < 0) {
    session_fail(s, WSCHAT_CLOSE_PROTOCOL_ERROR, "invalid close frame");
    return 1;
  }
  s->is_peer_closed = 1;
  if (s->state == WSCHAT__S_OPEN) {
    /* The peer closed first: answer with its code (an empty payload when
     * it sent none, since 1005 never goes on the wire). */
    session_queue_close(s, code == WSCHAT_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
    session_enter_drain(s);
    session_report_close(s, code, reason, reason_len);
  } else if (s->state == WSCHAT__S_CLOSE_SENT) {
    session_enter_drain(s);
    session_report_own_close(s);
  }
  return 1;
}

static int session_on_frame_control(void *ctx, int opcode, uint8_t *data,
                                    size_t len) {
  wschat_session *s = ctx;
  wschat_server *srv = wschat__session_server(s);
  switch (opcode) {
  case WSCHAT__OP_PING:
    if (s->state == WSCHAT__S_OPEN)
      session_queue_frame(s, WSCHAT__OP_PONG, data, len);
    return 0;
  case WSCHAT__OP_PONG:
    if (s->state == WSCHAT__S_OPEN && srv->on_pong != NULL)
      srv->on_pong(s, (const char *)data, len, srv->userdata);
    return s->state == WSCHAT__S_DRAIN || s->state == WSCHAT__S_DEAD;
  case WSCHAT__OP_CLOSE:
    return session_on_frame_close(s, data, len);
  default:
    return 0;
  }
}

static const wschat__reader_cbs session_reader_cbs = {session_on_frame_message,
                                                      session_on_frame_control};

/* Decode frames with a reader from the server's pool, given back when the
 * bytes end between messages (a reader in that state holds nothing a
 * fresh one would not). After a protocol error it stays with the session,
 * which is closing and is not fed again. */
static void session_feed_frames(wschat_session *s, uint8_t *data, size_t len) {
  wschat__reader *r = s->reader;
  int64_t rc;
  if (r == NULL) {
    if ((r = wschat__server_reader_get(wschat__session_server(s),
                                       s->max_message)) == NULL) {
      session_fail(s, WSCHAT_CLOSE_INTERNAL, "out of memory");
      return;
    }
    s->reader = r;
  }
  rc = wschat__reader_feed(r, data, len, &session_reader_cbs, s);
  if (rc < 0) {
    session_fail(s, r->close_code, r->error);
    return;
  }
  if (wschat__reader_is_idle(r)) {
    s->reader = NULL;
    wschat__server_reader_put(wschat__session_server(s), r);
  }
}

/* Answer a request with a status and a short text body, then close. */
static void session_respond_status(wschat_session *s, int status,
                                   const char *why) {
  char head[512];
  char body[256];
  int bl = snprintf(body, sizeof(body), "%d %s%s%s\n", status,
                    wschat__http_status_text(status), why ? ": " : "",
                    why ? why : "");
  int hl;
  if (bl < 0 || (size_t)bl >= sizeof(body))
    bl = 0;
  if (status >= 400)
    wschat__session_server(s)->stats[WSCHAT_STAT_HTTP_REJECTS]++;
  hl = wschat__http_build_head(status, "text/plain; charset=utf-8", NULL,
                               (size_t)bl, head, sizeof(head));
  if (hl > 0)
    session_queue_copy(s, head, (size_t)hl, body, (size_t)bl);
  session_enter_drain(s);
}

int wschat_http_respond(wschat_http_request *req, int status,
                        const char *content_type, const char *extra_headers,
                        const void *body, size_t len) {
  wschat_session *s;
  char small[1024];
  char *head = small;
  size_t cap = sizeof(small);
  int hl;
  int rc;

  if (req == NULL || req->responded || status < 100 || status > 599 ||
      (body == NULL && len > 0))
    return WSCHAT_EINVAL;
  s = req->session;
  if (extra_headers != NULL && strlen(extra_headers) > 512) {
    cap =
        strlen(extra_headers) + 512 + (content_type ? strlen(content_type) : 0);
    head = wschat__malloc(cap);
    if (head == NULL)
      return WSCHAT_ENOMEM;
  }
  hl = wschat__http_build_head(status, content_type, extra_headers, len, head,
                               cap);
  if (hl < 0) {
    rc = hl;
  } else {
    if (strcmp(wschat__handshake_method(s->hs), "HEAD") == 0)
      len = 0;
    rc = session_queue_copy(s, head, (size_t)hl, body, len);
  }
  if (head != small)
    wschat__free(head);
  if (rc == 0) {
    req->responded = 1;
    session_enter_drain(s);
  }
  return rc;
}

static void session_handle_http(wschat_session *s) {
  wschat_server *srv = wschat__session_server(s);
  wschat_http_request req = {s, 0};
  if (srv->on_http != NULL)
    srv->on_http(srv, &req, srv->userdata);
  if (req.responded || s->state != WSCHAT__S_HANDSHAKE)
    return;
  if (srv->on_http != NULL ||
      (srv->path != NULL &&
       strcmp(wschat__handshake_path(s->hs), srv->path) != 0))
    session_respond_status(s, 404, NULL);
  else
    session_respond_status(s, 426, "this is a WebSocket endpoint");
}

/* Keep what the session needs from the request once the parser is gone.
 * The subprotocol points into the server's list and, when the server has
 * a path, the path is that one: both are fixed while it listens. A server
 * taking every path keeps a copy of the path, shared by the sessions that
 * asked for the same one in a row (wschat__server_path_share). */
static int session_keep_request_info(wschat_session *s) {
  const char *sub = wschat__handshake_subprotocol(s->hs);
  wschat_server *srv = wschat__session_server(s);
  size_t i;
  for (i = 0; sub != NULL && i < srv->n_subprotocols; i++)
    if (srv->subprotocols[i] == sub)
      s->subprotocol = (uint32_t)i + 1;
  if (wschat__session_server(s)->path != NULL)
    return 0;
  s->info = wschat__server_path_share(wschat__session_server(s),
                                      wschat__handshake_path(s->hs));
  return s->info != NULL ? 0 : WSCHAT_ENOMEM;
}

static void session_handle_handshake(wschat_session *s, uint8_t *data,
                                     size_t len) {
  wschat_server *srv = wschat__session_server(s);
  size_t consumed = 0;
  char reply[1024];
  int rl;

  switch (wschat__handshake_feed(s->hs, (const char *)data, len, &consumed)) {
  case WSCHAT__HS_MORE:
    return;
  case WSCHAT__HS_REJECT:
    session_respond_status(s, wschat__handshake_status(s->hs),
                           wschat__handshake_error(s->hs));
    return;
  case WSCHAT__HS_HTTP:
    session_handle_http(s);
    return;
  case WSCHAT__HS_UPGRADE:
    break;
  }
  /* Marked answered: the origin hook may read the request, not reply. */
  wschat_http_request req = {s, 1};
  if (srv->on_origin != NULL &&
      !srv->on_origin(srv, &req, wschat__handshake_header(s->hs, "Origin"),
                      srv->userdata)) {
    session_respond_status(s, 403, "origin not allowed");
    return;
  }
  rl = wschat__handshake_build_101(s->hs, reply, sizeof(reply));
  if (rl < 0 || session_keep_request_info(s) != 0 ||
      session_queue_copy(s, reply, (size_t)rl, NULL, 0) != 0 ||
      wschat__chat_session_open(s) != 0) {
    session_respond_status(s, 500, "out of memory");
    return;
  }
  wschat__server_hs_put(srv, s->hs);
  s->hs = NULL;
  s->max_message = srv->max_message;
  s->state = WSCHAT__S_OPEN;
  s->deadline = 0;
  s->is_open_reported = 1;
  if (srv->on_open != NULL)
    srv->on_open(s, srv->userdata);
  /* Frame bytes that came in the same read as the request head. */
  if (consumed < len &&
      (s->state == WSCHAT__S_OPEN || s->state == WSCHAT__S_CLOSE_SENT))
    session_feed_frames(s, data + consumed, len - consumed);
}

static void session_on_alloc(uv_handle_t *handle, size_t suggested,
                             uv_buf_t *buf) {
  wschat_server *srv = handle->data;
  (void)suggested;
  /* One read is fully consumed before the next alloc, so the whole loop
   * shares one buffer; only a partial frame header outlives a read. */
  *buf = uv_buf_init((char *)srv->read_buf, WSCHAT__READ_BUF_SIZE);
}

static void session_on_read(uv_stream_t *stream, ssize_t nread,
                            const uv_buf_t *buf) {
  wschat_session *s = (wschat_session *)stream;
  if (nread == 0 || s->state == WSCHAT__S_DEAD)
    return;
  if (nread < 0) {
    /* EOF or reset. Draining: the peer has closed its side, which is what
     * we were waiting for once our FIN is out; otherwise stop reading and
     * let the flush finish. Anything else is a lost connection. */
    if (s->state == WSCHAT__S_DRAIN && !s->is_shutdown_sent &&
        nread == UV_EOF) {
      s->is_eof = 1;
      uv_read_stop(stream);
      return;
    }
    session_destroy(s);
    return;
  }
  s->last_rx = wschat__ms(session_now(s));
  wschat__session_server(s)->stats[WSCHAT_STAT_BYTES_IN] += (uint64_t)nread;
  switch (s->state) {
  case WSCHAT__S_HANDSHAKE:
    session_handle_handshake(s, (uint8_t *)buf->base, (size_t)nread);
    break;
  case WSCHAT__S_OPEN:
  case WSCHAT__S_CLOSE_SENT:
    session_feed_frames(s, (uint8_t *)buf->base, (size_t)nread);
    break;
  default:
    break; /* draining: discard */
  }
}

/* ------------------------------------------------------------------------
 * Life cycle, used by server.c
 * ---------------------------------------------------------------------- */

wschat_session *wschat__session_new(wschat_server *srv) {
  wschat_session *s = wschat__slab_alloc(&srv->session_slab);
  if (s == NULL)
    return NULL;
  if (uv_tcp_init(srv->loop, &s->tcp) != 0) {
    wschat__slab_free(&srv->session_slab, s);
    return NULL;
  }
  s->tcp.data = srv;
  s->state = WSCHAT__S_HANDSHAKE;
  s->id = ++srv->next_session_id;
  wschat__chat_session_init(s);
  wschat__link_insert_tail(&srv->sessions, &s->node);
  srv->nsessions++;
  return s;
}

void wschat__session_start(wschat_session *s) {
  wschat_server *srv = wschat__session_server(s);
  uint64_t now = session_now(s);

  s->last_rx = wschat__ms(now);
  s->deadline = wschat__ms(now + srv->handshake_timeout);
#ifndef __linux__
  /* Linux hands the listener's TCP_NODELAY (wschat_server_listen) to every
   * accepted socket, which saves a system call per connection. */
  uv_tcp_nodelay(&s->tcp, 1);
#endif
  if (uv_read_start(session_stream(s), session_on_alloc, session_on_read) !=
      0) {
    session_destroy(s);
    return;
  }
  if (s->is_rejecting) {
    session_respond_status(s, 503,
                           s->is_ip_rejected
                               ? "too many connections from this address"
                               : "too many connections");
    return;
  }
  s->hs = wschat__server_hs_get(srv);
  if (s->hs == NULL)
    session_respond_status(s, 503, "out of memory");
}

void wschat__session_sweep(wschat_session *s, uint64_t now) {
  wschat_server *srv = wschat__session_server(s);
  /* Keep the idleness times from falling behind by more than the horizon
   * (no timeout or interval is that long), so that their differences to
   * now never wrap around. */
  if (wschat__ms_since(now, s->last_rx) > WSCHAT__MS_HORIZON)
    s->last_rx = wschat__ms(now) - WSCHAT__MS_HORIZON;
  if (wschat__ms_since(now, s->last_ping) > WSCHAT__MS_HORIZON)
    s->last_ping = wschat__ms(now) - WSCHAT__MS_HORIZON;
  if (wschat__ms_since(now, s->rate_refill) > WSCHAT__MS_HORIZON)
    s->rate_refill = wschat__ms(now) - WSCHAT__MS_HORIZON;
  switch (s->state) {
  case WSCHAT__S_HANDSHAKE:
    if (!wschat__ms_after(s->deadline, wschat__ms(now)))
      session_respond_status(s, 408, "handshake timeout");
    break;
  case WSCHAT__S_OPEN:
    if (srv->idle_timeout &&
        wschat__ms_since(now, s->last_rx) >= srv->idle_timeout) {
      static const char why[] = "idle timeout";
      session_begin_close(s, srv->close_codes[WSCHAT_CLOSE_ON_IDLE], why,
                          sizeof(why) - 1);
    } else if (srv->ping_interval &&
               wschat__ms_since(now, s->last_rx) >= srv->ping_interval &&
               wschat__ms_since(now, s->last_ping) >= srv->ping_interval) {
      s->last_ping = wschat__ms(now);
      session_queue_frame(s, WSCHAT__OP_PING, NULL, 0);
    }
    break;
  case WSCHAT__S_CLOSE_SENT:
  case WSCHAT__S_DRAIN:
    if (!wschat__ms_after(s->deadline, wschat__ms(now)))
      session_destroy(s);
    break;
  default:
    break;
  }
}

void wschat__session_close_now(wschat_session *s) {
  session_destroy(s);
}

/* The server is stopping: close everything, each within
 * WSCHAT__STOP_TIMEOUT at most, so that a stop is prompt even with peers
 * that never answer. */
void wschat__session_shutdown(wschat_session *s) {
  static const char why[] = "server shutting down";
  uint64_t limit = session_now(s) + WSCHAT__STOP_TIMEOUT;
  if (s->state == WSCHAT__S_HANDSHAKE) {
    session_destroy(s);
    return;
  }
  if (s->state == WSCHAT__S_OPEN)
    session_begin_close(
        s, wschat__session_server(s)->close_codes[WSCHAT_CLOSE_ON_SHUTDOWN],
        why, sizeof(why) - 1);
  if (wschat__ms_after(s->deadline, wschat__ms(limit)))
    s->deadline = wschat__ms(limit);
}

/* Called by the end-of-turn flush for each session that queued output. */
void wschat__session_turn_end(wschat_session *s) {
  wschat__session_flush(s);
  /* Still writing: what this turn queued behind the write waits too. */
  if (session_is_writing(s))
    session_unshare(s, s->q->inflight);
  if (session_queued_bytes(s) > wschat__session_server(s)->max_queued &&
      (s->state == WSCHAT__S_OPEN || s->state == WSCHAT__S_CLOSE_SENT)) {
    session_close_slow(s);
    wschat__session_flush(s);
  }
}

/* ------------------------------------------------------------------------
 * Public session API
 * ---------------------------------------------------------------------- */

static int session_send(wschat_session *s, int opcode, const void *data,
                        size_t len) {
  if (s == NULL || (data == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (s->state != WSCHAT__S_OPEN || s->is_slow)
    return WSCHAT_ECLOSED;
  wschat__session_server(s)->stats[WSCHAT_STAT_MESSAGES_OUT]++;
  return session_queue_frame(s, opcode, data, len);
}

int wschat_session_send_text(wschat_session *s, const char *data, size_t len) {
  if (data != NULL && !wschat__utf8_valid((const uint8_t *)data, len))
    return WSCHAT_EBADUTF8;
  return session_send(s, WSCHAT__OP_TEXT, data, len);
}

int wschat_session_send_binary(wschat_session *s, const void *data,
                               size_t len) {
  return session_send(s, WSCHAT__OP_BINARY, data, len);
}

static int close_code_is_sendable(int code) {
  return code == 0 || (code >= 1000 && code <= 1003) ||
         (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

int wschat_session_close(wschat_session *s, int code, const char *reason) {
  size_t len = reason != NULL ? strlen(reason) : 0;
  if (s == NULL || !close_code_is_sendable(code) || len > 123 ||
      (code == 0 && len > 0))
    return WSCHAT_EINVAL;
  if (!wschat__utf8_valid((const uint8_t *)reason, len))
    return WSCHAT_EBADUTF8;
  if (s->state != WSCHAT__S_OPEN)
    return WSCHAT_ECLOSED;
  session_begin_close(s, code, reason, len);
  return 0;
}

int wschat_session_ping(wschat_session *s, const void *data, size_t len) {
  if (s == NULL || len > WSCHAT__MAX_CONTROL_PAYLOAD ||
      (data == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (s->state != WSCHAT__S_OPEN)
    return WSCHAT_ECLOSED;
  return session_queue_frame(s, WSCHAT__OP_PING, data, len);
}

void wschat_session_set_userdata(wschat_session *s, void *userdata) {
  s->userdata = userdata;
}

void *wschat_session_get_userdata(const wschat_session *s) {
  return s->userdata;
}

wschat_server *wschat_session_server(const wschat_session *s) {
  return wschat__session_server(s);
}

uint64_t wschat_session_id(const wschat_session *s) {
  return s->id;
}

const char *wschat_session_subprotocol(const wschat_session *s) {
  if (s->subprotocol == 0)
    return NULL;
  return wschat__session_server(s)->subprotocols[s->subprotocol - 1];
}

/* Known from the upgrade on: the server's path, or the session's
 * (shared) copy when the server takes every path. */
const char *wschat_session_path(const wschat_session *s) {
  if (!s->is_open_reported)
    return "";
  if (s->info != NULL)
    return s->info->path;
  return wschat__session_server(s)->path != NULL
             ? wschat__session_server(s)->path
             : "";
}

uint64_t wschat_session_queued(const wschat_session *s) {
  return session_queued_bytes(s);
}

int wschat_session_peer(const wschat_session *s, char *buf, size_t size) {
  struct sockaddr_storage ss;
  int namelen = sizeof(ss);
  char ip[64];
  int port;
  int rc;
  int n;

  if (buf == NULL)
    return WSCHAT_EINVAL;
  rc = uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &namelen);
  if (rc != 0)
    return rc;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
    n = snprintf(buf, size, "[%s]:%d", ip, port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof(ip));
    port = ntohs(a->sin_port);
    n = snprintf(buf, size, "%s:%d", ip, port);
  }
  if (n < 0 || (size_t)n >= size)
    return WSCHAT_EINVAL;
  return n;
}

/* ------------------------------------------------------------------------
 * Plain HTTP request accessors
 * ---------------------------------------------------------------------- */

const char *wschat_http_method(const wschat_http_request *req) {
  return wschat__handshake_method(req->session->hs);
}

const char *wschat_http_path(const wschat_http_request *req) {
  return wschat__handshake_path(req->session->hs);
}

const char *wschat_http_query(const wschat_http_request *req) {
  return wschat__handshake_query(req->session->hs);
}

const char *wschat_http_header(const wschat_http_request *req,
                               const char *name) {
  return wschat__handshake_header(req->session->hs, name);
}
