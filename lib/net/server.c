/*
 * server.c - listening, accepting, the connection limit, the per-server
 * timer sweep, the end-of-turn write flush, options and shutdown.
 *
 * Handles owned by a listening server: the listener, one sweep timer (all
 * sessions' deadlines, instead of a timer per session), one check handle
 * that flushes every session that queued output during the loop turn, an
 * idle handle that keeps the loop from blocking in poll while output is
 * pending, and an async handle that lets any thread stop the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/alloc.h"
#include "net/net.h"

enum { RUN_NONE = 0, RUN_LISTENING = 1, RUN_STOP_REQUESTED = 2 };

static const int default_close_codes[WSCHAT_CLOSE_ON_COUNT_] = {
    [WSCHAT_CLOSE_ON_PROTOCOL_ERROR] = WSCHAT_CLOSE_PROTOCOL_ERROR,
    [WSCHAT_CLOSE_ON_BAD_UTF8] = WSCHAT_CLOSE_INVALID_DATA,
    [WSCHAT_CLOSE_ON_TOO_BIG] = WSCHAT_CLOSE_TOO_BIG,
    [WSCHAT_CLOSE_ON_SLOW_CONSUMER] = WSCHAT_CLOSE_POLICY,
    [WSCHAT_CLOSE_ON_IDLE] = WSCHAT_CLOSE_GOING_AWAY,
    [WSCHAT_CLOSE_ON_SHUTDOWN] = WSCHAT_CLOSE_GOING_AWAY,
    [WSCHAT_CLOSE_ON_INTERNAL] = WSCHAT_CLOSE_INTERNAL,
};

wschat_server *wschat_server_new(uv_loop_t *loop) {
  struct sigaction sa;
  wschat_server *srv;

  /* A write to a connection the peer has reset raises SIGPIPE, whose
   * default action kills the process; libuv writes with write(2), so
   * MSG_NOSIGNAL is not an option. An application's own handler is left
   * alone. */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
  srv = wschat__calloc(1, sizeof(*srv));
  if (srv == NULL)
    return NULL;
  srv->loop = loop;
  srv->max_message = 64 * 1024;
  srv->max_header = 8 * 1024;
  srv->max_header_count = 64;
  srv->max_connections = 10000;
  srv->max_queued = 1024 * 1024;
  srv->handshake_timeout = 10000;
  srv->close_timeout = 5000;
  srv->uring.fd = -1;
  memcpy(srv->close_codes, default_close_codes, sizeof(srv->close_codes));
  wschat__link_init(&srv->sessions);
  wschat__slab_init(&srv->session_slab, sizeof(wschat_session),
                    _Alignof(wschat_session));
  wschat__iplimit_init(&srv->iplimit);
  wschat__chat_server_init(srv);
  atomic_init(&srv->is_stop_requested, RUN_NONE);
  return srv;
}

static void server_free_options(wschat_server *srv) {
  size_t i;
  wschat__free(srv->path);
  srv->path = NULL;
  for (i = 0; i < srv->n_subprotocols; i++)
    wschat__free(srv->subprotocols[i]);
  wschat__free(srv->subprotocols);
  srv->subprotocols = NULL;
  srv->n_subprotocols = 0;
}

int wschat_server_free(wschat_server *srv) {
  if (srv == NULL)
    return 0;
  /* A failed listen leaves a closing handle that only a loop turn
   * finishes; on our own loop we can take that turn here. */
  if (srv->own_loop != NULL && srv->handles_open > 0 && !srv->is_listening &&
      srv->nsessions == 0)
    uv_run(srv->own_loop, UV_RUN_DEFAULT);
  if (srv->handles_open > 0 || srv->nsessions > 0)
    return WSCHAT_EBUSY;
  if (srv->chat_free != NULL)
    srv->chat_free(srv->chat);
  wschat__chat_server_free(srv);
  if (srv->chunk != NULL)
    wschat__wbuf_unref(srv->chunk);
  while (srv->npool > 0)
    wschat__wbuf_unref(srv->pool[--srv->npool]);
  while (srv->nqueue_pool > 0)
    wschat__free(srv->queue_pool[--srv->nqueue_pool]);
  while (srv->nhs_pool > 0)
    wschat__handshake_free(srv->hs_pool[--srv->nhs_pool]);
  while (srv->nreader_pool > 0)
    wschat__free(srv->reader_pool[--srv->nreader_pool]);
  while (srv->wreq_free != NULL) {
    wschat__wreq *w = srv->wreq_free;
    srv->wreq_free = w->next_free;
    wschat__free(w);
  }
  wschat__free(srv->read_buf);
  wschat__uring_free(&srv->uring);
  wschat__free(srv->batch);
  wschat__server_path_release(srv->last_path);
  wschat__slab_destroy(&srv->session_slab);
  wschat__iplimit_free(&srv->iplimit);
  server_free_options(srv);
  if (srv->own_loop != NULL) {
    uv_loop_close(srv->own_loop);
    wschat__free(srv->own_loop);
  }
  wschat__free(srv);
  return 0;
}

void wschat_server_set_userdata(wschat_server *srv, void *userdata) {
  srv->userdata = userdata;
}
void *wschat_server_get_userdata(const wschat_server *srv) {
  return srv->userdata;
}
void wschat_server_on_open(wschat_server *srv, wschat_open_cb cb) {
  srv->on_open = cb;
}
void wschat_server_on_message(wschat_server *srv, wschat_message_cb cb) {
  srv->on_message = cb;
}
void wschat_server_on_close(wschat_server *srv, wschat_close_cb cb) {
  srv->on_close = cb;
}
void wschat_server_on_pong(wschat_server *srv, wschat_pong_cb cb) {
  srv->on_pong = cb;
}
void wschat_server_on_origin(wschat_server *srv, wschat_origin_cb cb) {
  srv->on_origin = cb;
}
void wschat_server_on_http(wschat_server *srv, wschat_http_cb cb) {
  srv->on_http = cb;
}
void wschat_server_on_accept_error(wschat_server *srv,
                                   wschat_accept_error_cb cb) {
  srv->on_accept_error = cb;
}

/* The sweep runs often enough to honour the shortest configured timeout
 * to within about a quarter of it, and at least once a second. */
static uint64_t server_sweep_period(const wschat_server *srv) {
  unsigned t[4] = {srv->handshake_timeout, srv->close_timeout,
                   srv->idle_timeout, srv->ping_interval};
  uint64_t min = 4000;
  unsigned i;
  for (i = 0; i < 4; i++)
    if (t[i] != 0 && t[i] < min)
      min = t[i];
  min /= 4;
  return min < 10 ? 10 : min;
}

static void server_update_sweep(wschat_server *srv) {
  if (srv->is_listening && !srv->is_stopping)
    uv_timer_set_repeat(&srv->sweep, server_sweep_period(srv));
}

static int in_range(uint64_t value, uint64_t lo, uint64_t hi) {
  return value >= lo && value <= hi;
}

#define SETTER_RANGE(fn, field, type, lo, hi)                                  \
  int fn(wschat_server *srv, type value) {                                     \
    if (srv == NULL || !in_range(value, (lo), (hi)))                           \
      return WSCHAT_EINVAL;                                                    \
    srv->field = value;                                                        \
    server_update_sweep(srv);                                                  \
    return 0;                                                                  \
  }

SETTER_RANGE(wschat_server_set_max_message, max_message, uint64_t, 1,
             (uint64_t)1 << 63)
SETTER_RANGE(wschat_server_set_max_header, max_header, size_t, 256, 32768)
SETTER_RANGE(wschat_server_set_max_header_count, max_header_count, unsigned, 1,
             1024)
SETTER_RANGE(wschat_server_set_max_connections, max_connections, unsigned, 1,
             10000000)
SETTER_RANGE(wschat_server_set_max_per_ip, max_per_ip, unsigned, 0, 10000000)
SETTER_RANGE(wschat_server_set_max_queued, max_queued, uint64_t, 1024,
             (uint64_t)1 << 62)
SETTER_RANGE(wschat_server_set_handshake_timeout, handshake_timeout, unsigned,
             1, 3600000)
SETTER_RANGE(wschat_server_set_close_timeout, close_timeout, unsigned, 1,
             3600000)
SETTER_RANGE(wschat_server_set_idle_timeout, idle_timeout, unsigned, 0,
             86400000)
SETTER_RANGE(wschat_server_set_ping_interval, ping_interval, unsigned, 0,
             86400000)

uint64_t wschat_server_get_max_queued(const wschat_server *srv) {
  return srv->max_queued;
}

int wschat_server_set_path(wschat_server *srv, const char *path) {
  char *copy = NULL;
  if (srv == NULL || (path != NULL && path[0] != '/'))
    return WSCHAT_EINVAL;
  /* Handshakes in progress point at the current strings. */
  if (srv->is_listening)
    return WSCHAT_EBUSY;
  if (path != NULL && (copy = wschat__strdup(path)) == NULL)
    return WSCHAT_ENOMEM;
  wschat__free(srv->path);
  srv->path = copy;
  return 0;
}

/* RFC 7230 token characters. */
static int is_token(const char *s) {
  static const char separators[] = "()<>@,;:\\\"/[]?={} \t";
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 ||
        strchr(separators, *s) != NULL)
      return 0;
  return 1;
}

int wschat_server_set_subprotocols(wschat_server *srv, const char *const *names,
                                   size_t count) {
  char **list = NULL;
  size_t i;
  if (srv == NULL || (names == NULL && count > 0))
    return WSCHAT_EINVAL;
  if (srv->is_listening)
    return WSCHAT_EBUSY;
  for (i = 0; i < count; i++)
    if (names[i] == NULL || !is_token(names[i]))
      return WSCHAT_EINVAL;
  if (count > 0) {
    /* NULL-terminated, so the handshake can also walk it that way. */
    list = wschat__calloc(count + 1, sizeof(*list));
    if (list == NULL)
      return WSCHAT_ENOMEM;
    for (i = 0; i < count; i++) {
      if ((list[i] = wschat__strdup(names[i])) == NULL) {
        while (i > 0)
          wschat__free(list[--i]);
        wschat__free(list);
        return WSCHAT_ENOMEM;
      }
    }
  }
  for (i = 0; i < srv->n_subprotocols; i++)
    wschat__free(srv->subprotocols[i]);
  wschat__free(srv->subprotocols);
  srv->subprotocols = list;
  srv->n_subprotocols = count;
  return 0;
}

int wschat_server_set_close_code(wschat_server *srv, wschat_close_reason reason,
                                 int code) {
  int ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
  if (srv == NULL || (unsigned)reason >= WSCHAT_CLOSE_ON_COUNT_ || !ok)
    return WSCHAT_EINVAL;
  srv->close_codes[reason] = code;
  return 0;
}

uv_loop_t *wschat_server_loop(wschat_server *srv) {
  if (srv->loop == NULL) {
    uv_loop_t *loop = wschat__malloc(sizeof(*loop));
    if (loop == NULL)
      return NULL;
    if (uv_loop_init(loop) != 0) {
      wschat__free(loop);
      return NULL;
    }
    srv->loop = srv->own_loop = loop;
  }
  return srv->loop;
}

/* ------------------------------------------------------------------------
 * Pool of write requests
 * ---------------------------------------------------------------------- */

wschat__wreq *wschat__server_wreq_get(wschat_server *srv) {
  wschat__wreq *w = srv->wreq_free;
  if (w != NULL) {
    srv->wreq_free = w->next_free;
    srv->nwreq_free--;
    return w;
  }
  return wschat__malloc(sizeof(*w));
}

void wschat__server_wreq_put(wschat_server *srv, wschat__wreq *w) {
  if (srv->nwreq_free >= WSCHAT__WREQ_POOL_MAX) {
    wschat__free(w);
    return;
  }
  w->next_free = srv->wreq_free;
  srv->wreq_free = w;
  srv->nwreq_free++;
}

/* ------------------------------------------------------------------------
 * Pool of coalescing chunks
 * ---------------------------------------------------------------------- */

wschat__wbuf *wschat__server_chunk_get(wschat_server *srv) {
  wschat__wbuf *wb;
  if (srv->npool > 0) {
    wb = srv->pool[--srv->npool];
    if (srv->npool < srv->npool_min)
      srv->npool_min = srv->npool;
    return wb;
  }
  wb = wschat__wbuf_new(WSCHAT__CHUNK_SIZE);
  if (wb != NULL)
    wb->kind = WSCHAT__WBUF_CHUNK;
  return wb;
}

/* Takes the last reference to a chunk. */
void wschat__server_chunk_put(wschat_server *srv, wschat__wbuf *wb) {
  if (srv->npool < WSCHAT__CHUNK_POOL_MAX) {
    wb->len = 0;
    srv->pool[srv->npool++] = wb;
  } else {
    wschat__wbuf_unref(wb);
  }
}

/* ------------------------------------------------------------------------
 * Pools of write queues and handshake parsers
 * ---------------------------------------------------------------------- */

wschat__outq *wschat__server_queue_get(wschat_server *srv) {
  wschat__outq *q;
  if (srv->nqueue_pool > 0) {
    q = srv->queue_pool[--srv->nqueue_pool];
    if (srv->nqueue_pool < srv->nqueue_pool_min)
      srv->nqueue_pool_min = srv->nqueue_pool;
  } else {
    q = wschat__malloc(sizeof(*q) +
                       sizeof(wschat__out_seg) * WSCHAT__QUEUE_INITIAL);
    if (q == NULL)
      return NULL;
  }
  q->queued_bytes = 0;
  q->wreq = NULL;
  q->head = q->count = q->inflight = 0;
  q->cap = WSCHAT__QUEUE_INITIAL;
  return q;
}

void wschat__server_queue_put(wschat_server *srv, wschat__outq *q) {
  if (srv->nqueue_pool < WSCHAT__QUEUE_POOL_MAX)
    srv->queue_pool[srv->nqueue_pool++] = q;
  else
    wschat__free(q);
}

static void server_hs_config(const wschat_server *srv, wschat__hs_config *cfg) {
  cfg->max_header = srv->max_header;
  cfg->max_header_count = srv->max_header_count;
  cfg->path = srv->path;
  cfg->subprotocols = (const char *const *)srv->subprotocols;
  cfg->n_subprotocols = srv->n_subprotocols;
}

wschat__handshake *wschat__server_hs_get(wschat_server *srv) {
  wschat__hs_config cfg;
  server_hs_config(srv, &cfg);
  if (srv->nhs_pool > 0) {
    wschat__handshake *hs = srv->hs_pool[--srv->nhs_pool];
    if (srv->nhs_pool < srv->nhs_pool_min)
      srv->nhs_pool_min = srv->nhs_pool;
    if (wschat__handshake_reset(hs, &cfg) == 0)
      return hs;
    wschat__handshake_free(hs);
  }
  return wschat__handshake_new(&cfg, &wschat__allocator_default);
}

void wschat__server_hs_put(wschat_server *srv, wschat__handshake *hs) {
  wschat__hs_config cfg;
  if (hs == NULL)
    return;
  server_hs_config(srv, &cfg);
  /* Reset now, so that a pooled parser holds no grown block. */
  if (srv->nhs_pool < WSCHAT__HS_POOL_MAX &&
      wschat__handshake_reset(hs, &cfg) == 0)
    srv->hs_pool[srv->nhs_pool++] = hs;
  else
    wschat__handshake_free(hs);
}

wschat__shared_path *wschat__server_path_share(wschat_server *srv,
                                               const char *path) {
  wschat__shared_path *p = srv->last_path;
  size_t len;
  if (p != NULL && strcmp(p->path, path) == 0) {
    p->refs++;
    return p;
  }
  len = strlen(path);
  if ((p = wschat__malloc(sizeof(*p) + len + 1)) == NULL)
    return NULL;
  memcpy(p->path, path, len + 1);
  p->refs = 2; /* the caller's and the server's */
  wschat__server_path_release(srv->last_path);
  srv->last_path = p;
  return p;
}

void wschat__server_path_release(wschat__shared_path *p) {
  if (p != NULL && --p->refs == 0)
    wschat__free(p);
}

wschat__reader *wschat__server_reader_get(wschat_server *srv,
                                          uint64_t max_message) {
  wschat__reader *r;
  if (srv->nreader_pool > 0) {
    r = srv->reader_pool[--srv->nreader_pool];
    if (srv->nreader_pool < srv->nreader_pool_min)
      srv->nreader_pool_min = srv->nreader_pool;
  } else if ((r = wschat__malloc(sizeof(*r))) == NULL) {
    return NULL;
  }
  wschat__reader_init(r, max_message, &wschat__allocator_default);
  return r;
}

void wschat__server_reader_put(wschat_server *srv, wschat__reader *r) {
  if (r == NULL)
    return;
  wschat__reader_free(r);
  if (srv->nreader_pool < WSCHAT__READER_POOL_MAX)
    srv->reader_pool[srv->nreader_pool++] = r;
  else
    wschat__free(r);
}

/* ------------------------------------------------------------------------
 * Loop plumbing
 * ---------------------------------------------------------------------- */

static void server_on_handle_closed(uv_handle_t *handle) {
  wschat_server *srv = handle->data;
  srv->handles_open--;
}

static void server_close_handle(wschat_server *srv, uv_handle_t *handle) {
  handle->data = srv;
  if (!uv_is_closing(handle))
    uv_close(handle, server_on_handle_closed);
}

static void server_maybe_finish_stop(wschat_server *srv) {
  if (!srv->is_stopping || srv->nsessions > 0 || srv->is_stop_done)
    return;
  srv->is_stop_done = 1;
  srv->is_listening = 0;
  server_close_handle(srv, (uv_handle_t *)&srv->sweep);
  server_close_handle(srv, (uv_handle_t *)&srv->flusher);
  server_close_handle(srv, (uv_handle_t *)&srv->kick);
  server_close_handle(srv, (uv_handle_t *)&srv->stopper);
}

/* Nothing to do: an active idle handle only makes the loop poll without
 * blocking, so the check phase (server_on_check) comes at once. */
static void server_on_kick(uv_idle_t *handle) {
  (void)handle;
}

void wschat__server_mark_dirty(wschat_server *srv, wschat_session *s) {
  if (s->is_dirty || s->state == WSCHAT__S_DEAD)
    return;
  if (srv->dirty == NULL && srv->is_listening && !srv->is_stop_done)
    uv_idle_start(&srv->kick, server_on_kick);
  s->is_dirty = 1;
  s->dirty_next = NULL;
  if (srv->dirty == NULL)
    srv->dirty = s;
  else
    srv->dirty_tail->dirty_next = s;
  srv->dirty_tail = s;
}

/* Take s out of the dirty list wherever it is (a walk: only a session
 * that closed before the end of its turn's flush needs it). */
static void server_unlink_dirty(wschat_server *srv, wschat_session *s) {
  wschat_session **link = &srv->dirty, *prev = NULL;
  if (!s->is_dirty)
    return;
  while (*link != s) {
    prev = *link;
    link = &prev->dirty_next;
  }
  *link = s->dirty_next;
  if (srv->dirty_tail == s)
    srv->dirty_tail = prev;
  s->is_dirty = 0;
  s->dirty_next = NULL;
}

void wschat__server_session_gone(wschat_server *srv, wschat_session *s) {
  server_unlink_dirty(srv, s);
  wschat__link_remove(&s->node);
  srv->nsessions--;
  if (s->is_rejecting)
    srv->nrejecting--;
  if (s->is_ip_counted)
    wschat__iplimit_release(&srv->iplimit, &s->ip_key);
  server_maybe_finish_stop(srv);
}

/* The first session in the dirty list, taken out of it. A session
 * destroyed since it was put there stays listed (the list is singly
 * linked) and valid (it is freed in a later loop phase) until taken. */
static wschat_session *server_dirty_pop(wschat_server *srv) {
  wschat_session *s = srv->dirty;
  srv->dirty = s->dirty_next;
  if (srv->dirty == NULL)
    srv->dirty_tail = NULL;
  s->is_dirty = 0;
  s->dirty_next = NULL;
  return s;
}

/* Whether this batched send may name the session's socket by its slot
 * in the ring's table, registering it there on the session's
 * WSCHAT__FIXED_AFTER-th batched send. */
static int server_session_fixed(wschat_server *srv, wschat_session *s, int fd) {
  if (s->is_fixed)
    return 1;
  if (s->nbatched < WSCHAT__FIXED_AFTER) {
    s->nbatched++;
    return 0;
  }
  if (s->nbatched == WSCHAT__FIXED_NEVER || s->state != WSCHAT__S_OPEN)
    return 0;
  if (wschat__uring_file_set(&srv->uring, fd, 1) != 0) {
    s->nbatched = WSCHAT__FIXED_NEVER;
    return 0;
  }
  s->is_fixed = 1;
  return 1;
}

void wschat__server_session_unfix(wschat_server *srv, wschat_session *s) {
  uv_os_fd_t fd;
  s->is_fixed = 0;
  if (srv->uring.nfiles == 0) /* the ring and its table are gone */
    return;
  if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0 &&
      wschat__uring_file_set(&srv->uring, fd, 0) == 0)
    return;
  /* The slot would keep the socket open: give up the ring (and with it
   * the whole table) and write without it from now on. */
  wschat__uring_free(&srv->uring);
  srv->uring_state = -1;
}

static void server_on_sent(void *arg, uint64_t user_data, int res) {
  wschat__send_batch *b = arg;
  b->slots[user_data].res = res;
}

/*
 * Take up to WSCHAT__URING_ENTRIES dirty sessions, send what each has
 * queued with one io_uring_enter(2), then finish each one's turn with the
 * answer: what the socket took is released, a full socket goes on to a
 * uv_write() that waits for room, a failed one is closed. The answers are
 * all applied before any turn end runs, since those may run callbacks.
 */
static void server_flush_batch(wschat_server *srv) {
  wschat__send_batch *b = srv->batch;
  unsigned n = 0, niov = 0, i, k;
  int rc;

  while (srv->dirty != NULL && n < WSCHAT__URING_ENTRIES &&
         niov + WSCHAT__IOV_BATCH <= WSCHAT__URING_IOVS) {
    wschat_session *s = server_dirty_pop(srv);
    wschat__send_slot *slot = &b->slots[n];
    uv_os_fd_t fd;
    slot->session = s;
    slot->res = WSCHAT__SEND_NONE;
    slot->total =
        wschat__session_send_prepare(s, &b->iov[niov], WSCHAT__IOV_BATCH, &k);
    if (slot->total > 0 && uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
      int flags = wschat__session_send_is_last(s, k) ? MSG_MORE : 0;
      int fixed = server_session_fixed(srv, s, fd);
      slot->res = WSCHAT__SEND_PENDING;
      if (k == 1) {
        wschat__uring_send(&srv->uring, fd, fixed, b->iov[niov].iov_base,
                           b->iov[niov].iov_len, flags, n);
      } else {
        memset(&slot->mh, 0, sizeof(slot->mh));
        slot->mh.msg_iov = &b->iov[niov];
        slot->mh.msg_iovlen = k;
        wschat__uring_sendmsg(&srv->uring, fd, fixed, &slot->mh, flags, n);
      }
      niov += k;
    }
    n++;
  }
  rc = wschat__uring_submit(&srv->uring, server_on_sent, b);
  if (rc != 0) {
    /* Not taken: each session writes for itself (a full socket's answer
     * leads there). Taken but unanswered: the stream's state is unknown,
     * so those connections are dropped. Either way the ring is done. */
    for (i = 0; i < n; i++)
      if (b->slots[i].res == WSCHAT__SEND_PENDING)
        b->slots[i].res = rc < 0 ? -EAGAIN : -EIO;
  }
  for (i = 0; i < n; i++)
    wschat__session_sent(b->slots[i].session, b->slots[i].res);
  for (i = 0; i < n; i++)
    wschat__session_turn_end_sent(b->slots[i].session, b->slots[i].res,
                                  b->slots[i].total);
  if (rc != 0) {
    wschat__uring_free(&srv->uring);
    wschat__free(srv->batch);
    srv->batch = NULL;
    srv->uring_state = -1;
  }
}

/* End of the loop turn: everything queued during it leaves now, one
 * vectored write per session; two or more sessions' writes go to the
 * kernel together when io_uring is there. */
static void server_on_check(uv_check_t *handle) {
  wschat_server *srv = WSCHAT__CONTAINER_OF(handle, wschat_server, flusher);
  while (srv->dirty != NULL) {
    wschat_session *s;
    if (srv->uring_state > 0 && srv->dirty->dirty_next != NULL) {
      server_flush_batch(srv);
      continue;
    }
    s = server_dirty_pop(srv);
    if (s->state != WSCHAT__S_DEAD)
      wschat__session_turn_end(s);
  }
  uv_idle_stop(&srv->kick);
}

/* Chunks (and queues, parsers, readers) that stayed in their pool for a
 * whole sweep interval were not needed: give half of them back, so a
 * burst's memory drains away within a few intervals once the load is
 * gone. Then, if that freed memory or the number of connections moved
 * by a slab block or more, hand the free pages inside the heap back to
 * the system: the short-lived blocks of a burst of connections lay
 * between the long-lived ones, and their free space would otherwise stay
 * resident. (At most once per interval, and only after such a change:
 * malloc_trim walks the heap's free lists.) */
static void server_trim_pool(wschat_server *srv) {
  size_t blocks;
  unsigned freed = 0;
  unsigned n = srv->npool_min / 2;
  while (n-- > 0 && srv->npool > 0) {
    wschat__wbuf_unref(srv->pool[--srv->npool]);
    freed++;
  }
  srv->npool_min = srv->npool;
  n = srv->nqueue_pool_min / 2;
  while (n-- > 0 && srv->nqueue_pool > 0) {
    wschat__free(srv->queue_pool[--srv->nqueue_pool]);
    freed++;
  }
  srv->nqueue_pool_min = srv->nqueue_pool;
  n = srv->nhs_pool_min / 2;
  while (n-- > 0 && srv->nhs_pool > 0) {
    wschat__handshake_free(srv->hs_pool[--srv->nhs_pool]);
    freed++;
  }
  srv->nhs_pool_min = srv->nhs_pool;
  n = srv->nreader_pool_min / 2;
  while (n-- > 0 && srv->nreader_pool > 0) {
    wschat__free(srv->reader_pool[--srv->nreader_pool]);
    freed++;
  }
  srv->nreader_pool_min = srv->nreader_pool;
  blocks = srv->session_slab.blocks_added + srv->session_slab.blocks_freed;
  if (blocks != srv->slab_blocks) {
    srv->slab_blocks = blocks;
    freed++;
  }
  if (freed > 0)
    wschat__release_free_memory();
}

static void server_on_sweep(uv_timer_t *timer) {
  wschat_server *srv = WSCHAT__CONTAINER_OF(timer, wschat_server, sweep);
  uint64_t now = uv_now(srv->loop);
  wschat__link *l;
  server_trim_pool(srv);
  /* Sessions are unlinked only in their uv_close() callback, which cannot
   * run during this loop. */
  for (l = srv->sessions.next; l != &srv->sessions; l = l->next)
    wschat__session_sweep(WSCHAT__CONTAINER_OF(l, wschat_session, node), now);
}

static void server_begin_stop(wschat_server *srv) {
  wschat__link *l;
  if (srv->is_stopping || !srv->is_listening)
    return;
  srv->is_stopping = 1;
  server_close_handle(srv, (uv_handle_t *)&srv->listener);
  for (l = srv->sessions.next; l != &srv->sessions; l = l->next)
    wschat__session_shutdown(WSCHAT__CONTAINER_OF(l, wschat_session, node));
  server_maybe_finish_stop(srv);
}

static void server_on_stop_async(uv_async_t *handle) {
  server_begin_stop(WSCHAT__CONTAINER_OF(handle, wschat_server, stopper));
}

static void server_on_discard_closed(uv_handle_t *handle) {
  wschat__free(handle);
}

/* Past both the connection limit and the number of 503s in progress:
 * take the connection off the backlog and close it at once, so the
 * listener keeps moving. */
static void server_discard_connection(wschat_server *srv) {
  uv_tcp_t *tcp = wschat__malloc(sizeof(*tcp));
  if (tcp == NULL || uv_tcp_init(srv->loop, tcp) != 0) {
    wschat__free(tcp);
    return;
  }
  uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)tcp);
  uv_close((uv_handle_t *)tcp, server_on_discard_closed);
}

/*
 * Descriptor exhaustion. libuv keeps one descriptor in reserve per loop:
 * when accept(2) fails with EMFILE or ENFILE it closes the reserve,
 * accepts the pending connections and closes them at once, and opens the
 * reserve again, so a full process sheds new connections instead of
 * leaving them in the backlog (where the listener would report them
 * readable again and again: a busy loop). It does that without telling
 * the application, so the server checks whether a descriptor is still
 * free, with a dup of the listener's: when none is, the next connections
 * will be shed, and the application hears of it once
 * (wschat_accept_error_cb) until an accept finds room again. The check
 * costs two system calls, so it runs only when it can matter: after an
 * accept whose descriptor lies within 16 of RLIMIT_NOFILE (the kernel
 * hands out the lowest free number, so every lower one is taken), and
 * after each accept while a failure is being reported, to see it end. Errors
 * libuv does report (its reserve could not be reopened, ENOMEM, ...) are
 * reported the same way, once per burst.
 */
static void server_note_accept_error(wschat_server *srv, int err) {
  if (srv->is_accept_failing)
    return;
  srv->is_accept_failing = 1;
  if (srv->on_accept_error != NULL)
    srv->on_accept_error(srv, err, srv->userdata);
}

static void server_check_descriptors(wschat_server *srv, wschat_session *s) {
  uv_os_fd_t lfd, sfd;
  int fd;
  if (!srv->is_accept_failing &&
      (srv->nofile_limit == 0 || uv_fileno((uv_handle_t *)&s->tcp, &sfd) != 0 ||
       (rlim_t)sfd + 16 < srv->nofile_limit))
    return;
  if (uv_fileno((uv_handle_t *)&srv->listener, &lfd) != 0)
    return;
  fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
  if (fd >= 0) {
    close(fd);
    srv->is_accept_failing = 0;
  } else if (errno == EMFILE || errno == ENFILE) {
    server_note_accept_error(srv, errno == EMFILE ? UV_EMFILE : UV_ENFILE);
  }
}

/* Count the connection against its address's limit. One over it is
 * answered 503 like one over the connection limit, or closed at once
 * when as many 503s are already in progress. Returns 0 to go on with
 * the session, -1 when it was closed. */
static int server_count_peer(wschat_server *srv, wschat_session *s) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int rc;
  if (srv->max_per_ip == 0)
    return 0;
  /* A peer that is gone already has no address; its read fails next. */
  if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) != 0 ||
      wschat__ipkey_from_sockaddr((struct sockaddr *)&ss, &s->ip_key) != 0)
    return 0;
  rc = wschat__iplimit_acquire(&srv->iplimit, &s->ip_key, srv->max_per_ip);
  if (rc == 0) {
    s->is_ip_counted = 1;
    return 0;
  }
  if (srv->nrejecting >= WSCHAT__MAX_REJECTING) {
    wschat__session_close_now(s);
    return -1;
  }
  s->is_rejecting = 1;
  s->is_ip_rejected = rc == WSCHAT_ETOOMANY;
  srv->nrejecting++;
  return 0;
}

static void server_on_connection(uv_stream_t *listener, int status) {
  wschat_server *srv = WSCHAT__CONTAINER_OF(listener, wschat_server, listener);
  wschat_session *s;
  int is_over;

  if (status < 0) {
    server_note_accept_error(srv, status);
    return;
  }
  if (srv->is_stopping)
    return;
  is_over = srv->nsessions - srv->nrejecting >= srv->max_connections;
  if (is_over && srv->nrejecting >= WSCHAT__MAX_REJECTING) {
    server_discard_connection(srv);
    return;
  }
  s = wschat__session_new(srv);
  if (s == NULL) {
    server_discard_connection(srv);
    return;
  }
  if (is_over) {
    s->is_rejecting = 1;
    srv->nrejecting++;
  }
  if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0) {
    /* The handle is freed in its close callback, never before: libuv
     * still links a closing handle. */
    wschat__session_close_now(s);
    return;
  }
  server_check_descriptors(srv, s);
  if (!is_over && server_count_peer(srv, s) != 0)
    return;
  wschat__session_start(s);
}

/* Set up batched sends when the server first listens (so its descriptor
 * and memory are there from the start, not in the middle of a load);
 * without io_uring, or with WSCHAT_IO_URING=0, every flush writes per
 * session. */
static void server_uring_start(wschat_server *srv) {
  struct rlimit rl;
  srv->uring_state = -1;
  if (!wschat__uring_wanted())
    return;
  if ((srv->batch = wschat__malloc(sizeof(*srv->batch))) == NULL)
    return;
  if (wschat__uring_init(&srv->uring, WSCHAT__URING_ENTRIES) < 0) {
    wschat__free(srv->batch);
    srv->batch = NULL;
    return;
  }
  /* A table with a slot per descriptor the process may open (the kernel
   * allows no more); without one, sends name their sockets as usual. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 0) {
    unsigned slots = rl.rlim_cur < WSCHAT__FIXED_SLOTS ? (unsigned)rl.rlim_cur
                                                       : WSCHAT__FIXED_SLOTS;
    (void)wschat__uring_files_init(&srv->uring, slots);
  }
  srv->uring_state = 1;
}

/*
 * A client speaks first in WebSocket, so the kernel may keep a new
 * connection to itself until its first bytes arrive (TCP_DEFER_ACCEPT):
 * the accept and the read of the request then come in one wake-up, and a
 * peer that connects and stays silent holds no descriptor and no session
 * here. Linux hands such a peer over after about one second anyway (when
 * it answers the one SYN-ACK resent), and the handshake timeout runs from
 * then. Best effort: without the option, connections are accepted at
 * once.
 */
static void server_defer_accept(wschat_server *srv) {
#ifdef TCP_DEFER_ACCEPT
  int seconds = WSCHAT__DEFER_ACCEPT_S;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&srv->listener, &fd) == 0)
    (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds,
                     sizeof(seconds));
#else
  (void)srv;
#endif
}

int wschat_server_listen(wschat_server *srv, const char *host, int port) {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr;
  uv_loop_t *loop;
  uint64_t period;
  int rc;

  if (srv == NULL || host == NULL || port < 0 || port > 65535)
    return WSCHAT_EINVAL;
  if (srv->is_listening || srv->handles_open > 0)
    return WSCHAT_ELISTENING;
  if (uv_ip4_addr(host, port, &addr.in4) != 0 &&
      uv_ip6_addr(host, port, &addr.in6) != 0)
    return WSCHAT_EINVAL;
  if ((loop = wschat_server_loop(srv)) == NULL)
    return WSCHAT_ENOMEM;
  if (srv->read_buf == NULL &&
      (srv->read_buf = wschat__malloc(WSCHAT__READ_BUF_SIZE)) == NULL)
    return WSCHAT_ENOMEM;

  if ((rc = uv_tcp_init(loop, &srv->listener)) != 0)
    return rc;
  {
    struct rlimit rl;
    srv->nofile_limit =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
            ? rl.rlim_cur
            : 0;
  }
  srv->handles_open++;
  rc = uv_tcp_bind(&srv->listener, &addr.sa, 0);
#ifdef __linux__
  /* Accepted sockets inherit it (see wschat__session_start). */
  if (rc == 0)
    rc = uv_tcp_nodelay(&srv->listener, 1);
#endif
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 511, server_on_connection);
  if (rc == 0)
    server_defer_accept(srv);
  if (rc != 0) {
    server_close_handle(srv, (uv_handle_t *)&srv->listener);
    return rc;
  }

  period = server_sweep_period(srv);
  uv_timer_init(loop, &srv->sweep);
  uv_timer_start(&srv->sweep, server_on_sweep, period, period);
  uv_check_init(loop, &srv->flusher);
  uv_check_start(&srv->flusher, server_on_check);
  uv_unref((uv_handle_t *)&srv->flusher);
  uv_idle_init(loop, &srv->kick);
  uv_unref((uv_handle_t *)&srv->kick);
  uv_async_init(loop, &srv->stopper, server_on_stop_async);
  srv->handles_open += 4;
  if (srv->uring_state == 0)
    server_uring_start(srv);
  srv->is_listening = 1;
  srv->is_stopping = 0;
  srv->is_stop_done = 0;
  atomic_store(&srv->is_stop_requested, RUN_LISTENING);
  return 0;
}

int wschat_server_port(const wschat_server *srv) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (srv == NULL || !srv->is_listening || srv->is_stopping)
    return WSCHAT_ENOTLISTENING;
  if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
    return WSCHAT_ENOTLISTENING;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int wschat_server_run(wschat_server *srv) {
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (!srv->is_listening)
    return WSCHAT_ENOTLISTENING;
  return uv_run(srv->loop, UV_RUN_DEFAULT) < 0 ? WSCHAT_EINVAL : 0;
}

int wschat_server_stop(wschat_server *srv) {
  int expected = RUN_LISTENING;
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (atomic_compare_exchange_strong(&srv->is_stop_requested, &expected,
                                     RUN_STOP_REQUESTED))
    return uv_async_send(&srv->stopper);
  return expected == RUN_STOP_REQUESTED ? 0 : WSCHAT_ENOTLISTENING;
}

int wschat_server_is_stopped(const wschat_server *srv) {
  return srv->handles_open == 0 && srv->nsessions == 0;
}

unsigned wschat_server_connection_count(const wschat_server *srv) {
  return srv->nsessions - srv->nrejecting;
}

/* ------------------------------------------------------------------------
 * Statistics
 * ---------------------------------------------------------------------- */

uint64_t wschat_server_stat(const wschat_server *srv, wschat_stat which) {
  if (srv == NULL || (unsigned)which >= WSCHAT_STAT_COUNT_)
    return 0;
  if (which == WSCHAT_STAT_CONNECTIONS)
    return srv->nsessions - srv->nrejecting;
  return srv->stats[which];
}

uint64_t wschat_server_closes(const wschat_server *srv, int code) {
  if (srv == NULL)
    return 0;
  return code >= 1000 && code <= 1015 ? srv->closes[1 + code - 1000]
                                      : srv->closes[0];
}

/* snprintf into what is left of buf, counting the full length. */
static void metrics_put(char *buf, size_t size, size_t *len, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
static void metrics_put(char *buf, size_t size, size_t *len, const char *fmt,
                        ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(*len < size ? buf + *len : NULL, *len < size ? size - *len : 0,
                fmt, ap);
  va_end(ap);
  if (n > 0)
    *len += (size_t)n;
}

int wschat_server_metrics(const wschat_server *srv, char *buf, size_t size) {
  static const struct {
    wschat_stat stat;
    const char *name;
    const char *type;
    const char *help;
  } rows[] = {
      {WSCHAT_STAT_CONNECTIONS, "wschat_connections", "gauge",
       "TCP connections open now (handshaking, open or closing)."},
      {WSCHAT_STAT_SESSIONS, "wschat_sessions", "gauge",
       "WebSocket sessions open now."},
      {WSCHAT_STAT_SESSIONS_TOTAL, "wschat_sessions_opened_total", "counter",
       "WebSocket sessions opened."},
      {WSCHAT_STAT_ROOMS, "wschat_rooms", "gauge", "Rooms."},
      {WSCHAT_STAT_MESSAGES_IN, "wschat_messages_in_total", "counter",
       "Messages received."},
      {WSCHAT_STAT_MESSAGES_OUT, "wschat_messages_out_total", "counter",
       "Messages queued to sessions."},
      {WSCHAT_STAT_BYTES_IN, "wschat_bytes_in_total", "counter",
       "Bytes read from sockets."},
      {WSCHAT_STAT_BYTES_OUT, "wschat_bytes_out_total", "counter",
       "Bytes written to sockets."},
      {WSCHAT_STAT_SLOW_CLOSES, "wschat_slow_closes_total", "counter",
       "Sessions closed for not reading their output."},
      {WSCHAT_STAT_HTTP_REJECTS, "wschat_http_rejects_total", "counter",
       "Requests answered with an HTTP error status."},
      {WSCHAT_STAT_RATE_LIMITED, "wschat_rate_limited_total", "counter",
       "Actions refused by the rate limit."},
  };
  size_t len = 0;
  size_t i;
  int code;
  if (srv == NULL || (buf == NULL && size > 0))
    return WSCHAT_EINVAL;
  if (size > 0)
    buf[0] = '\0';
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    metrics_put(buf, size, &len, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
                rows[i].name, rows[i].help, rows[i].name, rows[i].type,
                rows[i].name,
                (unsigned long long)wschat_server_stat(srv, rows[i].stat));
  metrics_put(buf, size, &len,
              "# HELP wschat_closes_total Sessions ended, by close code.\n"
              "# TYPE wschat_closes_total counter\n");
  for (code = 1000; code <= 1015; code++)
    if (srv->closes[1 + code - 1000] != 0)
      metrics_put(buf, size, &len, "wschat_closes_total{code=\"%d\"} %llu\n",
                  code, (unsigned long long)srv->closes[1 + code - 1000]);
  metrics_put(buf, size, &len, "wschat_closes_total{code=\"other\"} %llu\n",
              (unsigned long long)srv->closes[0]);
  metrics_put(buf, size, &len,
              "# HELP wschat_live_bytes Bytes allocated by libwschat.\n"
              "# TYPE wschat_live_bytes gauge\nwschat_live_bytes %llu\n",
              (unsigned long long)wschat_live_bytes());
  return len > INT32_MAX ? WSCHAT_ENOMEM : (int)len;
}
