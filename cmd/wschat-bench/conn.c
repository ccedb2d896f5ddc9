/*
 * conn.c - one client connection's bytes: TCP connect (from a chosen
 * source address), the opening handshake, the stream cut into messages,
 * and batched writes.
 *
 * Reading: every connection reads into one loop-wide buffer, consumed
 * before the next read; only a partial frame's bytes are copied, into the
 * connection's own `in` buffer, and only as many as that frame needs, so
 * the frames behind it are parsed straight out of the read buffer.
 *
 * Writing: messages are encoded (and masked) straight into the
 * connection's output buffer; the prepare handle flushes every connection
 * that queued output at the end of the loop turn, and one uv_write() takes
 * what the socket did not. When two or more connections have output, their
 * sends go to the kernel together as io_uring requests (the library's own
 * ring code, as the server's flush uses it), one io_uring_enter(2) for up
 * to BATCH_MAX connections; otherwise, or without io_uring, each one is a
 * uv_try_write(). While a uv_write() is in flight, new messages go to the
 * second buffer. Buffers grow to the largest burst and are reused: nothing
 * is allocated per message.
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bench.h"
#include "wire.h"

#include "net/uring.h"
#include "proto/frame.h"
#include "proto/handshake.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define READ_BUF_SIZE (256 * 1024)
/* Larger server messages are taken for a broken stream. */
#define MAX_FRAME     (256u * 1024 * 1024)
#define MAX_HTTP_HEAD 16384
#define RAW_HEADER    4

static char read_buf[READ_BUF_SIZE];

uint64_t bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_log(bench *b, const char *fmt, ...) {
  va_list ap;
  if (b->log_budget == 0)
    return;
  fputs("wschat-bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (--b->log_budget == 0)
    fputs("wschat-bench: (further errors not shown)\n", stderr);
}

/* xorshift64*: masking keys and handshake keys. Unpredictable enough for
 * a load generator talking to its own server. */
static uint64_t bench_random(bench *b) {
  uint64_t x = b->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  b->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

int bench_buf_reserve(bench_buf *buf, size_t extra) {
  size_t need = buf->len + extra, cap;
  char *p;
  if (need <= buf->cap)
    return 0;
  cap = buf->cap != 0 ? buf->cap : 256;
  while (cap < need)
    cap *= 2;
  p = realloc(buf->data, cap);
  if (p == NULL)
    return UV_ENOMEM;
  buf->data = p;
  buf->cap = cap;
  return 0;
}

static int bench_buf_append(bench_buf *buf, const char *p, size_t n) {
  if (bench_buf_reserve(buf, n) != 0)
    return UV_ENOMEM;
  memcpy(buf->data + buf->len, p, n);
  buf->len += n;
  return 0;
}

void bench_buf_free(bench_buf *buf) {
  free(buf->data);
  buf->data = NULL;
  buf->len = buf->cap = 0;
}

static uv_stream_t *conn_stream(conn *c) {
  return (uv_stream_t *)&c->tcp;
}

static void conn_mark_dirty(conn *c) {
  if (!c->is_dirty) {
    c->is_dirty = 1;
    c->next_dirty = c->b->dirty;
    c->b->dirty = c;
  }
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------- */

static void on_close(uv_handle_t *handle) {
  conn *c = handle->data;
  c->is_handle_open = 0;
  c->state = CONN_IDLE;
  c->b->now = bench_now();
  run_on_closed(c);
}

void conn_close(conn *c) {
  if (!c->is_handle_open || c->state == CONN_DEAD)
    return;
  c->state = CONN_DEAD;
  c->deadline = 0;
  conn_recv_stop(c);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_fail(conn *c, const char *what, int err) {
  char msg[256];
  if (c->state == CONN_DEAD)
    return;
  if (err != 0)
    snprintf(msg, sizeof(msg), "%s: %s", what, uv_strerror(err));
  else
    snprintf(msg, sizeof(msg), "%s", what);
  run_on_failure(c, msg);
  conn_close(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(read_buf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Past the handshake, a connection reads through the ring if there is
 * one (libuv stops reading it first); otherwise libuv goes on. */
static int conn_reads_to_ring(conn *c) {
  if (c->b->recv == NULL)
    return 0;
  uv_read_stop(conn_stream(c));
  if (conn_recv_start(c) == 0)
    return 1;
  c->is_ring_reader = 0;
  return uv_read_start(conn_stream(c), on_alloc, on_read) == 0 ? 0 : -1;
}

static void send_upgrade(conn *c) {
  bench *b = c->b;
  uint8_t raw[16];
  uint64_t r1 = bench_random(b), r2 = bench_random(b);
  bench_buf *o = &c->out[c->out_cur];
  char port[8];
  int n;

  memcpy(raw, &r1, 8);
  memcpy(raw + 8, &r2, 8);
  bench_base64_16(raw, c->key);
  snprintf(port, sizeof(port), "%d", b->opt.port);
  if (bench_buf_reserve(o, 512 + strlen(b->opt.path) + strlen(b->opt.host)) !=
      0) {
    conn_fail(c, "out of memory", 0);
    return;
  }
  n = snprintf(o->data + o->len, o->cap - o->len,
               "GET %s HTTP/1.1\r\n"
               "Host: %s%s%s:%s\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "%s"
               "\r\n",
               b->opt.path, strchr(b->opt.host, ':') ? "[" : "", b->opt.host,
               strchr(b->opt.host, ':') ? "]" : "", port, c->key,
               b->opt.dialect == BENCH_DIALECT_JSON
                   ? "Sec-WebSocket-Protocol: " BENCH_JSON_SUBPROTOCOL "\r\n"
                   : "");
  o->len += (size_t)n;
  conn_mark_dirty(c);
  c->state = CONN_HANDSHAKE;
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  int rc;
  if (c->state == CONN_DEAD)
    return;
  c->b->now = bench_now();
  if (status < 0) {
    conn_fail(c, "connect", status);
    return;
  }
  rc = uv_read_start(conn_stream(c), on_alloc, on_read);
  if (rc < 0) {
    conn_fail(c, "read", rc);
    return;
  }
  if (c->b->opt.proto == BENCH_PROTO_WS) {
    send_upgrade(c);
    return;
  }
  if (conn_reads_to_ring(c) < 0) {
    conn_fail(c, "read", UV_EIO);
    return;
  }
  c->state = CONN_READY;
  run_on_open(c);
}

int conn_start(conn *c) {
  bench *b = c->b;
  int rc;

  c->state = CONN_CONNECTING;
  c->in.len = 0;
  c->frag.len = 0;
  c->frag_opcode = 0;
  c->out[0].len = c->out[1].len = 0;
  c->out_cur = 0;
  c->is_writing = 0;
  c->is_counted = 0;
  c->is_ring_reader = 0;
  c->deadline = b->now + 10 * 1000000000ULL;
  rc = uv_tcp_init_ex(b->loop, &c->tcp, b->addr.ss_family);
  if (rc < 0) {
    c->state = CONN_IDLE;
    run_on_failure(c, "socket: out of descriptors or memory");
    return rc;
  }
  c->tcp.data = c;
  c->connect_req.data = c;
  c->write_req.data = c;
  c->shutdown_req.data = c;
  c->is_handle_open = 1;
  if (b->opt.sources > 1) {
    struct sockaddr_in src;
    uv_os_fd_t fd;
    int one = 1;
    /* The port is picked at connect() time, per destination: each source
     * address then has the whole ephemeral range to itself. */
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001u + c->index % b->opt.sources);
    rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
    if (rc < 0) {
      conn_fail(c, "bind", rc);
      return rc;
    }
  }
  uv_tcp_nodelay(&c->tcp, 1);
  rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                      (const struct sockaddr *)&b->addr, on_connect);
  if (rc < 0) {
    conn_fail(c, "connect", rc);
    return rc;
  }
  return 0;
}

void conn_pause(conn *c) {
  if (c->is_ring_reader)
    conn_recv_stop(c);
  else
    uv_read_stop(conn_stream(c));
  c->state = CONN_PAUSED;
}

void conn_resume(conn *c) {
  int rc;
  c->state = CONN_SLOW_DRAIN;
  if (c->is_ring_reader)
    rc = conn_recv_start(c);
  else
    rc = uv_read_start(conn_stream(c), on_alloc, on_read);
  if (rc < 0)
    conn_fail(c, "read", rc);
}

/* ------------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  conn *c = req->data;
  c->is_writing = 0;
  c->out[c->out_cur ^ 1].len = 0;
  if (status == UV_ECANCELED || c->state == CONN_DEAD)
    return;
  if (status < 0) {
    conn_fail(c, "write", status);
    return;
  }
  if (c->out[c->out_cur].len > 0)
    conn_mark_dirty(c);
}

static int conn_can_flush(const conn *c) {
  return c->is_handle_open && c->state != CONN_DEAD &&
         c->state != CONN_CONNECTING && !c->is_writing &&
         c->out[c->out_cur].len > 0;
}

/* The socket took n bytes of the output buffer (n < 0: it failed with
 * that libuv error; UV_EAGAIN counts as 0): the rest goes to a uv_write()
 * that waits for room. */
static void conn_sent(conn *c, int n) {
  bench_buf *o = &c->out[c->out_cur];
  uv_buf_t buf;
  int rc;

  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n < 0) {
    conn_fail(c, "write", n);
    return;
  }
  if ((size_t)n == o->len) {
    o->len = 0;
    return;
  }
  buf = uv_buf_init(o->data + n, (unsigned)(o->len - (size_t)n));
  rc = uv_write(&c->write_req, conn_stream(c), &buf, 1, on_write);
  if (rc < 0) {
    conn_fail(c, "write", rc);
    return;
  }
  c->is_writing = 1;
  c->out_cur ^= 1;
}

static void conn_flush(conn *c) {
  bench_buf *o = &c->out[c->out_cur];
  uv_buf_t buf;

  if (!conn_can_flush(c))
    return;
  buf = uv_buf_init(o->data, (unsigned)o->len);
  conn_sent(c, uv_try_write(conn_stream(c), &buf, 1));
}

/* Connections whose sends go to the kernel in one io_uring_enter(2). */
#define BATCH_MAX 256

typedef struct bench_batch {
  wschat__uring ring;
  conn *conns[BATCH_MAX];
  int res[BATCH_MAX];
} bench_batch;

void conn_batch_init(bench *b) {
  bench_batch *bb;
  b->batch = NULL;
  if (!wschat__uring_wanted() || (bb = calloc(1, sizeof(*bb))) == NULL)
    return;
  if (wschat__uring_init(&bb->ring, BATCH_MAX) < 0) {
    free(bb);
    return;
  }
  b->batch = bb;
}

void conn_batch_free(bench *b) {
  if (b->batch == NULL)
    return;
  wschat__uring_free(&b->batch->ring);
  free(b->batch);
  b->batch = NULL;
}

static void batch_on_sent(void *arg, uint64_t i, int res) {
  bench_batch *bb = arg;
  bb->res[i] = res;
}

#define RES_PENDING INT_MIN

/* Send the output of up to BATCH_MAX dirty connections with one
 * io_uring_enter(2), then finish each with the socket's answer. A ring
 * that takes nothing (or loses track of what it took) is given up: the
 * connections it did not send for write the plain way, and the ones whose
 * fate is unknown fail, since their streams may have lost bytes. */
static void conn_flush_batch(bench *b) {
  bench_batch *bb = b->batch;
  unsigned n = 0, i;
  int rc;

  while (b->dirty != NULL && n < BATCH_MAX) {
    conn *c = b->dirty;
    uv_os_fd_t fd;
    b->dirty = c->next_dirty;
    c->is_dirty = 0;
    if (!conn_can_flush(c) || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
      continue;
    bb->conns[n] = c;
    bb->res[n] = RES_PENDING;
    wschat__uring_send(&bb->ring, fd, 0, c->out[c->out_cur].data,
                       c->out[c->out_cur].len, 0, n);
    n++;
  }
  rc = wschat__uring_submit(&bb->ring, batch_on_sent, bb);
  for (i = 0; i < n; i++) {
    conn *c = bb->conns[i];
    if (c->state == CONN_DEAD)
      continue;
    if (bb->res[i] != RES_PENDING)
      conn_sent(c, bb->res[i]);
    else if (rc < 0)
      conn_flush(c);
    else
      conn_fail(c, "write (io_uring)", UV_EIO);
  }
  if (rc != 0) {
    bench_log(b, "io_uring sends failed (%s); writing without it",
              rc < 0 ? strerror(-rc) : "completions lost");
    conn_batch_free(b);
  }
}

void conn_flush_all(bench *b) {
  conn *c;
  while ((c = b->dirty) != NULL) {
    if (b->batch != NULL && c->next_dirty != NULL) {
      conn_flush_batch(b);
      continue;
    }
    b->dirty = c->next_dirty;
    c->is_dirty = 0;
    conn_flush(c);
  }
}

/* Reserve a frame (or raw message) header and len payload bytes. */
static char *conn_frame_begin(conn *c, int opcode, size_t len) {
  bench_buf *o = &c->out[c->out_cur];
  uint8_t *h;
  size_t hl;

  if (bench_buf_reserve(o, WSCHAT__MAX_FRAME_HEADER + len) != 0) {
    conn_fail(c, "out of memory", 0);
    return NULL;
  }
  h = (uint8_t *)o->data + o->len;
  if (c->b->opt.proto == BENCH_PROTO_RAW) {
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    hl = RAW_HEADER;
  } else {
    uint32_t key = (uint32_t)bench_random(c->b);
    uint8_t mask[4];
    memcpy(mask, &key, 4);
    hl = wschat__frame_encode_header(h, 1, 0, opcode, len, mask);
  }
  o->len += hl + len;
  conn_mark_dirty(c);
  return (char *)h + hl;
}

/* A masked frame's key is the last 4 bytes of its header, right before
 * the payload. */
static void conn_frame_end(conn *c, char *payload, size_t len) {
  if (c->b->opt.proto == BENCH_PROTO_WS)
    wschat__mask((uint8_t *)payload, len, (const uint8_t *)payload - 4, 0);
}

char *conn_msg_begin(conn *c, size_t len) {
  return conn_frame_begin(c, WSCHAT__OP_TEXT, len);
}

void conn_msg_end(conn *c, char *payload, size_t len) {
  conn_frame_end(c, payload, len);
}

static void conn_send_control(conn *c, int opcode, const void *data,
                              size_t len) {
  char *p = conn_frame_begin(c, opcode, len);
  if (p == NULL)
    return;
  memcpy(p, data, len);
  conn_frame_end(c, p, len);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn *c = req->data;
  if (status < 0 && status != UV_ECANCELED && c->state != CONN_DEAD)
    conn_fail(c, "shutdown", status);
}

void conn_send_close(conn *c, int code) {
  if (c->b->opt.proto == BENCH_PROTO_RAW) {
    int rc;
    /* Whatever is queued goes first: uv_shutdown() waits for writes in
     * flight, so flush now. */
    conn_flush(c);
    rc = uv_shutdown(&c->shutdown_req, conn_stream(c), on_shutdown);
    if (rc < 0)
      conn_fail(c, "shutdown", rc);
    return;
  }
  uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  conn_send_control(c, WSCHAT__OP_CLOSE, payload, 2);
}

/* ------------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------- */

/* The header of the frame (or raw message) at p[0..n): 1 with *hl and *h
 * set, 0 when more bytes are needed, -1 when the connection failed. */
static int frame_header(conn *c, const char *p, size_t n, size_t *hl,
                        wschat__frame_header *h) {
  if (c->b->opt.proto == BENCH_PROTO_RAW) {
    const uint8_t *u = (const uint8_t *)p;
    if (n < RAW_HEADER)
      return 0;
    h->fin = 1;
    h->opcode = WSCHAT__OP_TEXT;
    h->len = (uint64_t)u[0] << 24 | (uint64_t)u[1] << 16 | (uint64_t)u[2] << 8 |
             u[3];
    *hl = RAW_HEADER;
  } else {
    int rc = wschat__frame_decode_header((const uint8_t *)p, n,
                                         WSCHAT__FRAME_REQUIRE_UNMASKED, 0, h);
    if (rc < 0) {
      conn_fail(c, "invalid frame from the server", rc);
      return -1;
    }
    if (rc == 0)
      return 0;
    *hl = (size_t)rc;
  }
  if (h->len > MAX_FRAME) {
    conn_fail(c, "message from the server over 256 MiB", 0);
    return -1;
  }
  return 1;
}

static void on_frame(conn *c, const wschat__frame_header *h,
                     const char *payload) {
  size_t len = (size_t)h->len;

  switch (h->opcode) {
  case WSCHAT__OP_TEXT:
  case WSCHAT__OP_BINARY:
    if (c->frag_opcode != 0) {
      conn_fail(c, "new message inside a fragmented one", 0);
      return;
    }
    if (h->fin) {
      run_on_message(c, payload, len);
      return;
    }
    c->frag_opcode = h->opcode;
    c->frag.len = 0;
    /* fall through */
  case WSCHAT__OP_CONT:
    if (c->frag_opcode == 0) {
      conn_fail(c, "continuation frame without a message", 0);
      return;
    }
    if (bench_buf_append(&c->frag, payload, len) != 0) {
      conn_fail(c, "out of memory", 0);
      return;
    }
    if (h->fin) {
      c->frag_opcode = 0;
      run_on_message(c, c->frag.data, c->frag.len);
    }
    return;
  case WSCHAT__OP_PING:
    conn_send_control(c, WSCHAT__OP_PONG, payload, len);
    return;
  case WSCHAT__OP_PONG:
    return;
  case WSCHAT__OP_CLOSE: {
    int code =
        len >= 2 ? ((uint8_t)payload[0] << 8 | (uint8_t)payload[1]) : 1005;
    run_on_server_close(c, code, len > 2 ? payload + 2 : "",
                        len > 2 ? len - 2 : 0);
    return;
  }
  default:
    conn_fail(c, "unknown opcode", 0);
  }
}

static int conn_is_gone(const conn *c) {
  return c->state == CONN_DEAD || c->state == CONN_IDLE;
}

/*
 * Cut p[0..n) into frames. A frame begun in an earlier read is completed
 * first, from as few of these bytes as it needs (at most a header's worth
 * more while its header is incomplete); the frames after it are handled
 * in place, and only a trailing partial frame is copied.
 */
static void conn_read_frames(conn *c, const char *p, size_t n) {
  wschat__frame_header h;
  size_t hl, off = 0;
  int rc;

  while (c->in.len > off) {
    size_t avail = c->in.len - off, want, take;
    rc = frame_header(c, c->in.data + off, avail, &hl, &h);
    if (rc < 0)
      return;
    want = rc == 0 ? WSCHAT__MAX_FRAME_HEADER : hl + (size_t)h.len;
    if (rc == 0 || avail < want) {
      take = want - avail < n ? want - avail : n;
      if (take == 0) {
        memmove(c->in.data, c->in.data + off, avail);
        c->in.len = avail;
        return;
      }
      if (bench_buf_append(&c->in, p, take) != 0) {
        conn_fail(c, "out of memory", 0);
        return;
      }
      p += take;
      n -= take;
      continue;
    }
    on_frame(c, &h, c->in.data + off + hl);
    if (conn_is_gone(c))
      return;
    off += want;
  }
  c->in.len = 0;

  while (n > 0) {
    rc = frame_header(c, p, n, &hl, &h);
    if (rc < 0)
      return;
    if (rc == 0 || n - hl < h.len) {
      if (bench_buf_append(&c->in, p, n) != 0)
        conn_fail(c, "out of memory", 0);
      return;
    }
    on_frame(c, &h, p + hl);
    if (conn_is_gone(c))
      return;
    p += hl + (size_t)h.len;
    n -= hl + (size_t)h.len;
  }
}

static void conn_read_handshake(conn *c, const char *p, size_t n) {
  bench *b = c->b;
  char accept[29], msg[160];
  const char *why;
  size_t end, rest;

  if (bench_buf_append(&c->in, p, n) != 0) {
    conn_fail(c, "out of memory", 0);
    return;
  }
  end = bench_http_head_end(c->in.data, c->in.len);
  if (end == 0) {
    if (c->in.len > MAX_HTTP_HEAD)
      conn_fail(c, "handshake: reply head over 16 KiB", 0);
    return;
  }
  if (wschat__accept_key(c->key, strlen(c->key), accept) != 0 ||
      bench_check_101(
          c->in.data, end, accept,
          b->opt.dialect == BENCH_DIALECT_JSON ? BENCH_JSON_SUBPROTOCOL : NULL,
          &why) != 0) {
    size_t ll = strcspn(c->in.data, "\r\n");
    if (ll > 80)
      ll = 80;
    snprintf(msg, sizeof(msg), "handshake: %s (\"%.*s\")", why, (int)ll,
             c->in.data);
    conn_fail(c, msg, 0);
    return;
  }
  rest = c->in.len - end;
  memmove(c->in.data, c->in.data + end, rest);
  c->in.len = rest;
  if (conn_reads_to_ring(c) < 0) {
    conn_fail(c, "read", UV_EIO);
    return;
  }
  c->state = CONN_READY;
  run_on_open(c);
  if (!conn_is_gone(c) && c->in.len > 0)
    conn_read_frames(c, NULL, 0);
}

void conn_on_bytes(conn *c, const char *p, ssize_t n) {
  if (n == 0 || conn_is_gone(c))
    return;
  c->b->now = bench_now();
  if (n < 0) {
    run_on_eof(c, (int)n);
    return;
  }
  if (c->state == CONN_HANDSHAKE)
    conn_read_handshake(c, p, (size_t)n);
  else
    conn_read_frames(c, p, (size_t)n);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_on_bytes(stream->data, buf->base, nread);
}
