/*
 * ref_lws.c - the libwebsockets reference of `make bench`: a WebSocket
 * echo and broadcast server written the way the libwebsockets
 * documentation and minimal examples teach, against Debian's
 * libwebsockets-dev (4.1).
 *
 *   ref_lws --mode echo|broadcast --port N [--host 127.0.0.1]
 *
 * WebSocket on any path. The only protocol in the list is also the
 * default one, so clients that ask for no subprotocol are accepted. Text
 * comes back as text and binary as binary; messages of up to 64 KiB are
 * reassembled from lws' receive chunks. Text is UTF-8 validated by lws
 * (LWS_SERVER_OPTION_VALIDATE_UTF8), as libwschat does.
 *
 *   echo       each message goes back to its sender, through a
 *              per-connection FIFO drained one message per WRITEABLE
 *              callback (lws allows one lws_write() per callback); a
 *              sender that gets more than ECHO_QUEUE_HIGH messages ahead
 *              of its socket is paused with lws_rx_flow_control().
 *   broadcast  each message goes to every connection, the sender
 *              included: one copy of the message in a vhost-wide
 *              lws_ring, a tail per connection, and
 *              lws_callback_on_writable_all_protocol_vhost(), as in lws'
 *              minimal-ws-server-ring example. Each ring element counts
 *              the receivers still to send it, so the oldest tail moves
 *              in O(1) instead of the example's scan of every
 *              connection per write (quadratic at 10,000 receivers,
 *              which would measure the example, not lws). When the ring
 *              runs low, senders are paused until it drains.
 *
 * It runs lws' default event loop (poll()), as an lws application does
 * unless it chooses an event library.
 * Prints "ref_lws: listening on HOST:PORT" when ready; exits 0 on SIGINT
 * or SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define MAX_MESSAGE     65536
#define MAX_CONNECTIONS 20000
#define RING_SIZE       4096
#define RING_LOW        256 /* pause senders below this many free elements */
#define ECHO_QUEUE_HIGH 256
#define ECHO_QUEUE_LOW  64

/* One message, with the headroom lws_write() needs before the payload.
 * In broadcast mode one copy is shared by every receiver. */
typedef struct msg {
  struct msg *next; /* echo FIFO */
  size_t len;
  size_t cap;
  unsigned refs; /* broadcast: receivers that still have to send it */
  int is_binary;
  unsigned char buf[]; /* LWS_PRE bytes, then the payload */
} msg;

typedef struct session {
  struct lws *wsi;
  msg *partial;      /* message being reassembled */
  int is_paused;     /* rx flow control is off */
  int is_registered; /* ESTABLISHED ran */
  /* echo */
  msg *head, *tail;
  unsigned queued;
  /* broadcast */
  uint32_t ring_tail;
  lws_dll2_t all;    /* in vhost_data.sessions */
  lws_dll2_t paused; /* in vhost_data.paused_senders */
} session;

typedef struct vhost_data {
  struct lws_vhost *vhost;
  const struct lws_protocols *protocol;
  struct lws_ring *ring;
  lws_dll2_owner_t sessions;
  lws_dll2_owner_t paused_senders;
  unsigned long dropped;
} vhost_data;

static int is_broadcast;
static volatile sig_atomic_t is_interrupted;
static struct lws_context *context;

static msg *msg_alloc(size_t cap) {
  msg *m = malloc(sizeof(*m) + LWS_PRE + cap);
  if (m == NULL)
    return NULL;
  m->next = NULL;
  m->len = 0;
  m->cap = cap;
  m->refs = 0;
  m->is_binary = 0;
  return m;
}

static void ring_destroy_element(void *element) {
  free(*(msg **)element);
}

/*
 * Add a receive chunk to the message being reassembled. Returns the
 * completed message (owned by the caller), NULL while more is to come,
 * and sets *error for a message over MAX_MESSAGE or out of memory.
 */
static msg *reassemble(session *pss, struct lws *wsi, const void *in,
                       size_t len, int *error) {
  int is_final = lws_is_final_fragment(wsi);
  msg *m = pss->partial;

  *error = 0;
  if (m == NULL) {
    /* The common case, a whole message in one chunk, costs one
     * exact-size allocation and one copy. */
    size_t cap = len;
    if (!is_final) {
      size_t more = lws_remaining_packet_payload(wsi);
      cap = len + more > 4096 ? len + more : 4096;
    }
    if (cap > MAX_MESSAGE || (m = msg_alloc(cap)) == NULL)
      goto fail;
    m->is_binary = lws_frame_is_binary(wsi);
  } else if (m->len + len > m->cap) {
    size_t cap = m->cap * 2 >= m->len + len ? m->cap * 2 : m->len + len;
    msg *bigger;
    if (m->len + len > MAX_MESSAGE)
      goto fail;
    if (cap > MAX_MESSAGE)
      cap = MAX_MESSAGE;
    bigger = realloc(m, sizeof(*m) + LWS_PRE + cap);
    if (bigger == NULL)
      goto fail;
    m = bigger;
    m->cap = cap;
  }
  if (len > 0)
    memcpy(m->buf + LWS_PRE + m->len, in, len);
  m->len += len;
  if (is_final) {
    pss->partial = NULL;
    return m;
  }
  pss->partial = m;
  return NULL;
fail:
  free(m);
  pss->partial = NULL;
  *error = 1;
  lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
  return NULL;
}

static void pause_sender(vhost_data *vhd, session *pss) {
  if (pss->is_paused)
    return;
  pss->is_paused = 1;
  lws_rx_flow_control(pss->wsi, 0);
  if (vhd != NULL)
    lws_dll2_add_tail(&pss->paused, &vhd->paused_senders);
}

static void resume_senders(vhost_data *vhd) {
  if (vhd->paused_senders.count == 0 ||
      lws_ring_get_count_free_elements(vhd->ring) < RING_SIZE / 2)
    return;
  lws_start_foreach_dll_safe(struct lws_dll2 *, d, next,
                             vhd->paused_senders.head) {
    session *pss = lws_container_of(d, session, paused);
    lws_dll2_remove(&pss->paused);
    pss->is_paused = 0;
    lws_rx_flow_control(pss->wsi, 1);
  }
  lws_end_foreach_dll_safe(d, next);
}

/* The receiver whose tail this is is done with the element before it:
 * drop its reference, and when it was the last one, let the ring reuse
 * the element. References run out in ring order, since every receiver
 * consumes in order and receivers only join at the head. */
static void consume_one(vhost_data *vhd, uint32_t *tail) {
  msg **pm = (msg **)lws_ring_get_element(vhd->ring, tail);
  msg *m = *pm;
  lws_ring_consume(vhd->ring, tail, NULL, 1);
  if (--m->refs == 0) {
    lws_ring_update_oldest_tail(vhd->ring, *tail);
    resume_senders(vhd);
  }
}

static int on_receive(struct lws *wsi, vhost_data *vhd, session *pss, void *in,
                      size_t len) {
  int error;
  msg *m = reassemble(pss, wsi, in, len, &error);

  if (error)
    return -1;
  if (m == NULL)
    return 0;
  if (!is_broadcast) {
    if (pss->tail != NULL)
      pss->tail->next = m;
    else
      pss->head = m;
    pss->tail = m;
    if (++pss->queued >= ECHO_QUEUE_HIGH)
      pause_sender(NULL, pss);
    lws_callback_on_writable(wsi);
    return 0;
  }
  if (lws_ring_get_count_free_elements(vhd->ring) == 0) {
    /* Only reached when lws delivers data it had already read past a
     * pause; counted so a lost message is never silent. */
    vhd->dropped++;
    free(m);
    return 0;
  }
  m->refs = vhd->sessions.count;
  lws_ring_insert(vhd->ring, &m, 1);
  if (lws_ring_get_count_free_elements(vhd->ring) < RING_LOW)
    pause_sender(vhd, pss);
  lws_callback_on_writable_all_protocol_vhost(vhd->vhost, vhd->protocol);
  return 0;
}

static int on_writeable(struct lws *wsi, vhost_data *vhd, session *pss) {
  msg *m;

  if (!is_broadcast) {
    if ((m = pss->head) == NULL)
      return 0;
    if (lws_write(wsi, m->buf + LWS_PRE, m->len,
                  m->is_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
        (int)m->len)
      return -1;
    pss->head = m->next;
    if (pss->head == NULL)
      pss->tail = NULL;
    free(m);
    if (--pss->queued <= ECHO_QUEUE_LOW && pss->is_paused) {
      pss->is_paused = 0;
      lws_rx_flow_control(wsi, 1);
    }
    if (pss->head != NULL)
      lws_callback_on_writable(wsi);
    return 0;
  }
  msg **pm = (msg **)lws_ring_get_element(vhd->ring, &pss->ring_tail);
  if (pm == NULL)
    return 0;
  m = *pm;
  if (lws_write(wsi, m->buf + LWS_PRE, m->len,
                m->is_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)m->len)
    return -1;
  consume_one(vhd, &pss->ring_tail);
  if (lws_ring_get_element(vhd->ring, &pss->ring_tail) != NULL)
    lws_callback_on_writable(wsi);
  return 0;
}

static void on_closed(vhost_data *vhd, session *pss) {
  free(pss->partial);
  pss->partial = NULL;
  while (pss->head != NULL) {
    msg *m = pss->head;
    pss->head = m->next;
    free(m);
  }
  pss->tail = NULL;
  if (!is_broadcast || !pss->is_registered)
    return;
  pss->is_registered = 0;
  lws_dll2_remove(&pss->all);
  if (pss->is_paused)
    lws_dll2_remove(&pss->paused);
  /* Give back this receiver's share of everything it had not sent. */
  while (lws_ring_get_element(vhd->ring, &pss->ring_tail) != NULL)
    consume_one(vhd, &pss->ring_tail);
}

static int callback_bench(struct lws *wsi, enum lws_callback_reasons reason,
                          void *user, void *in, size_t len) {
  session *pss = user;
  vhost_data *vhd =
      lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));

  switch (reason) {
  case LWS_CALLBACK_PROTOCOL_INIT:
    vhd = lws_protocol_vh_priv_zalloc(lws_get_vhost(wsi), lws_get_protocol(wsi),
                                      sizeof(*vhd));
    if (vhd == NULL)
      return -1;
    vhd->vhost = lws_get_vhost(wsi);
    vhd->protocol = lws_get_protocol(wsi);
    if (is_broadcast) {
      vhd->ring =
          lws_ring_create(sizeof(msg *), RING_SIZE, ring_destroy_element);
      if (vhd->ring == NULL)
        return -1;
    }
    break;

  case LWS_CALLBACK_PROTOCOL_DESTROY:
    if (vhd != NULL && vhd->ring != NULL) {
      /* run.py reads this to tell messages dropped here from messages
       * still in flight when the generator stopped waiting. */
      fprintf(stderr, "ref_lws: dropped %lu messages\n", vhd->dropped);
      lws_ring_destroy(vhd->ring);
      vhd->ring = NULL;
    }
    break;

  case LWS_CALLBACK_ESTABLISHED:
    pss->wsi = wsi;
    pss->is_registered = 1;
    if (is_broadcast) {
      /* A newcomer starts at the head: it gets what is sent from now on.
       */
      pss->ring_tail = lws_ring_get_oldest_tail(vhd->ring);
      lws_ring_consume(
          vhd->ring, &pss->ring_tail, NULL,
          lws_ring_get_count_waiting_elements(vhd->ring, &pss->ring_tail));
      lws_dll2_add_tail(&pss->all, &vhd->sessions);
    }
    break;

  case LWS_CALLBACK_CLOSED:
    on_closed(vhd, pss);
    break;

  case LWS_CALLBACK_RECEIVE:
    return on_receive(wsi, vhd, pss, in, len);

  case LWS_CALLBACK_SERVER_WRITEABLE:
    return on_writeable(wsi, vhd, pss);

  default:
    break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* First, so it is the default for clients asking for no subprotocol. */
    {.name = "bench",
     .callback = callback_bench,
     .per_session_data_size = sizeof(session)},
    {.name = NULL}};

static void on_signal(int signum) {
  (void)signum;
  is_interrupted = 1;
  lws_cancel_service(context);
}

static void usage(FILE *out) {
  fputs("usage: ref_lws --mode echo|broadcast --port N [--host ADDR]\n", out);
}

int main(int argc, char **argv) {
  static const struct option options[] = {
      {"mode", required_argument, NULL, 'm'},
      {"port", required_argument, NULL, 'p'},
      {"host", required_argument, NULL, 'H'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct lws_context_creation_info info;
  const char *host = "127.0.0.1";
  const char *mode = NULL;
  int port = -1;
  int opt;

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

  lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
  memset(&info, 0, sizeof(info));
  info.port = port;
  info.iface = host;
  info.protocols = protocols;
  info.gid = -1;
  info.uid = -1;
  info.count_threads = 1;
  /* Sessions plus the listener, the cancel pipe and some slack. */
  info.fd_limit_per_thread = MAX_CONNECTIONS + 64;
  info.options =
      LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;

  context = lws_create_context(&info);
  if (context == NULL) {
    fputs("ref_lws: lws_create_context failed\n", stderr);
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  printf("ref_lws: listening on %s:%d\n", host,
         lws_get_vhost_listen_port(lws_get_vhost_by_name(context, "default")));
  fflush(stdout);

  while (!is_interrupted)
    if (lws_service(context, 0) < 0)
      break;
  lws_context_destroy(context);
  return 0;
}
