/*
 * uring.c - batched socket sends through io_uring, with raw system calls
 * (the kernel's <linux/io_uring.h> is all it needs). See uring.h.
 */
#include "net/uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int wschat__uring_wanted(void) {
  const char *v = getenv("WSCHAT_IO_URING");
  return v == NULL || strcmp(v, "0") != 0;
}

#if defined(__linux__) && defined(__NR_io_uring_setup) &&                      \
    defined(IORING_SETUP_SUBMIT_ALL)

static int uring_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int uring_register(int fd, unsigned op, void *arg, unsigned n) {
  return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

static int uring_enter(int fd, unsigned to_submit, unsigned min_complete) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete,
                      IORING_ENTER_GETEVENTS, NULL, (size_t)0);
}

int wschat__uring_init(wschat__uring *u, unsigned entries) {
  return wschat__uring_init_flags(u, entries, 0, 0);
}

int wschat__uring_init_flags(wschat__uring *u, unsigned entries,
                             unsigned cq_entries, unsigned flags) {
  struct io_uring_params p;
  unsigned *array;
  unsigned i;
  char *sq, *cq;
  int fd, err;

  memset(u, 0, sizeof(*u));
  u->fd = -1;
  memset(&p, 0, sizeof(p));
  /* SUBMIT_ALL: a request that fails its checks completes with an error
   * instead of stopping the submission of those after it (5.18). */
  p.flags = IORING_SETUP_SUBMIT_ALL | flags;
  if (cq_entries != 0) {
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
  }
  if ((fd = uring_setup(entries, &p)) < 0)
    return -errno;
  if (!(p.features & IORING_FEAT_NODROP) || p.sq_entries < entries) {
    close(fd);
    return -ENOSYS;
  }
  u->sq_ring_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  u->cq_ring_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (u->cq_ring_size > u->sq_ring_size)
      u->sq_ring_size = u->cq_ring_size;
    u->cq_ring_size = u->sq_ring_size;
  }
  u->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
  sq = mmap(NULL, u->sq_ring_size, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED)
    goto fail;
  u->sq_ring = sq;
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    cq = sq;
  } else {
    cq = mmap(NULL, u->cq_ring_size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED)
      goto fail;
  }
  u->cq_ring = cq;
  u->sqes = mmap(NULL, u->sqes_size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) {
    u->sqes = NULL;
    goto fail;
  }
  u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  u->cq_head = (unsigned *)(cq + p.cq_off.head);
  u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  u->cqes = cq + p.cq_off.cqes;
  /* Slot i of the submission array always names entry i: requests are
   * written in ring order and all consumed by each submit. */
  array = (unsigned *)(sq + p.sq_off.array);
  for (i = 0; i < p.sq_entries; i++)
    array[i] = i;
  u->entries = entries;
  u->fd = fd;
  return 0;

fail:
  err = -errno;
  u->fd = fd;
  wschat__uring_free(u);
  return err;
}

void wschat__uring_free(wschat__uring *u) {
  if (u->sqes != NULL)
    munmap(u->sqes, u->sqes_size);
  if (u->cq_ring != NULL && u->cq_ring != u->sq_ring)
    munmap(u->cq_ring, u->cq_ring_size);
  if (u->sq_ring != NULL)
    munmap(u->sq_ring, u->sq_ring_size);
  if (u->fd >= 0)
    close(u->fd);
  memset(u, 0, sizeof(*u));
  u->fd = -1;
}

void *wschat__uring_sqe(wschat__uring *u) {
  unsigned tail = *u->sq_tail + u->pending;
  struct io_uring_sqe *sqe;
  if (u->pending >= u->entries)
    return NULL;
  sqe = &((struct io_uring_sqe *)u->sqes)[tail & *u->sq_mask];
  memset(sqe, 0, sizeof(*sqe));
  u->pending++;
  return sqe;
}

/* The next free submission entry, filled in for a send-type request on
 * fd (a registered slot with `fixed`). The callers queue at most
 * `entries` between submits, so there is always one. */
static struct io_uring_sqe *uring_sqe(wschat__uring *u, unsigned opcode, int fd,
                                      int fixed, int flags,
                                      uint64_t user_data) {
  struct io_uring_sqe *sqe = wschat__uring_sqe(u);
  sqe->opcode = (uint8_t)opcode;
  sqe->fd = fd;
  if (fixed)
    sqe->flags = IOSQE_FIXED_FILE;
  sqe->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL | (uint32_t)flags;
  sqe->user_data = user_data;
  return sqe;
}

void wschat__uring_sendmsg(wschat__uring *u, int fd, int fixed,
                           const struct msghdr *mh, int flags,
                           uint64_t user_data) {
  struct io_uring_sqe *sqe =
      uring_sqe(u, IORING_OP_SENDMSG, fd, fixed, flags, user_data);
  sqe->addr = (uint64_t)(uintptr_t)mh;
  sqe->len = 1;
}

void wschat__uring_send(wschat__uring *u, int fd, int fixed, const void *buf,
                        size_t len, int flags, uint64_t user_data) {
  struct io_uring_sqe *sqe =
      uring_sqe(u, IORING_OP_SEND, fd, fixed, flags, user_data);
  sqe->addr = (uint64_t)(uintptr_t)buf;
  sqe->len = (uint32_t)len;
}

int wschat__uring_files_init(wschat__uring *u, unsigned slots) {
#ifdef IORING_RSRC_REGISTER_SPARSE
  struct io_uring_rsrc_register r;
  memset(&r, 0, sizeof(r));
  r.nr = slots;
  r.flags = IORING_RSRC_REGISTER_SPARSE;
  if (uring_register(u->fd, IORING_REGISTER_FILES2, &r, sizeof(r)) < 0)
    return -errno;
  u->nfiles = slots;
  return 0;
#else
  (void)u;
  (void)slots;
  return -ENOSYS;
#endif
}

int wschat__uring_file_set(wschat__uring *u, int fd, int on) {
  struct io_uring_files_update up;
  int32_t v = on ? fd : -1;
  if (fd < 0 || (unsigned)fd >= u->nfiles)
    return -EBADF;
  memset(&up, 0, sizeof(up));
  up.offset = (unsigned)fd;
  up.fds = (uint64_t)(uintptr_t)&v;
  if (uring_register(u->fd, IORING_REGISTER_FILES_UPDATE, &up, 1) < 0)
    return -errno;
  return 0;
}

unsigned wschat__uring_reap(wschat__uring *u,
                            void (*fn)(void *, uint64_t, int, unsigned),
                            void *arg) {
  unsigned head = *u->cq_head;
  unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
  unsigned n = 0;
  for (; head != tail; head++, n++) {
    const struct io_uring_cqe *cqe =
        &((const struct io_uring_cqe *)u->cqes)[head & *u->cq_mask];
    fn(arg, cqe->user_data, cqe->res, cqe->flags);
    /* Give the entry back at once: fn may enter the ring again. */
    __atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
  }
  return n;
}

typedef struct uring_done {
  void (*done)(void *, uint64_t, int);
  void *arg;
} uring_done;

static void uring_done_call(void *arg, uint64_t user_data, int res,
                            unsigned flags) {
  uring_done *d = arg;
  (void)flags;
  d->done(d->arg, user_data, res);
}

/* Hand the kernel what is queued, with io_uring_enter(2)'s min_complete
 * and flags. When the call fails nothing was taken: the requests are
 * withdrawn (and dropped from the queue). What was submitted, or a
 * negative errno. */
static int uring_push(wschat__uring *u, unsigned min_complete, unsigned flags) {
  unsigned n = u->pending;
  int rc;
  u->pending = 0;
  if (n > 0)
    __atomic_store_n(u->sq_tail, *u->sq_tail + n, __ATOMIC_RELEASE);
  do
    rc = (int)syscall(__NR_io_uring_enter, u->fd, n, min_complete, flags, NULL,
                      (size_t)0);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    rc = -errno;
    if (n > 0)
      __atomic_store_n(u->sq_tail, *u->sq_tail - n, __ATOMIC_RELEASE);
  }
  return rc;
}

int wschat__uring_enter(wschat__uring *u, int getevents) {
  return uring_push(u, 0, getevents ? IORING_ENTER_GETEVENTS : 0);
}

int wschat__uring_register(wschat__uring *u, unsigned op, void *arg,
                           unsigned n) {
  return uring_register(u->fd, op, arg, n) < 0 ? -errno : 0;
}

int wschat__uring_submit(wschat__uring *u, void (*done)(void *, uint64_t, int),
                         void *arg) {
  unsigned n = u->pending, got = 0;
  uring_done d;
  int rc;
  if (n == 0)
    return 0;
  d.done = done;
  d.arg = arg;
  if ((rc = uring_push(u, n, IORING_ENTER_GETEVENTS)) < 0)
    return rc; /* nothing was taken */
  /* With SUBMIT_ALL every request was taken, and with MSG_DONTWAIT each
   * one completes inside the call; wait anyway until all have. */
  for (;;) {
    got += wschat__uring_reap(u, uring_done_call, &d);
    if (got >= n)
      return 0;
    if (uring_enter(u->fd, 0, n - got) < 0 && errno != EINTR &&
        errno != EAGAIN && errno != EBUSY)
      return WSCHAT__URING_LOST;
  }
}

#else /* no io_uring */

int wschat__uring_init(wschat__uring *u, unsigned entries) {
  return wschat__uring_init_flags(u, entries, 0, 0);
}

int wschat__uring_init_flags(wschat__uring *u, unsigned entries,
                             unsigned cq_entries, unsigned flags) {
  (void)entries;
  (void)cq_entries;
  (void)flags;
  memset(u, 0, sizeof(*u));
  u->fd = -1;
  return -ENOSYS;
}

void *wschat__uring_sqe(wschat__uring *u) {
  (void)u;
  return NULL;
}

int wschat__uring_enter(wschat__uring *u, int getevents) {
  (void)u;
  (void)getevents;
  return -ENOSYS;
}

unsigned wschat__uring_reap(wschat__uring *u,
                            void (*fn)(void *, uint64_t, int, unsigned),
                            void *arg) {
  (void)u;
  (void)fn;
  (void)arg;
  return 0;
}

int wschat__uring_register(wschat__uring *u, unsigned op, void *arg,
                           unsigned n) {
  (void)u;
  (void)op;
  (void)arg;
  (void)n;
  return -ENOSYS;
}

void wschat__uring_free(wschat__uring *u) {
  memset(u, 0, sizeof(*u));
  u->fd = -1;
}

void wschat__uring_sendmsg(wschat__uring *u, int fd, int fixed,
                           const struct msghdr *mh, int flags,
                           uint64_t user_data) {
  (void)u;
  (void)fd;
  (void)fixed;
  (void)mh;
  (void)flags;
  (void)user_data;
}

void wschat__uring_send(wschat__uring *u, int fd, int fixed, const void *buf,
                        size_t len, int flags, uint64_t user_data) {
  (void)u;
  (void)fd;
  (void)fixed;
  (void)buf;
  (void)len;
  (void)flags;
  (void)user_data;
}

int wschat__uring_files_init(wschat__uring *u, unsigned slots) {
  (void)u;
  (void)slots;
  return -ENOSYS;
}

int wschat__uring_file_set(wschat__uring *u, int fd, int on) {
  (void)u;
  (void)fd;
  (void)on;
  return -ENOSYS;
}

int wschat__uring_submit(wschat__uring *u, void (*done)(void *, uint64_t, int),
                         void *arg) {
  (void)u;
  (void)done;
  (void)arg;
  return -ENOSYS;
}

#endif
