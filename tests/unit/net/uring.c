/*
 * Tests for lib/net/uring.c, the batched sends of the end-of-turn flush:
 * bytes and answers per request, a full socket answering -EAGAIN at once,
 * a closed peer answering -EPIPE without SIGPIPE, a bad descriptor failing
 * alone, reuse of the ring across many batches, sends by registered slot,
 * WSCHAT_IO_URING=0, and the generic entry points running a multishot
 * receive on a ring with deferred task work.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/uring.h"

#define MAXREQ 64

typedef struct answers {
  int res[MAXREQ];
  unsigned calls[MAXREQ];
  unsigned total;
} answers;

static void on_done(void *arg, uint64_t ud, int res) {
  answers *a = arg;
  cr_assert_lt(ud, MAXREQ, "unknown user_data %llu", (unsigned long long)ud);
  a->res[ud] = res;
  a->calls[ud]++;
  a->total++;
}

static void pair(int sv[2]) {
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  cr_assert_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

/* A message of one buffer. */
static void one_buffer(struct msghdr *mh, struct iovec *iov) {
  memset(mh, 0, sizeof(*mh));
  mh->msg_iov = iov;
  mh->msg_iovlen = 1;
}

static wschat__uring ring(unsigned entries) {
  wschat__uring u;
  int rc = wschat__uring_init(&u, entries);
  cr_assert_eq(rc, 0,
               "io_uring_setup failed (%s): this machine kind has io_uring",
               strerror(-rc));
  cr_assert_geq(u.fd, 0);
  return u;
}

Test(uring, wanted_follows_the_environment) {
  unsetenv("WSCHAT_IO_URING");
  cr_assert_eq(wschat__uring_wanted(), 1);
  setenv("WSCHAT_IO_URING", "1", 1);
  cr_assert_eq(wschat__uring_wanted(), 1);
  setenv("WSCHAT_IO_URING", "0", 1);
  cr_assert_eq(wschat__uring_wanted(), 0);
  unsetenv("WSCHAT_IO_URING");
}

Test(uring, sends_each_request_and_answers_once) {
  wschat__uring u = ring(8);
  int sv[3][2];
  struct iovec iov[3][2];
  struct msghdr mh[3];
  answers a;
  char want[3][32], got[64];
  unsigned i;

  memset(&a, 0, sizeof(a));
  for (i = 0; i < 3; i++) {
    pair(sv[i]);
    snprintf(want[i], sizeof(want[i]), "request %u:", i);
    iov[i][0].iov_base = want[i];
    iov[i][0].iov_len = strlen(want[i]);
    iov[i][1].iov_base = "tail";
    iov[i][1].iov_len = 4;
    memset(&mh[i], 0, sizeof(mh[i]));
    mh[i].msg_iov = iov[i];
    mh[i].msg_iovlen = 2;
    wschat__uring_sendmsg(&u, sv[i][0], 0, &mh[i], 0, i);
  }
  cr_assert_eq(u.pending, 3);
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  cr_assert_eq(u.pending, 0);
  cr_assert_eq(a.total, 3);
  for (i = 0; i < 3; i++) {
    size_t len = strlen(want[i]) + 4;
    ssize_t n;
    cr_assert_eq(a.calls[i], 1);
    cr_assert_eq(a.res[i], (int)len, "request %u answered %d", i, a.res[i]);
    n = read(sv[i][1], got, sizeof(got));
    cr_assert_eq(n, (ssize_t)len);
    cr_assert_eq(memcmp(got, want[i], len - 4), 0);
    cr_assert_eq(memcmp(got + len - 4, "tail", 4), 0);
    close(sv[i][0]);
    close(sv[i][1]);
  }
  /* Nothing queued: nothing to do, nothing called. */
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  cr_assert_eq(a.total, 3);
  wschat__uring_free(&u);
  cr_assert_eq(u.fd, -1);
}

Test(uring, full_socket_answers_eagain_without_waiting) {
  wschat__uring u = ring(4);
  int sv[2], small = 4096;
  char block[4096];
  struct iovec iov = {block, sizeof(block)};
  struct msghdr mh;
  answers a;

  pair(sv);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  memset(block, 'x', sizeof(block));
  while (write(sv[0], block, sizeof(block)) > 0)
    ;
  cr_assert_eq(errno, EAGAIN);
  memset(&a, 0, sizeof(a));
  one_buffer(&mh, &iov);
  alarm(5); /* a request that waited for room would hang here */
  wschat__uring_sendmsg(&u, sv[0], 0, &mh, 0, 0);
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  alarm(0);
  cr_assert_eq(a.calls[0], 1);
  cr_assert_eq(a.res[0], -EAGAIN, "answered %d", a.res[0]);
  close(sv[0]);
  close(sv[1]);
  wschat__uring_free(&u);
}

Test(uring, closed_peer_is_epipe_not_sigpipe) {
  wschat__uring u = ring(4);
  int sv[2];
  struct iovec iov = {"gone", 4};
  struct msghdr mh;
  answers a;

  signal(SIGPIPE, SIG_DFL); /* the signal would end this test's process */
  pair(sv);
  close(sv[1]);
  memset(&a, 0, sizeof(a));
  one_buffer(&mh, &iov);
  wschat__uring_sendmsg(&u, sv[0], 0, &mh, 0, 0);
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  cr_assert_eq(a.res[0], -EPIPE, "answered %d", a.res[0]);
  close(sv[0]);
  wschat__uring_free(&u);
}

Test(uring, bad_descriptor_fails_alone) {
  wschat__uring u = ring(4);
  int sv[2];
  struct iovec iov = {"ok", 2};
  struct msghdr mh;
  answers a;
  char got[4];

  pair(sv);
  memset(&a, 0, sizeof(a));
  one_buffer(&mh, &iov);
  wschat__uring_sendmsg(&u, 1000000, 0, &mh, 0, 0); /* no such descriptor */
  wschat__uring_sendmsg(&u, sv[0], 0, &mh, 0, 1);
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  cr_assert_eq(a.total, 2);
  cr_assert_eq(a.res[0], -EBADF, "answered %d", a.res[0]);
  cr_assert_eq(a.res[1], 2, "the request after it answered %d", a.res[1]);
  cr_assert_eq(read(sv[1], got, sizeof(got)), 2);
  close(sv[0]);
  close(sv[1]);
  wschat__uring_free(&u);
}

/* Ring positions wrap: 50 batches of 8 through an 8-entry ring, every
 * byte in order on each of the 8 sockets. */
Test(uring, many_batches_reuse_the_ring) {
  wschat__uring u = ring(8);
  int sv[8][2];
  unsigned char seq[8][50];
  struct iovec iov[8];
  struct msghdr mh[8];
  answers a;
  unsigned i, round;

  for (i = 0; i < 8; i++)
    pair(sv[i]);
  for (round = 0; round < 50; round++) {
    memset(&a, 0, sizeof(a));
    for (i = 0; i < 8; i++) {
      seq[i][round] = (unsigned char)(round * 8 + i);
      iov[i].iov_base = &seq[i][round];
      iov[i].iov_len = 1;
      memset(&mh[i], 0, sizeof(mh[i]));
      mh[i].msg_iov = &iov[i];
      mh[i].msg_iovlen = 1;
      wschat__uring_sendmsg(&u, sv[i][0], 0, &mh[i], 0, i);
    }
    cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
    cr_assert_eq(a.total, 8, "round %u: %u answers", round, a.total);
    for (i = 0; i < 8; i++)
      cr_assert_eq(a.res[i], 1, "round %u request %u: %d", round, i, a.res[i]);
  }
  for (i = 0; i < 8; i++) {
    unsigned char got[64];
    cr_assert_eq(read(sv[i][1], got, sizeof(got)), 50);
    for (round = 0; round < 50; round++)
      cr_assert_eq(got[round], (unsigned char)(round * 8 + i));
    close(sv[i][0]);
    close(sv[i][1]);
  }
  wschat__uring_free(&u);
}

/* One-buffer sends, by descriptor and by registered slot: the bytes
 * arrive; an empty slot answers -EBADF alone; a slot past the table is
 * refused before the kernel; and a socket whose slot is emptied closes at
 * once (its peer reads EOF), while one still in the table stays open. */
Test(uring, sends_by_registered_slot) {
  wschat__uring u = ring(8);
  int sv[2], sv2[2];
  answers a;
  char got[8];

  pair(sv);
  pair(sv2);
  cr_assert_eq(wschat__uring_files_init(&u, 64), 0);
  cr_assert_eq(u.nfiles, 64);
  cr_assert_lt(sv[0], 64);
  cr_assert_eq(wschat__uring_file_set(&u, 64, 1), -EBADF);
  cr_assert_eq(wschat__uring_file_set(&u, -1, 1), -EBADF);
  cr_assert_eq(wschat__uring_file_set(&u, sv[0], 1), 0);

  memset(&a, 0, sizeof(a));
  wschat__uring_send(&u, sv[0], 1, "fix", 3, 0, 0);
  wschat__uring_send(&u, sv2[0], 0, "plain", 5, 0, 1);
  wschat__uring_send(&u, sv2[0], 1, "empty", 5, 0, 2); /* slot not set */
  cr_assert_eq(wschat__uring_submit(&u, on_done, &a), 0);
  cr_assert_eq(a.total, 3);
  cr_assert_eq(a.res[0], 3, "fixed send answered %d", a.res[0]);
  cr_assert_eq(a.res[1], 5, "plain send answered %d", a.res[1]);
  cr_assert_eq(a.res[2], -EBADF, "empty slot answered %d", a.res[2]);
  cr_assert_eq(read(sv[1], got, sizeof(got)), 3);
  cr_assert_eq(memcmp(got, "fix", 3), 0);
  cr_assert_eq(read(sv2[1], got, sizeof(got)), 5);
  cr_assert_eq(memcmp(got, "plain", 5), 0);

  /* Registered sv2[0] too, then closed without emptying its slot: the
   * table keeps the socket open, so its peer sees no EOF. */
  cr_assert_eq(wschat__uring_file_set(&u, sv2[0], 1), 0);
  cr_assert_eq(fcntl(sv2[1], F_SETFL, O_NONBLOCK), 0);
  close(sv2[0]);
  cr_assert_eq(read(sv2[1], got, sizeof(got)), -1);
  cr_assert_eq(errno, EAGAIN);
  /* Emptying the slot lets it go: EOF. */
  cr_assert_eq(wschat__uring_file_set(&u, sv2[0], 0), 0);
  cr_assert_eq(read(sv2[1], got, sizeof(got)), 0);

  /* Empty the slot first, then close: EOF at once. */
  cr_assert_eq(wschat__uring_file_set(&u, sv[0], 0), 0);
  close(sv[0]);
  cr_assert_eq(read(sv[1], got, sizeof(got)), 0);
  close(sv[1]);
  close(sv2[1]);
  wschat__uring_free(&u);
}

Test(uring, free_is_safe_on_a_ring_that_failed) {
  wschat__uring u;
  /* More entries than the kernel allows (32768): setup fails cleanly. */
  int rc = wschat__uring_init(&u, 1u << 20);
  cr_assert_lt(rc, 0);
  cr_assert_eq(u.fd, -1);
  wschat__uring_free(&u);
  wschat__uring_free(&u);
  cr_assert_eq(u.fd, -1);
}

/* ------------------------------------------------------------------------
 * The generic entry points (the load generator's reads use them): a
 * multishot receive into provided buffers on a DEFER_TASKRUN ring.
 * ---------------------------------------------------------------------- */

#include <linux/io_uring.h>
#include <sys/mman.h>

typedef struct cqes {
  uint64_t ud[16];
  int res[16];
  unsigned flags[16];
  unsigned n;
} cqes;

static void on_cqe(void *arg, uint64_t ud, int res, unsigned flags) {
  cqes *c = arg;
  cr_assert_lt(c->n, 16);
  c->ud[c->n] = ud;
  c->res[c->n] = res;
  c->flags[c->n] = flags;
  c->n++;
}

/* Enter (running the deferred receives) and collect, until something
 * completes or 100 tries have passed. */
static unsigned enter_and_reap(wschat__uring *u, cqes *c) {
  unsigned got = 0, i;
  for (i = 0; i < 100 && got == 0; i++) {
    cr_assert_geq(wschat__uring_enter(u, 1), 0);
    got = wschat__uring_reap(u, on_cqe, c);
    if (got == 0)
      usleep(1000);
  }
  return got;
}

Test(uring, generic_entries_run_a_multishot_receive) {
  enum { NBUF = 4, BUFSZ = 64 };
  static char bufs[NBUF][BUFSZ];
  wschat__uring u;
  struct io_uring_buf_ring *br;
  struct io_uring_buf_reg reg;
  struct io_uring_sqe *sqe;
  cqes c;
  int sv[2], rc;
  unsigned i, bid;

  rc = wschat__uring_init_flags(
      &u, 2, 64, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  cr_assert_eq(rc, 0, "setup failed: %s", strerror(-rc));
  br = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
            0);
  cr_assert_neq(br, MAP_FAILED);
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)br;
  reg.ring_entries = NBUF;
  reg.bgid = 7;
  cr_assert_eq(wschat__uring_register(&u, IORING_REGISTER_PBUF_RING, &reg, 1),
               0);
  /* An unknown register operation is an error, not a crash. */
  cr_assert_lt(wschat__uring_register(&u, 9999, NULL, 0), 0);
  for (i = 0; i < NBUF; i++) {
    br->bufs[i].addr = (uint64_t)(uintptr_t)bufs[i];
    br->bufs[i].len = BUFSZ;
    br->bufs[i].bid = (uint16_t)i;
  }
  __atomic_store_n(&br->tail, (uint16_t)NBUF, __ATOMIC_RELEASE);

  pair(sv);
  sqe = wschat__uring_sqe(&u);
  cr_assert_not_null(sqe);
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = sv[0];
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = 7;
  sqe->user_data = 42;
  /* The ring has 2 entries: a third request has no room until a submit. */
  cr_assert_not_null(wschat__uring_sqe(&u));
  cr_assert_null(wschat__uring_sqe(&u));
  u.pending = 1; /* withdraw the second, empty one */
  cr_assert_eq(wschat__uring_enter(&u, 0), 1);
  cr_assert_eq(u.pending, 0);

  /* Nothing to read yet: nothing completes. */
  memset(&c, 0, sizeof(c));
  cr_assert_eq(wschat__uring_enter(&u, 1), 0);
  cr_assert_eq(wschat__uring_reap(&u, on_cqe, &c), 0);

  /* Two writes, two completions, each with its buffer and "more". */
  for (i = 0; i < 2; i++) {
    char msg[16];
    int len = snprintf(msg, sizeof(msg), "message %u", i);
    cr_assert_eq(write(sv[1], msg, (size_t)len), len);
    cr_assert_eq(enter_and_reap(&u, &c), 1);
    cr_assert_eq(c.ud[i], 42);
    cr_assert_eq(c.res[i], len);
    cr_assert(c.flags[i] & IORING_CQE_F_BUFFER);
    cr_assert(c.flags[i] & IORING_CQE_F_MORE);
    bid = c.flags[i] >> IORING_CQE_BUFFER_SHIFT;
    cr_assert_lt(bid, NBUF);
    cr_assert_eq(memcmp(bufs[bid], msg, (size_t)len), 0);
  }
  /* The peer closes: 0, and the receive is over (no "more"). */
  close(sv[1]);
  cr_assert_eq(enter_and_reap(&u, &c), 1);
  cr_assert_eq(c.res[2], 0);
  cr_assert_eq(c.flags[2] & IORING_CQE_F_MORE, 0);
  close(sv[0]);
  munmap(br, 4096);
  wschat__uring_free(&u);
}

Test(uring, generic_entries_fail_cleanly) {
  wschat__uring u;
  /* Flags the kernel does not know: the setup fails, fd stays -1. */
  cr_assert_lt(wschat__uring_init_flags(&u, 4, 0, 1U << 31), 0);
  cr_assert_eq(u.fd, -1);
  wschat__uring_free(&u);
  /* A completion queue smaller than the submission queue is refused. */
  cr_assert_lt(wschat__uring_init_flags(&u, 8, 2, 0), 0);
  cr_assert_eq(u.fd, -1);
}
