/*
 * recv.c - the generator's reads through io_uring (Linux 6.1 and later).
 *
 * Reading is most of the generator's work when one message reaches a
 * thousand receivers: libuv makes one read(2) per socket per wake-up,
 * after epoll has reported the socket. Here every connection past its
 * handshake instead has one multishot receive armed on a ring of its own
 * (IORING_OP_RECV with IORING_RECV_MULTISHOT), taking its buffers from a
 * ring of provided buffers. The ring is set up with
 * IORING_SETUP_DEFER_TASKRUN: the kernel does the receives of the sockets
 * that got data when this task next enters the ring, and signals the
 * ring's eventfd when the first one is waiting. libuv polls that eventfd;
 * on its signal one io_uring_enter(2) does every pending receive, and the
 * completions go to the same frame reader as libuv's reads.
 *
 * A receive stays armed until the server closes (0), an error, or the
 * buffers run out (-ENOBUFS), after which it is armed again once the
 * buffers are back. It is cancelled (synchronously, by descriptor) before
 * a connection is closed or paused, since a request holds its socket
 * open. Each request's user_data is the connection's index and an arming
 * count, so that the last completion of a cancelled request is not taken
 * for the end of a newer one. (A connection's slot gets a new socket only
 * in connect mode, which reads with libuv, so an index always names the
 * socket its request was armed on.)
 *
 * Where the ring cannot be set up (an older kernel, io_uring disabled,
 * WSCHAT_IO_URING=0), b->recv stays NULL and libuv reads as before.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "net/uring.h"

#ifdef __linux__
#include <linux/io_uring.h>
#endif

#if defined(__linux__) && defined(IORING_SETUP_DEFER_TASKRUN) &&               \
    defined(IORING_RECV_MULTISHOT)

#define RECV_SQ_ENTRIES 256
#define RECV_CQ_ENTRIES 16384
#define RECV_NBUFS      1024 /* a power of two, at most 32768 */
#define RECV_BUF_SIZE   16384
#define RECV_BGID       0

struct bench_recv {
  wschat__uring ring;
  int efd;
  uv_poll_t poll;
  bench *b;
  struct io_uring_buf_ring *br;
  size_t br_size;
  char *bufs;
  unsigned nbufs;
  uint16_t tail; /* buffers handed back, published with the ring's tail */
};

static void recv_give(struct bench_recv *r, unsigned bid) {
  struct io_uring_buf *e = &r->br->bufs[r->tail & (r->nbufs - 1)];
  e->addr = (uint64_t)(uintptr_t)(r->bufs + (size_t)bid * RECV_BUF_SIZE);
  e->len = RECV_BUF_SIZE;
  e->bid = (uint16_t)bid;
  r->tail++;
}

static void recv_publish(struct bench_recv *r) {
  __atomic_store_n(&r->br->tail, r->tail, __ATOMIC_RELEASE);
}

static void recv_free(struct bench_recv *r) {
  wschat__uring_free(&r->ring);
  if (r->br != MAP_FAILED)
    munmap(r->br, r->br_size);
  free(r->bufs);
  if (r->efd >= 0)
    close(r->efd);
  free(r);
}

/* Closing the ring cancels whatever is still armed on it. */
static void on_poll_closed(uv_handle_t *h) {
  recv_free(h->data);
}

static void recv_fail(bench *b, const char *what, int err) {
  bench_log(b, "io_uring reads: %s: %s", what, strerror(-err));
}

/* Submit what is queued. A ring that takes nothing is a broken ring: its
 * connections may go unread, so it is reported and the run fails (exit
 * status 1) instead of passing on what it managed to read. */
static int recv_submit(struct bench_recv *r) {
  int rc = wschat__uring_enter(&r->ring, 1);
  if (rc >= 0 || rc == -EAGAIN || rc == -EBUSY)
    return 0;
  recv_fail(r->b, "io_uring_enter", rc);
  r->b->exit_code = 1;
  return rc;
}

static void on_completion(void *arg, uint64_t user_data, int res,
                          unsigned flags) {
  struct bench_recv *r = arg;
  bench *b = r->b;
  uint32_t index = (uint32_t)user_data;
  uint32_t gen = (uint32_t)(user_data >> 32);
  const char *data = NULL;
  int is_end = 0;
  conn *c;

  if (flags & IORING_CQE_F_BUFFER) {
    unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
    data = r->bufs + (size_t)bid * RECV_BUF_SIZE;
    recv_give(r, bid);
  }
  if (index >= b->nconns)
    return;
  c = &b->conns[index];
  if (!(flags & IORING_CQE_F_MORE) && c->is_recv_armed && gen == c->recv_gen) {
    c->is_recv_armed = 0;
    is_end = 1;
  }
  /* The buffer stays valid until the next publish: its bytes are taken
   * (or copied into c->in) before that. */
  if (res > 0 && data != NULL)
    conn_on_bytes(c, data, res);
  if (!is_end || c->state == CONN_DEAD || c->state == CONN_IDLE)
    return;
  if (res > 0 || res == -ENOBUFS) {
    if (conn_recv_start(c) != 0)
      conn_fail(c, "read (io_uring)", UV_EIO);
  } else if (res == 0) {
    conn_on_bytes(c, NULL, UV_EOF);
  } else if (res != -ECANCELED) {
    conn_on_bytes(c, NULL, res);
  }
}

/* The eventfd says receives are waiting: do them all, hand over what they
 * read, give the buffers back, and repeat while there is more. */
static void on_ring(uv_poll_t *h, int status, int events) {
  struct bench_recv *r = h->data;
  bench *b = r->b;
  uint64_t v;
  (void)status;
  (void)events;
  if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
    recv_fail(b, "eventfd", -errno);
  b->now = bench_now();
  /* Until nothing more completes, or the run ended in a callback. */
  while (b->recv == r && recv_submit(r) == 0 &&
         wschat__uring_reap(&r->ring, on_completion, r) > 0)
    recv_publish(r);
}

/* WSCHAT_BENCH_RECV_BUFFERS sets the number of buffers (a power of two
 * up to 32768): few of them make receives run out, which the tests use. */
static unsigned recv_nbufs(void) {
  const char *v = getenv("WSCHAT_BENCH_RECV_BUFFERS");
  char *end;
  unsigned long n;
  if (v == NULL || *v == '\0')
    return RECV_NBUFS;
  n = strtoul(v, &end, 10);
  if (*end != '\0' || n == 0 || n > 32768 || (n & (n - 1)) != 0)
    return 0;
  return (unsigned)n;
}

void bench_recv_init(bench *b) {
  struct bench_recv *r;
  struct io_uring_buf_reg reg;
  unsigned i;
  int rc;

  b->recv = NULL;
  if (!wschat__uring_wanted() || b->opt.mode == BENCH_CONNECT ||
      (r = calloc(1, sizeof(*r))) == NULL)
    return;
  r->ring.fd = -1;
  r->efd = -1;
  r->br = MAP_FAILED;
  if ((r->nbufs = recv_nbufs()) == 0) {
    bench_log(b, "WSCHAT_BENCH_RECV_BUFFERS: not a power of two from 1 to "
                 "32768; reading with libuv");
    goto fail;
  }
  rc = wschat__uring_init_flags(&r->ring, RECV_SQ_ENTRIES, RECV_CQ_ENTRIES,
                                IORING_SETUP_SINGLE_ISSUER |
                                    IORING_SETUP_DEFER_TASKRUN);
  if (rc < 0)
    goto fail;
  r->br_size = r->nbufs * sizeof(struct io_uring_buf);
  r->br = mmap(NULL, r->br_size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r->br == MAP_FAILED ||
      (r->bufs = malloc((size_t)r->nbufs * RECV_BUF_SIZE)) == NULL)
    goto fail;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)r->br;
  reg.ring_entries = r->nbufs;
  reg.bgid = RECV_BGID;
  if (wschat__uring_register(&r->ring, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
    goto fail;
  for (i = 0; i < r->nbufs; i++)
    recv_give(r, i);
  recv_publish(r);
  if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
      wschat__uring_register(&r->ring, IORING_REGISTER_EVENTFD, &r->efd, 1) <
          0 ||
      uv_poll_init(b->loop, &r->poll, r->efd) != 0)
    goto fail;
  r->poll.data = r;
  if (uv_poll_start(&r->poll, UV_READABLE, on_ring) != 0) {
    uv_close((uv_handle_t *)&r->poll, on_poll_closed);
    return;
  }
  r->b = b;
  b->recv = r;
  return;

fail:
  recv_free(r);
}

void bench_recv_close(bench *b) {
  struct bench_recv *r = b->recv;
  if (r == NULL)
    return;
  b->recv = NULL;
  uv_close((uv_handle_t *)&r->poll, on_poll_closed);
}

void bench_recv_submit(bench *b) {
  if (b->recv != NULL && b->recv->ring.pending > 0)
    recv_submit(b->recv);
}

int conn_recv_start(conn *c) {
  bench *b = c->b;
  struct io_uring_sqe *sqe;
  uv_os_fd_t fd;

  if (b->recv == NULL || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return UV_ENOSYS;
  if ((sqe = wschat__uring_sqe(&b->recv->ring)) == NULL) {
    if (recv_submit(b->recv) != 0 ||
        (sqe = wschat__uring_sqe(&b->recv->ring)) == NULL)
      return UV_EIO;
  }
  c->recv_gen++;
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = fd;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = RECV_BGID;
  sqe->user_data = (uint64_t)c->recv_gen << 32 | c->index;
  c->is_recv_armed = 1;
  c->is_ring_reader = 1;
  return 0;
}

void conn_recv_stop(conn *c) {
  bench *b = c->b;
  struct io_uring_sync_cancel_reg reg;
  uv_os_fd_t fd;
  int rc;

  if (!c->is_recv_armed)
    return;
  c->is_recv_armed = 0;
  /* The request may still be queued here: it has to reach the kernel to
   * be cancelled there. */
  if (b->recv == NULL ||
      (b->recv->ring.pending > 0 && recv_submit(b->recv) != 0))
    return;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return;
  memset(&reg, 0, sizeof(reg));
  reg.fd = fd;
  reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  rc = wschat__uring_register(&b->recv->ring, IORING_REGISTER_SYNC_CANCEL, &reg,
                              1);
  if (rc < 0 && rc != -ENOENT)
    recv_fail(b, "cancel", rc);
}

#else /* no io_uring reads */

void bench_recv_init(bench *b) {
  b->recv = NULL;
}

void bench_recv_close(bench *b) {
  (void)b;
}

void bench_recv_submit(bench *b) {
  (void)b;
}

int conn_recv_start(conn *c) {
  (void)c;
  return UV_ENOSYS;
}

void conn_recv_stop(conn *c) {
  (void)c;
}

#endif
