/*
 * ref_tcp.c - the ceiling reference of `make bench`: a plain TCP echo and
 * fan-out server on libuv with no WebSocket framing at all.
 *
 *   ref_tcp --mode echo|broadcast --port N [--host 127.0.0.1]
 *
 * A message is a 4-byte big-endian length followed by that many bytes.
 * In echo mode every message goes back to its sender; in broadcast mode
 * every message goes to every connected client, the sender included.
 *
 * It does what the libwschat data path does, minus the protocol, so that
 * the difference between the two is the cost of WebSocket and of the
 * library, not of a naive reference:
 *   - one loop-wide read buffer; a client keeps only the leftover of a
 *     partial message;
 *   - the complete messages of a read are copied once into a shared,
 *     refcounted chunk; each recipient gets a (chunk, offset, length)
 *     segment, and consecutive segments of one chunk merge, so no
 *     per-message or per-recipient allocation;
 *   - everything produced for a client during one loop turn leaves in one
 *     vectored write at the end of the turn (uv_check): uv_try_write
 *     first, uv_write for the rest.
 * Prints "ref_tcp: listening on HOST:PORT" when ready; exits 0 on SIGINT
 * or SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_BUFFER_SIZE (256 * 1024)
#define CHUNK_SIZE       (256 * 1024)
#define MAX_MESSAGE      (16 * 1024 * 1024)
/* A client with this much output queued in the kernel's stead is not
 * reading; it is closed rather than allowed to grow without bound. */
#define MAX_QUEUED ((size_t)256 * 1024 * 1024)
#define MAX_IOV    1024

/* Shared output memory: many segments, in many clients' queues, point
 * into one chunk; the last one released frees it. */
typedef struct chunk {
  unsigned refs;
  size_t size;
  size_t used;
  char data[];
} chunk;

typedef struct segment {
  chunk *chunk;
  size_t offset;
  size_t len;
} segment;

typedef struct segment_list {
  segment *items;
  size_t count;
  size_t cap;
} segment_list;

typedef struct client {
  uv_tcp_t tcp;
  struct client *prev, *next; /* all clients */
  struct client *dirty_next;  /* clients with output this turn */
  int is_dirty;
  int is_closing;
  segment_list out; /* produced this turn */
  char *partial;    /* leftover of a partial message */
  size_t partial_len, partial_cap;
} client;

typedef struct write_req {
  uv_write_t req;
  size_t count;
  segment segs[];
} write_req;

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_check_t flusher;
static uv_signal_t signals[2];
static int is_broadcast;
static client clients = {.prev = &clients, .next = &clients};
static client *dirty_head;
static char read_buffer[READ_BUFFER_SIZE];
static int is_read_buffer_lent;
static chunk *current_chunk;

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fputs("ref_tcp: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (p == NULL) {
    fputs("ref_tcp: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

/* Released standard-size chunks wait here for reuse: a fresh 256 KiB
 * malloc is an mmap whose pages all fault in again, which at GB/s costs
 * more than the copy itself. */
static chunk *chunk_pool[64];
static unsigned chunk_pool_count;

static void chunk_release(chunk *c) {
  if (--c->refs > 0)
    return;
  if (c->size == CHUNK_SIZE &&
      chunk_pool_count < sizeof(chunk_pool) / sizeof(chunk_pool[0]))
    chunk_pool[chunk_pool_count++] = c;
  else
    free(c);
}

/* Copy len bytes into the current chunk (a new one when it is full) and
 * return it, with the bytes at c->used - len. The arena itself holds one
 * reference on the current chunk. */
static chunk *arena_append(const char *data, size_t len) {
  chunk *c = current_chunk;
  if (c == NULL || c->size - c->used < len) {
    if (c != NULL)
      chunk_release(c);
    if (len <= CHUNK_SIZE && chunk_pool_count > 0) {
      c = chunk_pool[--chunk_pool_count];
    } else {
      size_t size = len > CHUNK_SIZE ? len : CHUNK_SIZE;
      c = xmalloc(sizeof(*c) + size);
      c->size = size;
    }
    c->refs = 1;
    c->used = 0;
    current_chunk = c;
  }
  memcpy(c->data + c->used, data, len);
  c->used += len;
  return c;
}

static void segments_release(segment *segs, size_t count) {
  for (size_t i = 0; i < count; i++)
    chunk_release(segs[i].chunk);
}

/* Queue bytes [offset, offset + len) of c for cl, merging with the last
 * segment when it ends where this one starts. */
static void client_queue(client *cl, chunk *c, size_t offset, size_t len) {
  segment_list *out = &cl->out;
  if (out->count > 0) {
    segment *last = &out->items[out->count - 1];
    if (last->chunk == c && last->offset + last->len == offset) {
      last->len += len;
      goto mark;
    }
  }
  if (out->count == out->cap) {
    out->cap = out->cap ? 2 * out->cap : 4;
    out->items = xrealloc(out->items, out->cap * sizeof(*out->items));
  }
  c->refs++;
  out->items[out->count++] = (segment){c, offset, len};
mark:
  if (!cl->is_dirty) {
    cl->is_dirty = 1;
    cl->dirty_next = dirty_head;
    dirty_head = cl;
  }
}

static void on_close(uv_handle_t *handle) {
  client *cl = handle->data;
  free(cl->out.items);
  free(cl->partial);
  free(cl);
}

static void client_close(client *cl) {
  if (cl->is_closing)
    return;
  cl->is_closing = 1;
  cl->prev->next = cl->next;
  cl->next->prev = cl->prev;
  segments_release(cl->out.items, cl->out.count);
  cl->out.count = 0;
  /* A dirty client stays on the dirty list until the flush pops it; the
   * handle's memory lives until on_close, which runs after that. */
  uv_close((uv_handle_t *)&cl->tcp, on_close);
}

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  segments_release(w->segs, w->count);
  if (status < 0 && status != UV_ECANCELED)
    client_close(req->handle->data);
  free(w);
}

/* Send what the client got this turn: as much as the socket takes now,
 * the rest through one uv_write that holds its segments. */
static void client_flush(client *cl) {
  segment_list *out = &cl->out;
  uv_buf_t stack_bufs[64];
  uv_buf_t *bufs = stack_bufs;
  size_t i, n = out->count, done = 0;
  int rc;

  if (n > 64)
    bufs = xmalloc(n * sizeof(*bufs));
  for (i = 0; i < n; i++)
    bufs[i] = uv_buf_init(out->items[i].chunk->data + out->items[i].offset,
                          (unsigned)out->items[i].len);
  if (cl->tcp.write_queue_size == 0) {
    /* uv_try_write takes at most IOV_MAX buffers at a time. */
    while (done < n) {
      size_t batch = n - done > MAX_IOV ? MAX_IOV : n - done;
      rc = uv_try_write((uv_stream_t *)&cl->tcp, bufs + done, batch);
      if (rc == UV_EAGAIN)
        break;
      if (rc < 0) {
        segments_release(out->items + done, n - done);
        out->count = 0;
        if (bufs != stack_bufs)
          free(bufs);
        client_close(cl);
        return;
      }
      size_t written = (size_t)rc;
      while (done < n && written >= bufs[done].len) {
        written -= bufs[done].len;
        chunk_release(out->items[done].chunk);
        done++;
      }
      if (done < n && written > 0) {
        bufs[done].base += written;
        bufs[done].len -= written;
        out->items[done].offset += written;
        out->items[done].len -= written;
        break; /* the socket is full */
      }
    }
  }
  if (done < n) {
    size_t rest = n - done;
    write_req *w = xmalloc(sizeof(*w) + rest * sizeof(segment));
    w->count = rest;
    memcpy(w->segs, out->items + done, rest * sizeof(segment));
    rc = uv_write(&w->req, (uv_stream_t *)&cl->tcp, bufs + done, (unsigned)rest,
                  on_write);
    if (rc < 0) {
      segments_release(w->segs, w->count);
      free(w);
      out->count = 0;
      client_close(cl);
    } else if (cl->tcp.write_queue_size > MAX_QUEUED) {
      out->count = 0;
      client_close(cl);
    }
  }
  out->count = 0;
  if (bufs != stack_bufs)
    free(bufs);
}

static void on_check(uv_check_t *handle) {
  (void)handle;
  while (dirty_head != NULL) {
    client *cl = dirty_head;
    dirty_head = cl->dirty_next;
    cl->is_dirty = 0;
    if (!cl->is_closing)
      client_flush(cl);
  }
}

/* The complete messages in data[0, len) are copied once and queued to
 * their recipients; returns how many bytes they took (the rest is a
 * partial message), or -1 for a message over MAX_MESSAGE. */
static long client_consume(client *cl, const char *data, size_t len) {
  size_t pos = 0;
  while (len - pos >= 4) {
    const unsigned char *p = (const unsigned char *)data + pos;
    uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                 (uint32_t)p[2] << 8 | p[3];
    if (n > MAX_MESSAGE)
      return -1;
    if (len - pos - 4 < n)
      break;
    pos += 4 + (size_t)n;
  }
  if (pos == 0)
    return 0;
  chunk *c = arena_append(data, pos);
  size_t offset = c->used - pos;
  if (is_broadcast) {
    for (client *r = clients.next; r != &clients; r = r->next)
      client_queue(r, c, offset, pos);
  } else {
    client_queue(cl, c, offset, pos);
  }
  return (long)pos;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  /* libuv reads one stream at a time, so one buffer serves them all; the
   * flag only guards against that ever changing. */
  if (is_read_buffer_lent) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  is_read_buffer_lent = 1;
  *buf = uv_buf_init(read_buffer, sizeof(read_buffer));
}

static void partial_append(client *cl, const char *data, size_t len) {
  if (cl->partial_len + len > cl->partial_cap) {
    size_t cap = cl->partial_cap ? cl->partial_cap : 4096;
    while (cap < cl->partial_len + len)
      cap *= 2;
    cl->partial = xrealloc(cl->partial, cap);
    cl->partial_cap = cap;
  }
  memcpy(cl->partial + cl->partial_len, data, len);
  cl->partial_len += len;
}

/* The length the pending message will have once whole: its header's
 * 4 bytes while they are incomplete, header and payload after. */
static size_t partial_want(const client *cl) {
  const unsigned char *p = (const unsigned char *)cl->partial;
  if (cl->partial_len < 4)
    return 4;
  return 4 +
         ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  client *cl = stream->data;
  long used;

  if (buf->base == read_buffer)
    is_read_buffer_lent = 0;
  if (nread < 0) {
    client_close(cl);
    return;
  }
  if (nread == 0)
    return;
  const char *data = buf->base;
  size_t len = (size_t)nread;
  if (cl->partial_len > 0) {
    /* Complete the pending message with only the bytes it lacks; the rest
     * of the read is consumed in place below. */
    for (;;) {
      size_t want = partial_want(cl);
      if (want > 4 + (size_t)MAX_MESSAGE)
        goto too_big;
      size_t take = want - cl->partial_len < len ? want - cl->partial_len : len;
      partial_append(cl, data, take);
      data += take;
      len -= take;
      if (cl->partial_len < want)
        return; /* the read ran out first */
      if (partial_want(cl) == cl->partial_len)
        break; /* whole message */
      /* The header just completed; now the payload's length is known. */
    }
    used = client_consume(cl, cl->partial, cl->partial_len);
    if (used < 0)
      goto too_big;
    cl->partial_len = 0;
  }
  used = client_consume(cl, data, len);
  if (used < 0)
    goto too_big;
  if (len > (size_t)used)
    partial_append(cl, data + used, len - (size_t)used);
  /* A partial message of a few bytes should not pin a large buffer. */
  if (cl->partial_len == 0 && cl->partial_cap > 65536) {
    free(cl->partial);
    cl->partial = NULL;
    cl->partial_cap = 0;
  }
  return;
too_big:
  fprintf(stderr, "ref_tcp: message over %d bytes, closing\n", MAX_MESSAGE);
  client_close(cl);
}

static void on_connection(uv_stream_t *server, int status) {
  client *cl;
  if (status < 0)
    return;
  cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return;
  uv_tcp_init(loop, &cl->tcp);
  cl->tcp.data = cl;
  if (uv_accept(server, (uv_stream_t *)&cl->tcp) < 0) {
    uv_close((uv_handle_t *)&cl->tcp, on_close);
    return;
  }
  uv_tcp_nodelay(&cl->tcp, 1);
  cl->next = &clients;
  cl->prev = clients.prev;
  clients.prev->next = cl;
  clients.prev = cl;
  if (uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) < 0)
    client_close(cl);
}

static void on_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  exit(0);
}

static void usage(FILE *out) {
  fputs("usage: ref_tcp --mode echo|broadcast --port N [--host ADDR]\n", out);
}

int main(int argc, char **argv) {
  static const struct option options[] = {
      {"mode", required_argument, NULL, 'm'},
      {"port", required_argument, NULL, 'p'},
      {"host", required_argument, NULL, 'H'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *host = "127.0.0.1";
  const char *mode = NULL;
  int port = -1;
  int opt, rc;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int bound_len = sizeof(bound);

  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 'm':
      mode = optarg;
      break;
    case 'p':
      port = atoi(optarg);
      break;
    case 'H':
      host = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (mode == NULL || port < 0 || port > 65535 || optind != argc ||
      (strcmp(mode, "echo") != 0 && strcmp(mode, "broadcast") != 0)) {
    usage(stderr);
    return 2;
  }
  is_broadcast = strcmp(mode, "broadcast") == 0;
  signal(SIGPIPE, SIG_IGN);

  loop = uv_default_loop();
  if ((rc = uv_ip4_addr(host, port, &addr)) < 0) {
    fprintf(stderr, "ref_tcp: %s: %s\n", host, uv_strerror(rc));
    return 2;
  }
  uv_tcp_init(loop, &listener);
  if ((rc = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&listener, 4096, on_connection)) < 0) {
    fprintf(stderr, "ref_tcp: listen: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &bound_len);
  uv_check_init(loop, &flusher);
  uv_check_start(&flusher, on_check);
  uv_signal_init(loop, &signals[0]);
  uv_signal_start(&signals[0], on_signal, SIGINT);
  uv_signal_init(loop, &signals[1]);
  uv_signal_start(&signals[1], on_signal, SIGTERM);

  printf("ref_tcp: listening on %s:%d\n", host,
         ntohs(((struct sockaddr_in *)&bound)->sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
