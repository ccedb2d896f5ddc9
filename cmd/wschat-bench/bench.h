/*
 * bench.h - wschat-bench's shared types: the options, one connection,
 * and the run that owns them all. One thread, one libuv loop.
 *
 * conn.c moves bytes: it connects, performs the opening handshake, cuts
 * the stream into messages and batches everything a connection sends in
 * one loop turn into one write. run.c is the load: what each mode sends,
 * what it checks in what comes back, its phases and its summary line.
 * main.c turns the command line into bench_options.
 */
#ifndef WSCHAT_BENCH_BENCH_H
#define WSCHAT_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "hist.h"

typedef enum bench_mode {
  BENCH_ECHO,
  BENCH_BROADCAST,
  BENCH_CONNECT,
  BENCH_IDLE,
  BENCH_SLOW
} bench_mode;

typedef enum bench_proto { BENCH_PROTO_WS, BENCH_PROTO_RAW } bench_proto;

typedef enum bench_dialect {
  BENCH_DIALECT_PLAIN,
  BENCH_DIALECT_JSON
} bench_dialect;

#define BENCH_JSON_SUBPROTOCOL "wschat.v1.json"

typedef struct bench_options {
  bench_mode mode;
  const char *host;
  int port;
  const char *path;
  bench_proto proto;
  bench_dialect dialect;
  const char *room;
  double duration; /* seconds measured */
  double warmup;   /* seconds before the measured window */
  unsigned connections;
  size_t size;       /* payload bytes (the header, if longer, wins) */
  unsigned sources;  /* source addresses 127.0.0.1 .. 127.0.0.N */
  pid_t server_pid;  /* 0: none */
  unsigned depth;    /* echo: messages in flight per connection */
  unsigned senders;  /* broadcast, slow */
  double rate;       /* messages/s per sender; 0 = as fast as absorbed */
  unsigned inflight; /* rate 0: a sender's messages not yet back */
  unsigned slow;     /* slow: receivers that stop reading */
} bench_options;

/* A growable byte buffer, allocated once and reused: no per-message
 * allocation. */
typedef struct bench_buf {
  char *data;
  size_t len;
  size_t cap;
} bench_buf;

/* Gaps in one (receiver, sender) sequence, only allocated when one
 * appears: [lo, hi) not received yet. */
typedef struct bench_gap {
  uint64_t lo;
  uint64_t hi;
} bench_gap;

typedef struct bench_track {
  uint64_t next; /* the sequence number expected next */
  uint32_t ngaps;
  uint32_t capgaps;
  bench_gap *gaps;
} bench_track;

typedef enum conn_state {
  CONN_IDLE,       /* no socket */
  CONN_CONNECTING, /* TCP connect in progress */
  CONN_HANDSHAKE,  /* upgrade request sent, reading the 101 */
  CONN_JOINING,    /* json: waiting for welcome, then history */
  CONN_READY,      /* in the run */
  CONN_CLOSING,    /* our close frame (or FIN, raw) is out: waiting */
  CONN_CLOSED_WS,  /* close reply received: waiting for the server's EOF */
  CONN_PAUSED,     /* slow: not reading */
  CONN_SLOW_DRAIN, /* slow, after the run: reading to find the close */
  CONN_DEAD        /* uv_close() called */
} conn_state;

typedef struct bench bench;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  bench *b;
  struct conn *next_dirty;
  uint64_t deadline; /* ns; 0 = none */
  uint32_t index;
  conn_state state;
  unsigned is_handle_open : 1; /* uv_tcp_init done, close cb pending */
  unsigned is_dirty : 1;       /* on b->dirty */
  unsigned is_writing : 1;     /* a uv_write() in flight */
  unsigned is_sender : 1;
  unsigned is_slow : 1;
  unsigned is_counted : 1; /* slow: closure counted; connect: outcome */
  unsigned out_cur : 1;    /* out[] that takes new bytes */
  unsigned frag_opcode : 4;
  unsigned is_ring_reader : 1; /* reads through b->recv, not libuv */
  unsigned is_recv_armed : 1;  /* its multishot receive is in the ring */
  uint32_t recv_gen;           /* armings so far (in each user_data) */
  bench_buf out[2]; /* one is appended to while the other is written */
  bench_buf in;     /* bytes of a partial frame (or of the 101) */
  bench_buf frag;   /* a fragmented message being reassembled */
  char key[25];     /* Sec-WebSocket-Key */
  /* Sender side. */
  uint64_t sent;     /* next sequence number */
  uint32_t inflight; /* sent, not yet back */
  /* Receiver side: one track per sender (echo: one, its own). */
  bench_track *tracks;
} conn;

typedef enum bench_phase {
  PHASE_SETUP,   /* opening connections */
  PHASE_WARMUP,  /* load on, not counted */
  PHASE_MEASURE, /* the window */
  PHASE_DRAIN,   /* no new load; waiting for what is in flight */
  PHASE_HOLD,    /* idle: waiting for the server's RSS to settle */
  PHASE_DONE
} bench_phase;

#define BENCH_NO_TIME UINT64_MAX

struct bench {
  bench_options opt;
  uv_loop_t *loop;
  conn *conns;
  unsigned nconns;     /* all connections (slow ones included) */
  unsigned nreceivers; /* normal receivers: conns[0 .. nreceivers) */
  unsigned nsenders;
  struct sockaddr_storage addr;
  bench_phase phase;
  int exit_code;
  int is_finished;

  uv_prepare_t flush_handle; /* end of every loop turn: flush, checks */
  uv_timer_t phase_timer;
  uv_timer_t tick_timer; /* 100 ms: deadlines, RSS samples */
  uv_timer_t rate_timer; /* --rate > 0 */
  conn *dirty;
  struct bench_batch *batch; /* batched sends; NULL: one write per conn */
  struct bench_recv *recv;   /* io_uring reads; NULL: libuv reads */
  uint64_t now;              /* CLOCK_MONOTONIC ns, refreshed per callback */
  uint64_t rng;

  /* Setup. */
  unsigned next_to_open;
  unsigned opening; /* connections between connect and ready */
  unsigned ready;
  unsigned setup_failed;
  uint64_t setup_deadline;
  uint64_t t_load; /* when the load started */

  /* The window. */
  uint64_t t_start;
  uint64_t t_end;
  double cpu_start;
  double cpu_end;

  /* Counters. */
  uint64_t sent_total;     /* messages sent, all phases */
  uint64_t sent_window;    /* of which sent in the window */
  uint64_t received_total; /* deliveries of sent messages, dups excluded */
  uint64_t deliveries;     /* of messages sent in the window */
  uint64_t payload_bytes;  /* their payload bytes */
  uint64_t lost;
  uint64_t out_of_order;
  uint64_t dup;
  uint64_t errors;     /* anything else wrong */
  uint64_t handshakes; /* connect: completed in the window */
  uint64_t failed;     /* connect, idle */
  uint64_t slow_closed;
  unsigned active; /* connect: slots with a socket */
  bench_hist hist;

  /* Server memory. */
  long rss_before_kb;
  long rss_after_kb;
  long rss_max_kb;
  long rss_samples[11]; /* idle: the last second, every 100 ms */
  unsigned nrss_samples;
  uint64_t hold_deadline;

  /* The payload prefix and suffix around a JSON say's text. */
  char say_prefix[128];
  size_t say_prefix_len;
  unsigned log_budget; /* error lines left to print */
};

/* conn.c */
uint64_t bench_now(void);
void bench_log(bench *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int conn_start(conn *c);
void conn_close(conn *c);
void conn_fail(conn *c, const char *what, int err);
void conn_flush_all(bench *b);
/* Set up (or, without io_uring or with WSCHAT_IO_URING=0, skip) the
 * batched sends of conn_flush_all(); conn_batch_free() undoes it. */
void conn_batch_init(bench *b);
void conn_batch_free(bench *b);
void conn_pause(conn *c);
void conn_resume(conn *c);
/* n bytes read from c (n < 0: EOF or a read error, as a libuv error). */
void conn_on_bytes(conn *c, const char *p, ssize_t n);

/* recv.c: reads through io_uring. init leaves b->recv NULL where the ring
 * is not available (libuv reads then); close ends it at the end of the
 * run, after the connections. conn_recv_start arms c's receive (0, or a
 * libuv error: read with libuv instead), conn_recv_stop cancels it.
 * bench_recv_submit, at each turn's end, hands the kernel what was
 * armed. */
void bench_recv_init(bench *b);
void bench_recv_close(bench *b);
void bench_recv_submit(bench *b);
int conn_recv_start(conn *c);
void conn_recv_stop(conn *c);
/* Reserve a message of `len` payload bytes in c's output: returns where
 * the payload goes; conn_msg_end() masks it once written. */
char *conn_msg_begin(conn *c, size_t len);
void conn_msg_end(conn *c, char *payload, size_t len);
/* A WebSocket close frame with this code (raw: a FIN). */
void conn_send_close(conn *c, int code);
int bench_buf_reserve(bench_buf *buf, size_t extra);
void bench_buf_free(bench_buf *buf);

/* run.c: events from conn.c. */
void run_on_open(conn *c); /* TCP connected (raw), or the 101 read (ws) */
void run_on_message(conn *c, const char *p, size_t len);
void run_on_closed(conn *c); /* close callback ran: the slot is free */
void run_on_server_close(conn *c, int code, const char *reason,
                         size_t reason_len);
void run_on_eof(conn *c, int err);
void run_on_failure(conn *c, const char *what);
void run_after_turn(bench *b); /* after the flush of every loop turn */

int bench_run(const bench_options *opt);

#endif
