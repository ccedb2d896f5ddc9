/*
 * uring.h - batched socket sends through io_uring (Linux).
 *
 * The end-of-turn flush has one vectored write for every session that
 * queued output. Issued as system calls, each of those pays the cost of
 * entering and leaving the kernel; queued as SENDMSG requests on a ring,
 * a whole batch goes in with one io_uring_enter(2), which the kernel
 * executes at once (MSG_DONTWAIT: a full socket answers -EAGAIN instead
 * of waiting), so every completion is there when the call returns.
 *
 * In the library only the flush uses it; libuv still owns every socket,
 * its reads and its waiting writes. The generic entry points below
 * (wschat__uring_sqe, _enter, _reap, _register) are for requests of other
 * kinds: wschat-bench reads through a ring of its own with them. Where io_uring
 * is missing (old kernel, a seccomp filter, kernel.io_uring_disabled) or turned
 * off with WSCHAT_IO_URING=0, the flush writes with uv_try_write() as before.
 */
#ifndef WSCHAT_NET_URING_H
#define WSCHAT_NET_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct wschat__uring {
  int fd; /* -1: none */
  unsigned entries;
  unsigned pending; /* requests queued since the last submit */
  unsigned *sq_tail;
  unsigned *sq_mask;
  unsigned *cq_head;
  unsigned *cq_tail;
  unsigned *cq_mask;
  void *sqes; /* struct io_uring_sqe[entries] */
  void *cqes; /* struct io_uring_cqe[] */
  void *sq_ring;
  size_t sq_ring_size;
  void *cq_ring; /* == sq_ring when the kernel maps both at once */
  size_t cq_ring_size;
  size_t sqes_size;
  unsigned nfiles; /* registered-descriptor slots; 0: none */
} wschat__uring;

/* Whether the environment turns io_uring off (WSCHAT_IO_URING=0). */
int wschat__uring_wanted(void);

/* Set up a ring of `entries` submissions (a power of two). 0, or a
 * negative errno (u->fd stays -1). */
int wschat__uring_init(wschat__uring *u, unsigned entries);
/* The same with more io_uring_setup(2) flags (IORING_SETUP_SUBMIT_ALL is
 * always on) and, when cq_entries is not 0, a completion queue of that
 * many entries. */
int wschat__uring_init_flags(wschat__uring *u, unsigned entries,
                             unsigned cq_entries, unsigned flags);
void wschat__uring_free(wschat__uring *u);

/* Queue sendmsg(fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL | flags), flags
 * being 0 or MSG_MORE. At most `entries` may be queued between two
 * submits; mh and what it points to must stay valid until
 * wschat__uring_submit() returns. */
void wschat__uring_sendmsg(wschat__uring *u, int fd, int fixed,
                           const struct msghdr *mh, int flags,
                           uint64_t user_data);

/* The same for one buffer, as a send (no message header for the kernel
 * to copy in). With `fixed` (either call), fd names a slot of the
 * registered table (wschat__uring_file_set), which saves the kernel
 * looking the descriptor up and taking a reference on it per request. */
void wschat__uring_send(wschat__uring *u, int fd, int fixed, const void *buf,
                        size_t len, int flags, uint64_t user_data);

/* Registered descriptors. files_init sets up an empty table of `slots`
 * (slot n is for descriptor n); file_set(fd, 1) puts fd in slot fd and
 * file_set(fd, 0) empties it again. A registered socket stays open
 * (and its FIN unsent) while it is in the table, so empty its slot
 * before closing it. 0, or a negative errno. */
int wschat__uring_files_init(wschat__uring *u, unsigned slots);
int wschat__uring_file_set(wschat__uring *u, int fd, int on);

/* For requests the ring's own calls do not cover (the load generator's
 * reads): the next submission entry (a struct io_uring_sqe), zeroed, for
 * the caller to fill in; NULL when `entries` are queued already. */
void *wschat__uring_sqe(wschat__uring *u);

/* Submit what is queued without waiting for any of it, and with
 * `getevents` run the work the kernel deferred to this task
 * (IORING_SETUP_DEFER_TASKRUN). What was submitted (>= 0), or a negative
 * errno, in which case nothing queued was taken. */
int wschat__uring_enter(wschat__uring *u, int getevents);

/* Hand every completion posted so far to fn(arg, user_data, res, flags),
 * in order; returns how many. fn may queue and enter again. */
unsigned wschat__uring_reap(wschat__uring *u,
                            void (*fn)(void *arg, uint64_t user_data, int res,
                                       unsigned flags),
                            void *arg);

/* io_uring_register(2) on the ring: 0 or a negative errno. */
int wschat__uring_register(wschat__uring *u, unsigned op, void *arg,
                           unsigned n);

/* Submit what is queued and wait for all of it. done(arg, user_data, res)
 * is called once per request that completed, res being the byte count or
 * a negative errno. Returns 0 when every request completed; a negative
 * errno when the ring took none of them (nothing was sent, done was not
 * called: write them another way); WSCHAT__URING_LOST when waiting for
 * them failed, so what became of those not reported is unknown. */
#define WSCHAT__URING_LOST 1
int wschat__uring_submit(wschat__uring *u,
                         void (*done)(void *arg, uint64_t user_data, int res),
                         void *arg);

#endif
