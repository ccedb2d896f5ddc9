/*
 * net.h - the server and session structures shared by server.c and
 * session.c, and the internal entry points the chat layer will use.
 */
#ifndef WSCHAT_NET_NET_H
#define WSCHAT_NET_NET_H

#include <stdatomic.h>
#include <sys/resource.h>
#include <uv.h>

#include "core/slab.h"
#include "core/strmap.h"
#include "net/iplimit.h"
#include "net/uring.h"
#include "net/wbuf.h"
#include "proto/fragment.h"
#include "proto/handshake.h"
#include "wschat.h"

/* An intrusive doubly linked list link; an unlinked node points to
 * itself. */
typedef struct wschat__link {
  struct wschat__link *prev;
  struct wschat__link *next;
} wschat__link;

static inline void wschat__link_init(wschat__link *l) {
  l->prev = l->next = l;
}
static inline int wschat__link_empty(const wschat__link *l) {
  return l->next == l;
}
static inline void wschat__link_insert_tail(wschat__link *head,
                                            wschat__link *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static inline void wschat__link_remove(wschat__link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

#define WSCHAT__CONTAINER_OF(ptr, type, member)                                \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Size of the loop-wide read buffer, and of the pooled chunks small frames
 * are coalesced into. */
#define WSCHAT__READ_BUF_SIZE (64 * 1024)
#define WSCHAT__CHUNK_SIZE    (16 * 1024)
/* Up to 16 MiB of chunks kept for reuse under load (fresh memory for
 * every chunk costs page faults and cache misses: measured, a 4 KiB echo
 * ran at less than half the speed with a 256-chunk pool); chunks a sweep
 * interval did not need are given back (server_on_sweep). */
#define WSCHAT__CHUNK_POOL_MAX 1024
/* Frames up to this size are copied into the server's current chunk
 * (shared by every session that writes during a turn); larger ones get a
 * wbuf of their own. */
#define WSCHAT__COALESCE_MAX (WSCHAT__CHUNK_SIZE / 2)
/* Connections over the limit that are still being sent their 503. */
#define WSCHAT__MAX_REJECTING 64
/* TCP_DEFER_ACCEPT on the listener, in seconds (server_defer_accept). */
#define WSCHAT__DEFER_ACCEPT_S 1
/* While the server stops, no session takes longer than this to close. */
#define WSCHAT__STOP_TIMEOUT 1000
/* iovecs handed to one write call. */
#define WSCHAT__IOV_BATCH 64
/* A session's write queue starts with this many segments; a queue of this
 * size that empties goes back to the server's pool, so an idle session
 * holds none and a busy one does not malloc per turn. */
#define WSCHAT__QUEUE_INITIAL  8
#define WSCHAT__QUEUE_POOL_MAX 1024
/* Finished handshake parsers kept for the next connections: a burst of
 * connections reuses a few instead of scattering freed blocks among the
 * sessions that outlive them. */
#define WSCHAT__HS_POOL_MAX 64
/* The batched flush (lib/net/uring.h): sessions per io_uring_enter(2),
 * and iovecs shared by one batch. */
#define WSCHAT__URING_ENTRIES 256
#define WSCHAT__URING_IOVS    2048
/* A session's descriptor goes into the ring's table of registered files
 * on its WSCHAT__FIXED_AFTER-th batched send, so that the short-lived
 * (a handshake and a close) never pay the register and unregister calls.
 * The table has a slot per descriptor number up to the descriptor limit,
 * at most WSCHAT__FIXED_SLOTS. */
#define WSCHAT__FIXED_AFTER 4
#define WSCHAT__FIXED_NEVER 7
#define WSCHAT__FIXED_SLOTS 65536

/* One session's send in a batch. */
typedef struct wschat__send_slot {
  wschat_session *session;
  size_t total; /* bytes offered */
  int res;      /* sent, a negative errno, or WSCHAT__SEND_* */
  struct msghdr mh;
} wschat__send_slot;
#define WSCHAT__SEND_NONE    (-0x7fffffff) /* nothing to send */
#define WSCHAT__SEND_PENDING (-0x7ffffffe) /* submitted, no answer yet */

typedef struct wschat__send_batch {
  wschat__send_slot slots[WSCHAT__URING_ENTRIES];
  struct iovec iov[WSCHAT__URING_IOVS];
} wschat__send_batch;
/* Frame readers kept for reuse: one is taken per read that carries frames
 * and given back when the read ends between messages. */
#define WSCHAT__READER_POOL_MAX 1024

typedef enum wschat__session_state {
  WSCHAT__S_HANDSHAKE,  /* reading the request head */
  WSCHAT__S_OPEN,       /* WebSocket open */
  WSCHAT__S_CLOSE_SENT, /* our close frame queued, waiting for the peer's */
  WSCHAT__S_DRAIN, /* sending the last bytes, then FIN, then wait for EOF */
  WSCHAT__S_DEAD   /* uv_close() called; freed in its callback */
} wschat__session_state;

/* One stretch of a wbuf waiting in a session's write queue. */
typedef struct wschat__out_seg {
  wschat__wbuf *wb;
  size_t off;
  size_t len;
} wschat__out_seg;

typedef struct wschat__wreq wschat__wreq;

/* A session's write queue: a ring of segments, and the write in flight.
 * Held only while the session has output (an empty queue of the initial
 * size goes back to the server's pool), so an idle session pays one
 * pointer for it. The first `inflight` segments from `head` are owned by
 * the uv_write in progress. */
typedef struct wschat__outq {
  uint64_t queued_bytes; /* unsent bytes, in flight included */
  wschat__wreq *wreq;    /* the write in flight, or NULL */
  uint32_t head;
  uint32_t count;
  uint32_t cap;
  uint32_t inflight;
  wschat__out_seg seg[];
} wschat__outq;

/* A write request, taken from the server's pool for the one write a
 * session may have in flight: sessions with nothing to write (most, most
 * of the time) then carry no uv_write_t. */
struct wschat__wreq {
  uv_write_t req;
  wschat_session *session;
  struct wschat__wreq *next_free;
};
#define WSCHAT__WREQ_POOL_MAX 1024

/* A request path kept for the sessions of a server that takes every
 * path. Sessions that asked for the same path as the one before share a
 * copy (the server keeps a reference to the latest), so a server whose
 * clients all use one path holds one copy, not one per connection. */
typedef struct wschat__shared_path {
  size_t refs;
  char path[];
} wschat__shared_path;

struct wschat_http_request {
  wschat_session *session;
  int responded;
};

/* Field order packs the structure without holes (it is most of an idle
 * connection's memory): pointers and 64-bit fields first, then the
 * 32-bit, then the bytes. */
struct wschat_session {
  uv_tcp_t tcp;      /* first, so a uv_handle_t* is the session; tcp.data is
                        the server (wschat__session_server) */
  wschat__link node; /* server->sessions */
  wschat_session *dirty_next; /* server->dirty list (is_dirty) */
  uint64_t id;
  void *userdata;

  /* The request parser until the upgrade, then our close's reason (for
   * on_close, once we close): never both, told apart by is_open_reported. */
  union {
    wschat__handshake *hs;
    char *close_reason;
  };
  wschat__shared_path *info; /* the path, when the server has none */

  /* The frame reader, from the server's pool: held only while a frame or
   * a fragmented message is partway in (or after a protocol error), so an
   * idle session carries none. */
  wschat__reader *reader;
  uint64_t max_message; /* the server's limit when the session opened */

  wschat__outq *q; /* while there is output, else NULL */

  /* Chat state (lib/chat/room.c). */
  struct wschat__membership *rooms; /* first; linked by next, join order */
  double rate_tokens;

  /* Times are the low 32 bits of the loop's clock (ms), compared modulo
   * 2^32 (wschat__ms_*); the sweep keeps the ones it measures idleness by
   * within WSCHAT__MS_HORIZON of now, so no difference wraps. */
  uint32_t deadline;    /* handshake / close / drain deadline */
  uint32_t last_rx;     /* the last bytes received */
  uint32_t last_ping;   /* the last keepalive ping */
  uint32_t rate_refill; /* the last refill of rate_tokens */
  uint32_t subprotocol; /* 1 + its index in server->subprotocols, or 0 */

  wschat__ipkey ip_key; /* the peer's address, when counted */
  char name[33];        /* "" until on_open */

  uint8_t state;                  /* wschat__session_state */
  uint8_t close_reason_len;       /* at most 123 */
  int16_t close_code;             /* our close's code, 0 for none */
  unsigned is_open_reported : 1;  /* on_open ran (hs gave way to
                                     close_reason) */
  unsigned is_close_reported : 1; /* on_close ran */
  unsigned is_rejecting : 1;      /* counted in server->nrejecting */
  unsigned is_slow : 1;           /* output passed max_queued */
  unsigned is_shutdown_sent : 1;  /* uv_shutdown() issued */
  unsigned is_eof : 1;            /* the peer closed its side */
  unsigned is_peer_closed : 1;    /* the peer's close frame arrived */
  unsigned is_ip_counted : 1;     /* counted in server->iplimit */
  unsigned is_ip_rejected : 1;    /* rejecting: over max_per_ip */
  unsigned has_chunk_segs : 1;    /* the queue may reference shared buffers */
  unsigned is_dirty : 1;          /* in server->dirty */
  unsigned is_send_full : 1;      /* the batched send found the socket full */
  unsigned is_fixed : 1;          /* its descriptor is in the ring's table */
  unsigned nbatched : 3; /* batched sends so far, up to WSCHAT__FIXED_AFTER;
                            WSCHAT__FIXED_NEVER: registering failed */
};

/* Clock arithmetic for the 32-bit session times. Timeouts and intervals
 * are at most a day, far below the horizon, which is far below 2^31. */
#define WSCHAT__MS_HORIZON (UINT32_C(1) << 30)
static inline uint32_t wschat__ms(uint64_t now) {
  return (uint32_t)now;
}
/* Milliseconds from `then` to now. */
static inline uint32_t wschat__ms_since(uint64_t now, uint32_t then) {
  return (uint32_t)now - then;
}
/* Whether time a is later than time b. */
static inline int wschat__ms_after(uint32_t a, uint32_t b) {
  uint32_t d = a - b;
  return d != 0 && d < UINT32_C(0x80000000);
}

static inline wschat_server *wschat__session_server(const wschat_session *s) {
  return (wschat_server *)s->tcp.data;
}

/* A session's place in a room: in the room's member array and in the
 * session's list of rooms. */
typedef struct wschat__membership {
  struct wschat_room *room;
  wschat_session *session;
  struct wschat__membership *next; /* the session's next room */
  uint32_t index;                  /* in room->members */
} wschat__membership;

struct wschat_server {
  uv_loop_t *loop;
  uv_loop_t *own_loop; /* created for wschat_server_run() */
  void *userdata;

  wschat_open_cb on_open;
  wschat_message_cb on_message;
  wschat_close_cb on_close;
  wschat_pong_cb on_pong;
  wschat_origin_cb on_origin;
  wschat_http_cb on_http;
  wschat_accept_error_cb on_accept_error;

  /* Options. */
  uint64_t max_message;
  size_t max_header;
  unsigned max_header_count;
  unsigned max_connections;
  unsigned max_per_ip; /* 0: no per-address limit */
  uint64_t max_queued;
  unsigned handshake_timeout;
  unsigned close_timeout;
  unsigned idle_timeout;
  unsigned ping_interval;
  char *path;
  char **subprotocols;
  size_t n_subprotocols;
  int close_codes[WSCHAT_CLOSE_ON_COUNT_];

  /* Handles. */
  uv_tcp_t listener;
  uv_timer_t sweep;
  uv_check_t flusher;
  uv_idle_t kick; /* keeps poll from blocking while output is pending */
  uv_async_t stopper;
  unsigned handles_open; /* of the five above */
  int is_stop_done;
  int is_listening;
  int is_stopping;
  atomic_int is_stop_requested;

  wschat__link sessions;
  /* Sessions with output to flush at the end of this turn, in the order
   * they queued it: singly linked through dirty_next. A session destroyed
   * while in it stays until the flush passes it (skipped as dead) or its
   * close callback unlinks it. */
  wschat_session *dirty;
  wschat_session *dirty_tail;
  wschat__slab session_slab; /* where sessions live */
  unsigned nsessions;
  unsigned nrejecting;
  wschat__iplimit iplimit; /* connections per client address */
  int is_accept_failing;   /* accepts fail or will: reported once */
  rlim_t nofile_limit;     /* RLIMIT_NOFILE when listening started */
  uint64_t next_session_id;

  /* Chat state (lib/chat/room.c). */
  wschat__strmap names;   /* lower-case-insensitive name -> session */
  wschat__strmap rooms;   /* name -> room */
  wschat__link room_list; /* creation order */
  unsigned nrooms;
  unsigned max_rooms;
  unsigned history_size;
  unsigned rate_per_second;
  unsigned rate_burst;
  uint64_t next_user_number;
  void *chat; /* the built-in protocol's state (lib/chat/message.c) */
  void (*chat_free)(void *chat);

  uint64_t stats[WSCHAT_STAT_COUNT_];
  uint64_t closes[17]; /* [0] other codes, [1 + c - 1000] for 1000..1015 */

  wschat__wreq *wreq_free; /* pool of write requests */
  unsigned nwreq_free;

  uint8_t *read_buf; /* loop-wide: one read is consumed before the next */
  int is_read_buf_busy;
  wschat__wbuf *chunk; /* where small frames are being coalesced */
  wschat__wbuf *pool[WSCHAT__CHUNK_POOL_MAX];
  unsigned npool;
  unsigned npool_min; /* fewest pooled since the last sweep */
  wschat__outq *queue_pool[WSCHAT__QUEUE_POOL_MAX]; /* initial-size */
  unsigned nqueue_pool;
  unsigned nqueue_pool_min;
  wschat__shared_path *last_path; /* the latest session's, shared */
  size_t slab_blocks; /* session_slab.blocks_added + blocks_freed at the
                         last sweep */
  wschat__handshake *hs_pool[WSCHAT__HS_POOL_MAX];
  unsigned nhs_pool;
  unsigned nhs_pool_min;
  wschat__reader *reader_pool[WSCHAT__READER_POOL_MAX];
  unsigned nreader_pool;
  unsigned nreader_pool_min;

  /* Batched sends (set up at the first flush; uring_state 0: not yet,
   * 1: in use, -1: not available or turned off). */
  wschat__uring uring;
  int uring_state;
  wschat__send_batch *batch;
};

/* session.c */
wschat_session *wschat__session_new(wschat_server *server);
void wschat__session_start(wschat_session *s);
void wschat__session_flush(wschat_session *s);
void wschat__session_sweep(wschat_session *s, uint64_t now);
void wschat__session_shutdown(wschat_session *s);
/* Close a session that never started (nothing is reported). */
void wschat__session_close_now(wschat_session *s);
/* End of a loop turn: slow-consumer policy, then flush. */
void wschat__session_turn_end(wschat_session *s);
/* The batched flush (server.c): the iovecs of what s would write now (0
 * when it has nothing to write or a write in flight), the answer of the
 * send (bytes or a negative errno; consumes what was sent), and the rest
 * of the turn's end given that answer. */
size_t wschat__session_send_prepare(wschat_session *s, struct iovec *iov,
                                    unsigned max, unsigned *n);
void wschat__session_sent(wschat_session *s, int res);
/* Whether the connection closes as soon as the n iovecs just prepared
 * are sent: a closing handshake both sides finished, and nothing else
 * queued. The send may then hold its data back (MSG_MORE) so the FIN of
 * the close(2) that follows leaves in the same segment. */
int wschat__session_send_is_last(const wschat_session *s, unsigned n);
void wschat__session_turn_end_sent(wschat_session *s, int res, size_t total);
/* Queue a reference to wb[off, off+len) (a broadcast frame). */
int wschat__session_queue_wbuf(wschat_session *s, wschat__wbuf *wb, size_t off,
                               size_t len);

/* lib/chat/room.c */
void wschat__chat_session_init(wschat_session *s);
/* Name the session at on_open. */
int wschat__chat_session_open(wschat_session *s);
/* After on_close: leave every room, give the name back. Idempotent. */
void wschat__chat_session_gone(wschat_session *s);
void wschat__chat_server_init(wschat_server *srv);
void wschat__chat_server_free(wschat_server *srv);

/* server.c */
void wschat__server_mark_dirty(wschat_server *srv, wschat_session *s);
void wschat__server_session_gone(wschat_server *srv, wschat_session *s);
/* Take a session's descriptor out of the ring's table (is_fixed): before
 * its socket is closed, so that the close sends the FIN at once and the
 * slot is free for the next socket with that number. */
void wschat__server_session_unfix(wschat_server *srv, wschat_session *s);
wschat__wreq *wschat__server_wreq_get(wschat_server *srv);
void wschat__server_wreq_put(wschat_server *srv, wschat__wreq *wreq);
wschat__wbuf *wschat__server_chunk_get(wschat_server *srv);
void wschat__server_chunk_put(wschat_server *srv, wschat__wbuf *wb);
/* A write queue of WSCHAT__QUEUE_INITIAL segments, and back. */
wschat__outq *wschat__server_queue_get(wschat_server *srv);
void wschat__server_queue_put(wschat_server *srv, wschat__outq *q);
/* A handshake parser set up for this server's options, and back. */
wschat__handshake *wschat__server_hs_get(wschat_server *srv);
void wschat__server_hs_put(wschat_server *srv, wschat__handshake *hs);
/* A reference to a shared copy of path, or NULL when out of memory; and
 * giving one back (NULL is ignored). */
wschat__shared_path *wschat__server_path_share(wschat_server *srv,
                                               const char *path);
void wschat__server_path_release(wschat__shared_path *p);
/* A frame reader set up with this message limit, and back (the reader's
 * buffers are released on the way back). */
wschat__reader *wschat__server_reader_get(wschat_server *srv,
                                          uint64_t max_message);
void wschat__server_reader_put(wschat_server *srv, wschat__reader *r);

#endif
