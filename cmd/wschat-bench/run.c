/*
 * run.c - the load: what each mode sends, what it checks in what comes
 * back, the phases of a run and its summary line.
 *
 * A run opens its connections (SETUP; at most OPEN_CONCURRENCY between
 * connect and ready at a time), puts the load on (WARMUP, then the
 * measured window MEASURE), stops adding load (DRAIN) until everything in
 * flight has come back or the drain time is over, and prints one line.
 *
 * Every message carries "SEQ:SENDER:TSNS:" at the start of its payload.
 * A message counts in the window when its TSNS (its send time) falls in
 * it, whenever it arrives: `sent` and `deliveries` then describe the same
 * messages, deliveries == sent x receivers exactly when nothing was lost,
 * and the rate is what the server absorbed during the window. Each
 * receiver keeps, per sender, the next sequence number it expects and the
 * gaps it has seen; a message below that number fills a gap (out of
 * order) or is a duplicate, and what is still missing after the drain
 * (gaps, and the tail after the last one received) is lost.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "procfs.h"
#include "wire.h"

#define NS_PER_S         1000000000ULL
#define OPEN_CONCURRENCY 256
/* Past this many gaps in one (receiver, sender) pair, a new gap counts as
 * lost at once instead of being tracked; a message filling it later then
 * counts as a duplicate (an error either way). */
#define MAX_GAPS           4096
#define CONNECT_ATTEMPT_NS (5 * NS_PER_S)
#define HOLD_MIN_NS        (1 * NS_PER_S)
#define HOLD_MAX_NS        (10 * NS_PER_S)

static const char *mode_name(bench_mode m) {
  static const char *const names[] = {"echo", "broadcast", "connect", "idle",
                                      "slow"};
  return names[m];
}

static int is_loaded(const bench *b) {
  return b->phase == PHASE_WARMUP || b->phase == PHASE_MEASURE;
}

static int in_window(const bench *b, uint64_t ts) {
  return ts >= b->t_start && ts < b->t_end;
}

static void finish(bench *b);

static void abort_run(bench *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A failure of the whole run: the reason on stderr, the summary with
 * what was counted, exit status 1. */
static void abort_run(bench *b, const char *fmt, ...) {
  va_list ap;
  if (b->is_finished)
    return;
  fputs("wschat-bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  b->exit_code = 1;
  finish(b);
}

/* ------------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------- */

/* One message from sender c: "SEQ:SENDER:TSNS:" padded with 'x' to the
 * payload size, encoded and masked straight into c's output. */
static void send_message(conn *c) {
  bench *b = c->b;
  char hdr[BENCH_PAYLOAD_HEADER_MAX];
  size_t hl = bench_payload_header(hdr, c->sent, c->index, b->now);
  size_t plen = hl > b->opt.size ? hl : b->opt.size;
  int is_json = b->opt.dialect == BENCH_DIALECT_JSON;
  size_t total = is_json ? b->say_prefix_len + plen + 2 : plen;
  char *p = conn_msg_begin(c, total), *q;

  if (p == NULL)
    return;
  q = p;
  if (is_json) {
    memcpy(q, b->say_prefix, b->say_prefix_len);
    q += b->say_prefix_len;
  }
  memcpy(q, hdr, hl);
  memset(q + hl, 'x', plen - hl);
  if (is_json) {
    q[plen] = '"';
    q[plen + 1] = '}';
  }
  conn_msg_end(c, p, total);
  c->sent++;
  c->inflight++;
  b->sent_total++;
  if (in_window(b, b->now))
    b->sent_window++;
}

/* Top up a sender's messages in flight: echo's --depth, or broadcast's
 * --inflight when it sends as fast as the server absorbs. */
static void refill(conn *c) {
  bench *b = c->b;
  unsigned limit;
  if (!is_loaded(b) || !c->is_sender)
    return;
  if (b->opt.mode == BENCH_ECHO)
    limit = b->opt.depth;
  else if (b->opt.rate == 0)
    limit = b->opt.inflight;
  else
    return;
  while (c->inflight < limit && c->state == CONN_READY)
    send_message(c);
}

static void send_join(conn *c) {
  bench *b = c->b;
  char msg[128];
  int n = snprintf(msg, sizeof(msg), "{\"type\":\"join\",\"room\":\"%s\"}",
                   b->opt.room);
  char *p = conn_msg_begin(c, (size_t)n);
  if (p == NULL)
    return;
  memcpy(p, msg, (size_t)n);
  conn_msg_end(c, p, (size_t)n);
}

/* --rate: every sender is due floor(elapsed * rate) messages, sender i
 * offset by i / senders of a period so that they do not all send in the
 * same turn. */
static void on_rate_tick(uv_timer_t *t) {
  bench *b = t->data;
  double elapsed;
  unsigned i;

  if (!is_loaded(b))
    return;
  b->now = bench_now();
  elapsed = (double)(b->now - b->t_load) / NS_PER_S;
  for (i = 0; i < b->nsenders; i++) {
    conn *c = &b->conns[i];
    uint64_t due = (uint64_t)(elapsed * b->opt.rate + 1.0 -
                              (double)i / (double)b->nsenders);
    while (c->sent < due && c->state == CONN_READY)
      send_message(c);
  }
}

/* ------------------------------------------------------------------------
 * Receiving: sequence tracking
 * ---------------------------------------------------------------------- */

static int gap_add(bench *b, bench_track *t, uint64_t lo, uint64_t hi) {
  if (t->ngaps == MAX_GAPS) {
    b->lost += hi - lo;
    return 0;
  }
  if (t->ngaps == t->capgaps) {
    uint32_t cap = t->capgaps != 0 ? t->capgaps * 2 : 4;
    bench_gap *g = realloc(t->gaps, cap * sizeof(*g));
    if (g == NULL)
      return -1;
    t->gaps = g;
    t->capgaps = cap;
  }
  t->gaps[t->ngaps].lo = lo;
  t->gaps[t->ngaps].hi = hi;
  t->ngaps++;
  return 0;
}

/* seq arrived late: remove it from the gap holding it. Returns 1, or 0
 * when no gap holds it (a duplicate). */
static int gap_fill(bench *b, bench_track *t, uint64_t seq) {
  uint32_t i;
  for (i = 0; i < t->ngaps; i++) {
    bench_gap *g = &t->gaps[i];
    if (seq < g->lo || seq >= g->hi)
      continue;
    if (seq == g->lo) {
      g->lo++;
    } else if (seq == g->hi - 1) {
      g->hi--;
    } else {
      uint64_t hi = g->hi;
      g->hi = seq;
      if (gap_add(b, t, seq + 1, hi) != 0)
        b->errors++;
      g = &t->gaps[i];
    }
    if (g->lo == g->hi)
      t->gaps[i] = t->gaps[--t->ngaps];
    return 1;
  }
  return 0;
}

static void bad_payload(conn *r, const char *why, const char *p, size_t len) {
  bench *b = r->b;
  b->errors++;
  bench_log(b, "connection %u: %s (%zu bytes: \"%.*s\")", r->index, why, len,
            (int)(len < 60 ? len : 60), p);
}

static void on_payload(conn *r, const char *p, size_t len) {
  bench *b = r->b;
  uint64_t seq, ts;
  uint32_t sender;
  size_t hl, want;
  bench_track *t;
  conn *s;

  hl = bench_payload_parse(p, len, &seq, &sender, &ts);
  if (hl == 0) {
    bad_payload(r, "message without a SEQ:SENDER:TSNS: header", p, len);
    return;
  }
  if (b->opt.mode == BENCH_ECHO ? sender != r->index : sender >= b->nsenders) {
    bad_payload(r, "message from an unknown sender", p, len);
    return;
  }
  s = &b->conns[sender];
  want = hl > b->opt.size ? hl : b->opt.size;
  if (len != want) {
    bad_payload(r, "message of the wrong length", p, len);
    return;
  }
  if (seq >= s->sent) {
    bad_payload(r, "message that was never sent", p, len);
    return;
  }
  t = &r->tracks[b->opt.mode == BENCH_ECHO ? 0 : sender];
  if (seq == t->next) {
    t->next++;
  } else if (seq > t->next) {
    if (gap_add(b, t, t->next, seq) != 0)
      b->errors++;
    t->next = seq + 1;
  } else if (gap_fill(b, t, seq)) {
    b->out_of_order++;
  } else {
    b->dup++;
    return;
  }
  b->received_total++;
  if (in_window(b, ts)) {
    b->deliveries++;
    b->payload_bytes += len;
    bench_hist_add(&b->hist, b->now > ts ? b->now - ts : 0);
  }
  if (r == s) {
    if (s->inflight > 0)
      s->inflight--;
    refill(s);
  }
}

static uint64_t count_lost(bench *b) {
  uint64_t lost = b->lost;
  unsigned r, k;
  unsigned per = b->opt.mode == BENCH_ECHO ? 1 : b->nsenders;
  for (r = 0; r < b->nreceivers; r++) {
    conn *c = &b->conns[r];
    for (k = 0; k < per; k++) {
      const bench_track *t = &c->tracks[k];
      const conn *s = b->opt.mode == BENCH_ECHO ? c : &b->conns[k];
      uint32_t g;
      if (s->sent > t->next)
        lost += s->sent - t->next;
      for (g = 0; g < t->ngaps; g++)
        lost += t->gaps[g].hi - t->gaps[g].lo;
    }
  }
  return lost;
}

/* ------------------------------------------------------------------------
 * Phases
 * ---------------------------------------------------------------------- */

static void start_slot(conn *c) {
  bench *b = c->b;
  b->active++;
  if (conn_start(c) != 0 && !c->is_handle_open)
    b->active--;
}

static void on_drain_end(uv_timer_t *t) {
  finish(t->data);
}

static void on_measure_end(uv_timer_t *t) {
  bench *b = t->data;
  unsigned i;
  uint64_t drain_ms = 1000;

  b->now = bench_now();
  b->phase = PHASE_DRAIN;
  b->t_end = b->now;
  if (b->opt.server_pid != 0)
    b->cpu_end = bench_proc_cpu_seconds(b->opt.server_pid);
  uv_timer_stop(&b->rate_timer);
  if (b->opt.mode == BENCH_CONNECT) {
    drain_ms = 2000;
  } else if (b->opt.mode == BENCH_SLOW) {
    /* Reading what the slow receivers left unread tells whether the
     * server closed them. */
    drain_ms = 3000;
    for (i = b->nreceivers; i < b->nconns; i++)
      if (b->conns[i].state == CONN_PAUSED)
        conn_resume(&b->conns[i]);
  }
  uv_timer_start(&b->phase_timer, on_drain_end, drain_ms, 0);
}

static void begin_measure(bench *b) {
  b->now = bench_now();
  b->phase = PHASE_MEASURE;
  b->t_start = b->now;
  if (b->opt.server_pid != 0)
    b->cpu_start = bench_proc_cpu_seconds(b->opt.server_pid);
  uv_timer_start(&b->phase_timer, on_measure_end,
                 (uint64_t)(b->opt.duration * 1000 + 0.5), 0);
}

static void on_warmup_end(uv_timer_t *t) {
  begin_measure(t->data);
}

static void start_load(bench *b) {
  unsigned i;

  b->now = bench_now();
  b->t_load = b->now;
  b->phase = PHASE_WARMUP;
  if (b->opt.mode == BENCH_CONNECT) {
    for (i = 0; i < b->nconns; i++)
      start_slot(&b->conns[i]);
  } else if (b->opt.mode != BENCH_ECHO && b->opt.rate > 0) {
    double period_ms = 1000.0 / (b->opt.rate * b->nsenders);
    uint64_t tick = period_ms < 1    ? 1
                    : period_ms > 10 ? 10
                                     : (uint64_t)period_ms;
    uv_timer_start(&b->rate_timer, on_rate_tick, 0, tick);
  } else {
    for (i = 0; i < b->nsenders; i++)
      refill(&b->conns[i]);
  }
  if (b->opt.warmup > 0)
    uv_timer_start(&b->phase_timer, on_warmup_end,
                   (uint64_t)(b->opt.warmup * 1000 + 0.5), 0);
  else
    begin_measure(b);
}

static void start_hold(bench *b) {
  b->phase = PHASE_HOLD;
  b->now = bench_now();
  b->t_load = b->now;
  b->hold_deadline = b->now + HOLD_MAX_NS;
  b->nrss_samples = 0;
}

/* Every connection is ready or has failed. */
static void setup_done(bench *b) {
  if (b->opt.mode == BENCH_IDLE) {
    start_hold(b);
    return;
  }
  if (b->setup_failed > 0) {
    abort_run(b, "%u of %u connections could not be opened", b->setup_failed,
              b->nconns);
    return;
  }
  start_load(b);
}

static void became_ready(conn *c) {
  bench *b = c->b;
  c->state = CONN_READY;
  c->deadline = 0;
  b->opening--;
  b->ready++;
  if (c->is_slow)
    conn_pause(c);
  if (b->ready + b->setup_failed == b->nconns)
    setup_done(b);
}

static void open_more(bench *b) {
  while (b->phase == PHASE_SETUP && b->opening < OPEN_CONCURRENCY &&
         b->next_to_open < b->nconns) {
    conn *c = &b->conns[b->next_to_open++];
    b->opening++;
    conn_start(c);
  }
}

/* Whether nothing is left in flight. */
static int is_drained(const bench *b) {
  unsigned i;
  switch (b->opt.mode) {
  case BENCH_ECHO:
    return b->received_total == b->sent_total;
  case BENCH_BROADCAST:
    return b->received_total == b->sent_total * b->nreceivers;
  case BENCH_SLOW:
    if (b->received_total != b->sent_total * b->nreceivers)
      return 0;
    for (i = b->nreceivers; i < b->nconns; i++)
      if (b->conns[i].is_handle_open && b->conns[i].state != CONN_DEAD)
        return 0;
    return 1;
  case BENCH_CONNECT:
    return b->active == 0;
  default:
    return 0;
  }
}

void run_after_turn(bench *b) {
  conn_flush_all(b);
  bench_recv_submit(b);
  if (b->phase == PHASE_SETUP)
    open_more(b);
  else if (b->phase == PHASE_DRAIN && is_drained(b))
    finish(b);
}

/* idle: the server's RSS counts as settled once it moved by less than
 * 64 kB (or 0.5%) over the last second. */
static void hold_sample(bench *b) {
  long rss, lo, hi;
  unsigned i, n = sizeof(b->rss_samples) / sizeof(b->rss_samples[0]);

  if (b->opt.server_pid == 0) {
    if (b->now - b->t_load >= HOLD_MIN_NS)
      finish(b);
    return;
  }
  rss = bench_proc_rss_kb(b->opt.server_pid);
  if (rss < 0) {
    abort_run(b, "--server-pid: cannot read /proc/%ld/status",
              (long)b->opt.server_pid);
    return;
  }
  b->rss_after_kb = rss;
  b->rss_samples[b->nrss_samples++ % n] = rss;
  if (b->nrss_samples < n) /* not a second yet */
    return;
  lo = hi = b->rss_samples[0];
  for (i = 1; i < n; i++) {
    if (b->rss_samples[i] < lo)
      lo = b->rss_samples[i];
    if (b->rss_samples[i] > hi)
      hi = b->rss_samples[i];
  }
  if (hi - lo <= 64 || hi - lo <= hi / 200) {
    finish(b);
  } else if (b->now > b->hold_deadline) {
    bench_log(b, "the server's RSS did not settle in %llu s; last %ld kB",
              (unsigned long long)(HOLD_MAX_NS / NS_PER_S), rss);
    finish(b);
  }
}

static const char *state_name(conn_state s) {
  switch (s) {
  case CONN_CONNECTING:
    return "connecting";
  case CONN_HANDSHAKE:
    return "waiting for the 101";
  case CONN_JOINING:
    return "waiting for the welcome and the join's history";
  case CONN_CLOSING:
    return "waiting for the close reply";
  case CONN_CLOSED_WS:
    return "waiting for the server to close TCP after the close handshake";
  default:
    return "open";
  }
}

static void on_tick(uv_timer_t *t) {
  bench *b = t->data;
  unsigned i;

  b->now = bench_now();
  for (i = 0; i < b->nconns && !b->is_finished; i++) {
    conn *c = &b->conns[i];
    if (c->deadline != 0 && b->now > c->deadline && c->is_handle_open &&
        c->state != CONN_DEAD) {
      char msg[128];
      snprintf(msg, sizeof(msg), "timed out %s", state_name(c->state));
      conn_fail(c, msg, 0);
    }
  }
  if (b->is_finished)
    return;
  if (b->phase == PHASE_SETUP && b->now > b->setup_deadline) {
    abort_run(b, "setup: only %u of %u connections ready after %llu s",
              b->ready, b->nconns,
              (unsigned long long)((b->now - b->t_load) / NS_PER_S));
    return;
  }
  if (b->opt.mode == BENCH_SLOW && b->opt.server_pid != 0 &&
      b->phase != PHASE_SETUP) {
    long rss = bench_proc_rss_kb(b->opt.server_pid);
    if (rss > b->rss_max_kb)
      b->rss_max_kb = rss;
  }
  if (b->phase == PHASE_HOLD)
    hold_sample(b);
}

/* ------------------------------------------------------------------------
 * Events from conn.c
 * ---------------------------------------------------------------------- */

void run_on_open(conn *c) {
  bench *b = c->b;
  if (b->opt.mode == BENCH_CONNECT) {
    conn_send_close(c, 1000);
    c->state = b->opt.proto == BENCH_PROTO_RAW ? CONN_CLOSED_WS : CONN_CLOSING;
    c->deadline = b->now + CONNECT_ATTEMPT_NS;
    return;
  }
  if (b->opt.dialect == BENCH_DIALECT_JSON) {
    c->state = CONN_JOINING;
    return;
  }
  became_ready(c);
}

static int slice_is(const char *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* wschatd's JSON dialect: the welcome, the join's history, `message`
 * events; every other event type is ignored, except `error`. */
static void on_json(conn *c, const char *p, size_t len) {
  bench *b = c->b;
  const char *type, *text;
  size_t tlen, xlen;
  int is_fast = bench_json_message_text(p, len, &text, &xlen);

  if (!is_fast && bench_json_string(p, len, "type", &type, &tlen) != 1) {
    bad_payload(c, "frame that is not a JSON event", p, len);
    return;
  }
  if (is_fast || slice_is(type, tlen, "message")) {
    if (c->state != CONN_READY || b->opt.mode == BENCH_IDLE ||
        b->opt.mode == BENCH_CONNECT)
      return;
    if (!is_fast && bench_json_string(p, len, "text", &text, &xlen) != 1) {
      bad_payload(c, "message event without a text", p, len);
      return;
    }
    on_payload(c, text, xlen);
  } else if (slice_is(type, tlen, "welcome")) {
    if (c->state != CONN_JOINING)
      return;
    if (b->opt.mode == BENCH_IDLE)
      became_ready(c);
    else
      send_join(c);
  } else if (slice_is(type, tlen, "history")) {
    if (c->state == CONN_JOINING)
      became_ready(c);
  } else if (slice_is(type, tlen, "error")) {
    if (c->state == CONN_JOINING) {
      char msg[200];
      snprintf(msg, sizeof(msg), "join: %.*s", (int)(len < 150 ? len : 150), p);
      conn_fail(c, msg, 0);
    } else {
      bad_payload(c, "error event from the server", p, len);
    }
  }
}

void run_on_message(conn *c, const char *p, size_t len) {
  bench *b = c->b;
  if (c->state != CONN_READY && c->state != CONN_JOINING)
    return;
  if (b->opt.dialect == BENCH_DIALECT_JSON)
    on_json(c, p, len);
  else if (c->state == CONN_READY &&
           (b->opt.mode == BENCH_ECHO || b->opt.mode == BENCH_BROADCAST ||
            b->opt.mode == BENCH_SLOW))
    on_payload(c, p, len);
}

static int slow_is_waiting(const conn *c) {
  return c->is_slow && (c->state == CONN_PAUSED || c->state == CONN_SLOW_DRAIN);
}

static void count_slow_closed(conn *c) {
  if (!c->is_counted) {
    c->is_counted = 1;
    c->b->slow_closed++;
  }
}

void run_on_server_close(conn *c, int code, const char *reason,
                         size_t reason_len) {
  char msg[200];
  if (c->state == CONN_CLOSING) {
    c->state = CONN_CLOSED_WS;
    c->deadline = c->b->now + 2 * NS_PER_S;
    return;
  }
  if (slow_is_waiting(c)) {
    count_slow_closed(c);
    conn_close(c);
    return;
  }
  snprintf(msg, sizeof(msg), "the server closed the connection: %d \"%.*s\"",
           code, (int)(reason_len < 100 ? reason_len : 100), reason);
  conn_fail(c, msg, 0);
}

void run_on_eof(conn *c, int err) {
  bench *b = c->b;
  if (c->state == CONN_CLOSED_WS) {
    /* connect: the close handshake is done and the server closed first,
     * as RFC 6455 7.1.1 asks. */
    if (!c->is_counted) {
      c->is_counted = 1;
      if (in_window(b, b->now))
        b->handshakes++;
    }
    conn_close(c);
    return;
  }
  if (slow_is_waiting(c)) {
    count_slow_closed(c);
    conn_close(c);
    return;
  }
  if (err == UV_EOF)
    conn_fail(c, "the server closed the connection (EOF)", 0);
  else
    conn_fail(c, "read", err);
}

void run_on_failure(conn *c, const char *what) {
  bench *b = c->b;
  if (b->phase == PHASE_DONE)
    return;
  bench_log(b, "connection %u: %s", c->index, what);
  if (b->opt.mode == BENCH_CONNECT) {
    if (!c->is_counted) {
      c->is_counted = 1;
      b->failed++;
    }
    return;
  }
  switch (c->state) {
  case CONN_IDLE:
  case CONN_CONNECTING:
  case CONN_HANDSHAKE:
  case CONN_JOINING:
    b->opening--;
    b->setup_failed++;
    if (b->opt.mode == BENCH_IDLE)
      b->failed++;
    if (b->phase == PHASE_SETUP && b->ready + b->setup_failed == b->nconns)
      setup_done(b);
    return;
  default:
    break;
  }
  if (slow_is_waiting(c))
    count_slow_closed(c);
  else if (b->opt.mode == BENCH_IDLE)
    b->failed++;
  else
    b->errors++;
}

void run_on_closed(conn *c) {
  bench *b = c->b;
  if (b->opt.mode != BENCH_CONNECT)
    return;
  b->active--;
  if (is_loaded(b))
    start_slot(c);
}

/* ------------------------------------------------------------------------
 * The summary
 * ---------------------------------------------------------------------- */

static const char *fmt_us(char *buf, size_t cap, const bench *b, double q) {
  if (b->hist.count == 0)
    return "-";
  snprintf(buf, cap, "%.1f", (double)bench_hist_quantile(&b->hist, q) / 1e3);
  return buf;
}

static const char *fmt_cpu(char *buf, size_t cap, double cpu) {
  if (cpu < 0)
    return "-";
  snprintf(buf, cap, "%.2f", cpu);
  return buf;
}

static const char *fmt_per_cpu(char *buf, size_t cap, double count,
                               double cpu) {
  if (cpu <= 0)
    return "-";
  snprintf(buf, cap, "%.0f", count / cpu);
  return buf;
}

static const char *fmt_kb(char *buf, size_t cap, long kb) {
  if (kb < 0)
    return "-";
  snprintf(buf, cap, "%ld", kb);
  return buf;
}

/* Print the summary line; returns whether correctness held, explaining
 * on stderr when it did not. */
static int report(bench *b) {
  const bench_options *o = &b->opt;
  double secs = b->t_start != BENCH_NO_TIME && b->t_end != BENCH_NO_TIME
                    ? (double)(b->t_end - b->t_start) / NS_PER_S
                    : 0;
  double cpu = o->server_pid != 0 && b->cpu_start >= 0 && b->cpu_end >= 0 &&
                       b->t_end != BENCH_NO_TIME && b->t_start != BENCH_NO_TIME
                   ? b->cpu_end - b->cpu_start
                   : -1;
  double per_s = secs > 0 ? 1 / secs : 0;
  char p50[32], p99[32], p999[32], cpus[32], percpu[32], k1[32], k2[32];
  uint64_t lost = 0;
  int is_ok = 1;

  if (o->mode == BENCH_ECHO || o->mode == BENCH_BROADCAST ||
      o->mode == BENCH_SLOW)
    lost = count_lost(b);

  switch (o->mode) {
  case BENCH_ECHO: {
    uint64_t errors = lost + b->out_of_order + b->dup + b->errors;
    printf("wschat-bench echo: conns=%u depth=%u size=%zu secs=%.2f "
           "msgs=%llu msgs_per_s=%.0f mb_per_s=%.2f p50_us=%s p99_us=%s "
           "p999_us=%s server_cpu_s=%s msgs_per_cpu_s=%s errors=%llu\n",
           o->connections, o->depth, o->size, secs,
           (unsigned long long)b->deliveries, (double)b->deliveries * per_s,
           (double)b->payload_bytes * per_s / 1e6,
           fmt_us(p50, sizeof(p50), b, 0.5), fmt_us(p99, sizeof(p99), b, 0.99),
           fmt_us(p999, sizeof(p999), b, 0.999), fmt_cpu(cpus, 32, cpu),
           fmt_per_cpu(percpu, 32, (double)b->deliveries, cpu),
           (unsigned long long)errors);
    if (errors > 0) {
      fprintf(stderr,
              "wschat-bench: echo failed: lost=%llu out_of_order=%llu "
              "dup=%llu other errors=%llu\n",
              (unsigned long long)lost, (unsigned long long)b->out_of_order,
              (unsigned long long)b->dup, (unsigned long long)b->errors);
      is_ok = 0;
    } else if (b->deliveries == 0) {
      fputs("wschat-bench: no message made the round trip in the window\n",
            stderr);
      is_ok = 0;
    }
    break;
  }
  case BENCH_BROADCAST:
    printf("wschat-bench broadcast: conns=%u senders=%u rate=%g size=%zu "
           "secs=%.2f sent=%llu deliveries=%llu deliveries_per_s=%.0f "
           "p50_us=%s p99_us=%s lost=%llu out_of_order=%llu dup=%llu "
           "server_cpu_s=%s deliveries_per_cpu_s=%s\n",
           o->connections, o->senders, o->rate, o->size, secs,
           (unsigned long long)b->sent_window,
           (unsigned long long)b->deliveries, (double)b->deliveries * per_s,
           fmt_us(p50, sizeof(p50), b, 0.5), fmt_us(p99, sizeof(p99), b, 0.99),
           (unsigned long long)lost, (unsigned long long)b->out_of_order,
           (unsigned long long)b->dup, fmt_cpu(cpus, 32, cpu),
           fmt_per_cpu(percpu, 32, (double)b->deliveries, cpu));
    break;
  case BENCH_SLOW:
    printf("wschat-bench slow: conns=%u slow=%u senders=%u rate=%g size=%zu "
           "deliveries=%llu p50_us=%s p99_us=%s lost=%llu out_of_order=%llu "
           "dup=%llu slow_closed=%llu rss_max_kb=%s\n",
           o->connections, o->slow, o->senders, o->rate, o->size,
           (unsigned long long)b->deliveries, fmt_us(p50, sizeof(p50), b, 0.5),
           fmt_us(p99, sizeof(p99), b, 0.99), (unsigned long long)lost,
           (unsigned long long)b->out_of_order, (unsigned long long)b->dup,
           (unsigned long long)b->slow_closed,
           fmt_kb(k1, sizeof(k1), o->server_pid != 0 ? b->rss_max_kb : -1));
    if (b->slow_closed < o->slow)
      fprintf(stderr,
              "wschat-bench: note: the server closed %llu of %u slow "
              "receivers\n",
              (unsigned long long)b->slow_closed, o->slow);
    break;
  case BENCH_CONNECT:
    printf("wschat-bench connect: conns=%u secs=%.2f handshakes=%llu "
           "handshakes_per_s=%.0f failed=%llu server_cpu_s=%s "
           "handshakes_per_cpu_s=%s\n",
           o->connections, secs, (unsigned long long)b->handshakes,
           (double)b->handshakes * per_s, (unsigned long long)b->failed,
           fmt_cpu(cpus, 32, cpu),
           fmt_per_cpu(percpu, 32, (double)b->handshakes, cpu));
    if (b->failed > 0) {
      fprintf(stderr, "wschat-bench: %llu connection attempts failed\n",
              (unsigned long long)b->failed);
      is_ok = 0;
    } else if (b->handshakes == 0) {
      fputs("wschat-bench: no handshake completed in the window\n", stderr);
      is_ok = 0;
    }
    break;
  case BENCH_IDLE: {
    int has_rss = o->server_pid != 0 && b->rss_before_kb >= 0 &&
                  b->rss_after_kb >= 0 && b->ready > 0;
    char per[32];
    if (has_rss)
      snprintf(per, sizeof(per), "%lld",
               (long long)(b->rss_after_kb - b->rss_before_kb) * 1024 /
                   (long long)b->ready);
    printf("wschat-bench idle: conns=%u opened=%u failed=%llu "
           "rss_before_kb=%s rss_after_kb=%s bytes_per_conn=%s\n",
           o->connections, b->ready, (unsigned long long)b->failed,
           fmt_kb(k1, sizeof(k1), o->server_pid != 0 ? b->rss_before_kb : -1),
           fmt_kb(k2, sizeof(k2), o->server_pid != 0 ? b->rss_after_kb : -1),
           has_rss ? per : "-");
    if (b->failed > 0 || b->ready < o->connections) {
      fprintf(stderr,
              "wschat-bench: %u of %u connections opened, %llu failed\n",
              b->ready, o->connections, (unsigned long long)b->failed);
      is_ok = 0;
    }
    break;
  }
  }
  if (o->mode == BENCH_BROADCAST || o->mode == BENCH_SLOW) {
    if (lost + b->out_of_order + b->dup + b->errors > 0) {
      fprintf(stderr,
              "wschat-bench: %s failed: lost=%llu out_of_order=%llu dup=%llu "
              "other errors=%llu\n",
              mode_name(o->mode), (unsigned long long)lost,
              (unsigned long long)b->out_of_order, (unsigned long long)b->dup,
              (unsigned long long)b->errors);
      is_ok = 0;
    } else if (b->deliveries == 0) {
      fputs("wschat-bench: no delivery in the window\n", stderr);
      is_ok = 0;
    }
  }
  fflush(stdout);
  return is_ok;
}

static void finish(bench *b) {
  unsigned i;
  if (b->is_finished)
    return;
  b->is_finished = 1;
  b->now = bench_now();
  if (!report(b))
    b->exit_code = 1;
  b->phase = PHASE_DONE;
  for (i = 0; i < b->nconns; i++)
    conn_close(&b->conns[i]);
  bench_recv_close(b);
  uv_close((uv_handle_t *)&b->flush_handle, NULL);
  uv_close((uv_handle_t *)&b->phase_timer, NULL);
  uv_close((uv_handle_t *)&b->tick_timer, NULL);
  uv_close((uv_handle_t *)&b->rate_timer, NULL);
}

/* ------------------------------------------------------------------------
 * Set-up and tear-down
 * ---------------------------------------------------------------------- */

static void on_prepare(uv_prepare_t *h) {
  run_after_turn(h->data);
}

static int resolve(const bench_options *o, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)ss) == 0)
    return 0;
  return uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)ss);
}

static int bench_init(bench *b, const bench_options *opt) {
  unsigned i, per;

  b->opt = *opt;
  b->exit_code = 0;
  b->log_budget = 20;
  b->t_start = b->t_end = BENCH_NO_TIME;
  b->cpu_start = b->cpu_end = -1;
  b->rss_before_kb = b->rss_after_kb = b->rss_max_kb = -1;
  b->now = bench_now();
  b->rng = b->now ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
  if (b->rng == 0)
    b->rng = 1;
  if (resolve(opt, &b->addr) != 0)
    return -1;

  b->nconns = opt->connections + (opt->mode == BENCH_SLOW ? opt->slow : 0);
  switch (opt->mode) {
  case BENCH_ECHO:
    b->nreceivers = opt->connections;
    b->nsenders = opt->connections;
    per = 1;
    break;
  case BENCH_BROADCAST:
  case BENCH_SLOW:
    b->nreceivers = opt->connections;
    b->nsenders = opt->senders;
    per = opt->senders;
    break;
  default:
    b->nreceivers = b->nsenders = per = 0;
  }
  b->conns = calloc(b->nconns, sizeof(*b->conns));
  if (b->conns == NULL)
    return -1;
  if (b->nreceivers > 0) {
    bench_track *tracks = calloc((size_t)b->nreceivers * per, sizeof(*tracks));
    if (tracks == NULL)
      return -1;
    for (i = 0; i < b->nreceivers; i++)
      b->conns[i].tracks = tracks + (size_t)i * per;
  }
  for (i = 0; i < b->nconns; i++) {
    conn *c = &b->conns[i];
    c->b = b;
    c->index = i;
    c->is_sender = i < b->nsenders;
    c->is_slow = opt->mode == BENCH_SLOW && i >= opt->connections;
  }
  if (opt->dialect == BENCH_DIALECT_JSON)
    b->say_prefix_len = (size_t)snprintf(
        b->say_prefix, sizeof(b->say_prefix),
        "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"", opt->room);
  return 0;
}

static void bench_free(bench *b) {
  unsigned i, k, per = b->opt.mode == BENCH_ECHO ? 1 : b->nsenders;
  if (b->conns == NULL)
    return;
  for (i = 0; i < b->nconns; i++) {
    conn *c = &b->conns[i];
    bench_buf_free(&c->out[0]);
    bench_buf_free(&c->out[1]);
    bench_buf_free(&c->in);
    bench_buf_free(&c->frag);
    if (c->tracks != NULL)
      for (k = 0; k < per; k++)
        free(c->tracks[k].gaps);
  }
  if (b->nreceivers > 0)
    free(b->conns[0].tracks);
  free(b->conns);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int bench_run(const bench_options *opt) {
  bench *b = calloc(1, sizeof(*b));
  uv_loop_t loop;
  int rc;

  if (b == NULL || bench_init(b, opt) != 0) {
    fputs("wschat-bench: out of memory\n", stderr);
    if (b != NULL)
      bench_free(b);
    free(b);
    return 1;
  }
  raise_fd_limit();
  if (uv_loop_init(&loop) != 0) {
    fputs("wschat-bench: cannot create the event loop\n", stderr);
    bench_free(b);
    free(b);
    return 1;
  }
  b->loop = &loop;
  conn_batch_init(b);
  bench_recv_init(b);
  uv_prepare_init(&loop, &b->flush_handle);
  uv_timer_init(&loop, &b->phase_timer);
  uv_timer_init(&loop, &b->tick_timer);
  uv_timer_init(&loop, &b->rate_timer);
  b->flush_handle.data = b->phase_timer.data = b->tick_timer.data =
      b->rate_timer.data = b;
  uv_prepare_start(&b->flush_handle, on_prepare);
  uv_timer_start(&b->tick_timer, on_tick, 100, 100);

  if (opt->server_pid != 0)
    b->rss_before_kb = b->rss_max_kb = bench_proc_rss_kb(opt->server_pid);
  b->t_load = b->now;
  b->setup_deadline = b->now + (30 + b->nconns / 100) * NS_PER_S;
  if (opt->mode == BENCH_CONNECT)
    start_load(b);
  else
    open_more(b);

  uv_run(&loop, UV_RUN_DEFAULT);
  rc = b->exit_code;
  conn_batch_free(b);
  bench_free(b);
  free(b);
  if (uv_loop_close(&loop) != 0)
    fputs("wschat-bench: handles left open at exit\n", stderr);
  return rc;
}
