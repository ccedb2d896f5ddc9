/*
 * Tests for lib/net through the public API: a real server on 127.0.0.1:0
 * runs its loop in a second thread; the test thread is a blocking-socket
 * client that speaks raw RFC 6455, so every byte the server sends can be
 * asserted. Callbacks append to an event log the test reads.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "wschat.h"

#include "../support.h"

/* ------------------------------------------------------------------------
 * Server fixture
 * ---------------------------------------------------------------------- */

static wschat_server *server;
static pthread_t loop_thread;
static size_t live_before;

/* What on_message does with "commands" from the client. */
static void on_open(wschat_session *s, void *ud) {
  const char *proto = wschat_session_subprotocol(s);
  char peer[64];
  cr_assert_eq(ud, &port);
  cr_assert_gt(wschat_session_peer(s, peer, sizeof(peer)), 0);
  cr_assert_eq(strncmp(peer, "127.0.0.1:", 10), 0);
  log_event("open %llu %s %s;", (unsigned long long)wschat_session_id(s),
            wschat_session_path(s), proto ? proto : "-");
}

static void on_message(wschat_session *s, wschat_msg_type type,
                       const char *data, size_t len, void *ud) {
  (void)ud;
  log_event("msg %s %.*s;", type == WSCHAT_TEXT ? "text" : "binary", (int)len,
            data);
  if (len == 3 && memcmp(data, "bye", 3) == 0) {
    cr_assert_eq(wschat_session_close(s, 4000, "done"), 0);
    /* Closing twice, or sending after, is refused. */
    cr_assert_eq(wschat_session_close(s, 1000, NULL), WSCHAT_ECLOSED);
    cr_assert_eq(wschat_session_send_text(s, "x", 1), WSCHAT_ECLOSED);
    return;
  }
  if (len == 4 && memcmp(data, "join", 4) == 0) {
    wschat_room *room;
    cr_assert_eq(wschat_room_open(wschat_session_server(s), "fx", &room), 0);
    cr_assert_eq(wschat_room_join(room, s), 0);
    return;
  }
  if (len == 3 && memcmp(data, "fan", 3) == 0) {
    /* "F" to every member of room fx in one turn: two or more sessions
     * with output, so the flush sends them as one io_uring batch. */
    wschat_frame *f;
    wschat_room *room = wschat_room_find(wschat_session_server(s), "fx");
    cr_assert_not_null(room);
    cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, "F", 1, &f), 0);
    cr_assert_gt(wschat_room_broadcast(room, f, NULL), 0);
    wschat_frame_release(f);
    return;
  }
  if (len == 4 && memcmp(data, "ping", 4) == 0) {
    cr_assert_eq(wschat_session_ping(s, "p1", 2), 0);
    return;
  }
  if (len == 10 && memcmp(data, "floodsmall", 10) == 0) {
    /* 20 MB of small numbered frames: they are coalesced into the server's
     * shared chunks, and whatever the socket does not take at the end of
     * the turn is moved into a buffer of the session's own before it is
     * written (session_unshare): what arrives must still be every frame,
     * whole and in order. */
    char frame[1000];
    int i;
    memset(frame, 'f', sizeof(frame));
    for (i = 0; i < 20000; i++) {
      snprintf(frame, sizeof(frame), "%05d", i);
      frame[5] = '|';
      cr_assert_eq(wschat_session_send_text(s, frame, sizeof(frame)), 0);
    }
    return;
  }
  if (len == 5 && memcmp(data, "flood", 5) == 0) {
    static char big[64 * 1024];
    int i;
    /* 32 MiB in one turn, far more than the socket buffers take from a
     * client that is not reading: what is left unsent at the end of the
     * turn is over max_queued, so the session is closed with 1008 then.
     * The sends themselves all succeed. */
    for (i = 0; i < 512; i++)
      cr_assert_eq(wschat_session_send_binary(s, big, sizeof(big)), 0);
    return;
  }
  cr_assert_eq(wschat_session_send_text(s, "\xff", 1), WSCHAT_EBADUTF8);
  cr_assert_eq(wschat_session_close(s, 1005, NULL), WSCHAT_EINVAL);
  cr_assert_eq(wschat_session_close(s, 999, NULL), WSCHAT_EINVAL);
  cr_assert_eq(wschat_session_ping(s, data, 126), WSCHAT_EINVAL);
  if (type == WSCHAT_TEXT)
    cr_assert_eq(wschat_session_send_text(s, data, len), 0);
  else
    cr_assert_eq(wschat_session_send_binary(s, data, len), 0);
}

static void on_close(wschat_session *s, int code, const char *reason,
                     size_t len, void *ud) {
  (void)ud;
  log_event("close %llu %d %.*s;", (unsigned long long)wschat_session_id(s),
            code, (int)len, reason);
}

static void on_pong(wschat_session *s, const char *data, size_t len, void *ud) {
  (void)s;
  (void)ud;
  log_event("pong %.*s;", (int)len, data);
}

static int on_origin(wschat_server *srv, const wschat_http_request *req,
                     const char *origin, void *ud) {
  (void)srv;
  (void)ud;
  /* The request can be read (to compare Origin with Host), not answered. */
  cr_assert_not_null(wschat_http_header(req, "Host"));
  cr_assert_eq(
      wschat_http_respond((wschat_http_request *)req, 200, NULL, NULL, NULL, 0),
      WSCHAT_EINVAL);
  return origin == NULL || strcmp(origin, "http://evil.example") != 0;
}

static void on_http(wschat_server *srv, wschat_http_request *req, void *ud) {
  (void)srv;
  (void)ud;
  if (strcmp(wschat_http_path(req), "/hello") == 0) {
    cr_assert_str_eq(wschat_http_query(req), "a=1");
    cr_assert_str_eq(wschat_http_header(req, "x-client"), "yes");
    cr_assert_eq(
        wschat_http_respond(req, 200, "text/plain", "X-Test: 1\r\n", "hi", 2),
        0);
    cr_assert_eq(wschat_http_respond(req, 200, NULL, NULL, NULL, 0),
                 WSCHAT_EINVAL);
  }
}

static void *run_loop(void *arg) {
  (void)arg;
  cr_assert_eq(wschat_server_run(server), 0);
  return NULL;
}

static void server_setup(void) {
  static const char *const protocols[] = {"chat.v1", "chat.v2"};
  event_log[0] = '\0';
  live_before = wschat_live_bytes();
  server = wschat_server_new(NULL);
  cr_assert_not_null(server);
  wschat_server_set_userdata(server, &port);
  wschat_server_on_open(server, on_open);
  wschat_server_on_message(server, on_message);
  wschat_server_on_close(server, on_close);
  wschat_server_on_pong(server, on_pong);
  wschat_server_on_origin(server, on_origin);
  wschat_server_on_http(server, on_http);
  cr_assert_eq(wschat_server_set_subprotocols(server, protocols, 2), 0);
  cr_assert_eq(wschat_server_set_max_queued(server, 64 * 1024), 0);
  cr_assert_eq(wschat_server_set_close_timeout(server, 1000), 0);
  cr_assert_eq(wschat_server_port(server), WSCHAT_ENOTLISTENING);
}

static void server_start(void) {
  cr_assert_eq(wschat_server_listen(server, "127.0.0.1", 0), 0);
  port = wschat_server_port(server);
  cr_assert_gt(port, 0);
  pthread_create(&loop_thread, NULL, run_loop, NULL);
}

static void server_teardown(void) {
  cr_assert_eq(wschat_server_stop(server), 0);
  pthread_join(loop_thread, NULL);
  cr_assert(wschat_server_is_stopped(server));
  cr_assert_eq(wschat_server_free(server), 0);
  cr_assert_eq(wschat_live_bytes(), live_before);
}

static void setup_and_start(void) {
  server_setup();
  server_start();
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */

Test(server, setters_reject_values_out_of_range) {
  wschat_server *s = wschat_server_new(NULL);
  const char *bad[] = {"a b"};
  const char *empty[] = {""};
  cr_assert_eq(wschat_server_set_max_message(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_message(s, ((uint64_t)1 << 63) + 1),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_message(s, (uint64_t)1 << 63), 0);
  cr_assert_eq(wschat_server_set_max_header(s, 255), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_header(s, 32769), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_header(s, 32768), 0);
  cr_assert_eq(wschat_server_set_max_header_count(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_connections(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_queued(s, 1023), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_handshake_timeout(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_timeout(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_idle_timeout(s, 0), 0);
  cr_assert_eq(wschat_server_set_idle_timeout(s, 86400001), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_ping_interval(s, 86400001), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_path(s, "chat"), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_path(s, "/chat"), 0);
  cr_assert_eq(wschat_server_set_path(s, NULL), 0);
  cr_assert_eq(wschat_server_set_subprotocols(s, bad, 1), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_subprotocols(s, empty, 1), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_code(s, WSCHAT_CLOSE_ON_IDLE, 1005),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_code(s, WSCHAT_CLOSE_ON_IDLE, 1006),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_code(s, WSCHAT_CLOSE_ON_IDLE, 1015),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_code(s, WSCHAT_CLOSE_ON_COUNT_, 1000),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_close_code(s, WSCHAT_CLOSE_ON_IDLE, 4000), 0);
  cr_assert_eq(wschat_server_listen(s, "localhost", 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_listen(s, "127.0.0.1", 70000), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_run(s), WSCHAT_ENOTLISTENING);
  cr_assert_eq(wschat_server_stop(s), WSCHAT_ENOTLISTENING);
  cr_assert_eq(wschat_server_free(s), 0);
}

Test(server, listen_twice_and_address_in_use) {
  wschat_server *a = wschat_server_new(NULL);
  wschat_server *b = wschat_server_new(NULL);
  int p;
  cr_assert_eq(wschat_server_listen(a, "127.0.0.1", 0), 0);
  cr_assert_eq(wschat_server_listen(a, "127.0.0.1", 0), WSCHAT_ELISTENING);
  p = wschat_server_port(a);
  cr_assert_eq(wschat_server_listen(b, "127.0.0.1", p), UV_EADDRINUSE);
  cr_assert_eq(wschat_server_free(b), 0);
  cr_assert_eq(wschat_server_free(a), WSCHAT_EBUSY);
  cr_assert_eq(wschat_server_stop(a), 0);
  cr_assert_eq(wschat_server_run(a), 0);
  cr_assert_eq(wschat_server_free(a), 0);
}

Test(server, ipv6_loopback) {
  wschat_server *s = wschat_server_new(NULL);
  int rc = wschat_server_listen(s, "::1", 0);
  if (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT) {
    cr_log_warn("no IPv6 loopback here: %s", wschat_strerror(rc));
    cr_assert_eq(wschat_server_free(s), 0);
    return;
  }
  cr_assert_eq(rc, 0);
  cr_assert_gt(wschat_server_port(s), 0);
  wschat_server_stop(s);
  cr_assert_eq(wschat_server_run(s), 0);
  cr_assert_eq(wschat_server_free(s), 0);
}

Test(server, echo_and_peer_close, .init = setup_and_start,
     .fini = server_teardown) {
  uint8_t buf[256];
  int op;
  int fd = client_open("Sec-WebSocket-Protocol: other, chat.v2, chat.v1\r\n");
  client_send(fd, 1, "hello", 5);
  cr_assert_eq(client_recv(fd, &op, buf, sizeof(buf)), 5);
  cr_assert_eq(op, 1);
  cr_assert_eq(memcmp(buf, "hello", 5), 0);
  client_send(fd, 2, "\x00\x01", 2);
  cr_assert_eq(client_recv(fd, &op, buf, sizeof(buf)), 2);
  cr_assert_eq(op, 2);
  client_close(fd, 3001);
  expect_close(fd, 3001, "");
  expect_eof(fd);
  close(fd);
  /* %.*s stops at the binary message's NUL byte. */
  cr_assert(log_wait_for("open 1 /chat chat.v2;msg text hello;"
                         "msg binary ;close 1 3001 ;"));
}

Test(server, server_close_from_callback, .init = setup_and_start,
     .fini = server_teardown) {
  int fd = client_open(NULL);
  client_send(fd, 1, "bye", 3);
  expect_close(fd, 4000, "done");
  client_close(fd, 4000);
  expect_eof(fd);
  close(fd);
  cr_assert(log_wait_for("open 1 /chat -;msg text bye;close 1 4000 done;"));
}

Test(server, vanished_peer_gives_1006, .init = setup_and_start,
     .fini = server_teardown) {
  int fd = client_open(NULL);
  close(fd);
  cr_assert(log_wait_for("close 1 1006 ;"));
}

Test(server, ping_and_pong_callback, .init = setup_and_start,
     .fini = server_teardown) {
  uint8_t buf[256];
  int op;
  int fd = client_open(NULL);
  client_send(fd, 1, "ping", 4);
  cr_assert_eq(client_recv(fd, &op, buf, sizeof(buf)), 2);
  cr_assert_eq(op, 9);
  cr_assert_eq(memcmp(buf, "p1", 2), 0);
  client_send(fd, 10, "p1", 2);
  cr_assert(log_wait_for("pong p1;"));
  close(fd);
}

Test(server, slow_consumer_closed_with_1008, .init = setup_and_start,
     .fini = server_teardown) {
  static uint8_t buf[128 * 1024];
  size_t frames = 0;
  int fd = client_open(NULL);
  int op;
  client_send(fd, 1, "flood", 5);
  cr_assert(log_wait_for("close 1 1008 slow consumer;"));
  /* What the socket took before the limit was judged arrives first, whole
   * frames only; then the close frame; the rest was dropped. */
  for (;;) {
    size_t n = client_recv(fd, &op, buf, sizeof(buf));
    if (op == 8) {
      cr_assert_eq(buf[0] << 8 | buf[1], 1008);
      cr_assert_eq(n - 2, strlen("slow consumer"));
      break;
    }
    cr_assert_eq(op, 2);
    cr_assert_eq(n, 64 * 1024);
    frames++;
  }
  cr_assert_lt(frames, 512);
  expect_eof(fd);
  close(fd);
}

Test(server, slow_consumer_of_small_frames_gets_them_whole,
     .init = setup_and_start, .fini = server_teardown) {
  static uint8_t buf[4096];
  size_t frames = 0;
  int fd = client_open(NULL);
  int op;
  client_send(fd, 1, "floodsmall", 10);
  cr_assert(log_wait_for("close 1 1008 slow consumer;"));
  for (;;) {
    size_t n = client_recv(fd, &op, buf, sizeof(buf));
    char want[8];
    if (op == 8) {
      cr_assert_eq(buf[0] << 8 | buf[1], 1008);
      break;
    }
    cr_assert_eq(op, 1);
    cr_assert_eq(n, 1000);
    snprintf(want, sizeof(want), "%05zu|", frames);
    cr_assert_eq(memcmp(buf, want, 6), 0, "frame %zu starts %.6s", frames, buf);
    for (size_t i = 6; i < n; i++)
      cr_assert_eq(buf[i], 'f', "frame %zu byte %zu", frames, i);
    frames++;
  }
  cr_assert_gt(frames, 0);
  cr_assert_lt(frames, 20000);
  expect_eof(fd);
  close(fd);
}

Test(server, plain_http_handler, .init = setup_and_start,
     .fini = server_teardown) {
  static const char get[] =
      "GET /hello?a=1 HTTP/1.1\r\nHost: x\r\nX-Client: yes\r\n\r\n";
  char head[1024], body[3] = {0};
  int fd = client_connect();
  send_all(fd, get, sizeof(get) - 1);
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 200 OK\r\n", 17), 0, "got %s", head);
  cr_assert_not_null(strstr(head, "Content-Length: 2\r\n"));
  cr_assert_not_null(strstr(head, "X-Test: 1\r\n"));
  recv_exact(fd, body, 2);
  cr_assert_str_eq(body, "hi");
  expect_eof(fd);
  close(fd);

  /* Unanswered by the handler: 404. */
  fd = client_connect();
  send_all(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 31);
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 404 ", 13), 0, "got %s", head);
  close(fd);
}

Test(server, origin_hook_403, .init = setup_and_start,
     .fini = server_teardown) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n";
  char head[1024];
  int fd = client_connect();
  send_all(fd, req, sizeof(req) - 1);
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 403 ", 13), 0, "got %s", head);
  close(fd);
  fd = client_open("Origin: http://good.example\r\n");
  close(fd);
}

Test(server, frames_in_the_handshake_packet, .init = setup_and_start,
     .fini = server_teardown) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n"
      /* masked "Hello" from RFC 6455 section 5.7 */
      "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  char head[1024];
  uint8_t buf[16];
  int op;
  int fd = client_connect();
  send_all(fd, req, sizeof(req) - 1);
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 101 ", 13), 0);
  cr_assert_eq(client_recv(fd, &op, buf, sizeof(buf)), 5);
  cr_assert_eq(memcmp(buf, "Hello", 5), 0);
  close(fd);
}

static void setup_limits(void) {
  server_setup();
  cr_assert_eq(wschat_server_set_max_connections(server, 1), 0);
  cr_assert_eq(wschat_server_set_handshake_timeout(server, 200), 0);
  server_start();
}

Test(server, connection_limit_503, .init = setup_limits,
     .fini = server_teardown) {
  char head[1024];
  int a = client_open(NULL);
  int b = client_connect();
  recv_head(b, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 503 ", 13), 0, "got %s", head);
  close(b);
  cr_assert_eq(wschat_server_connection_count(server), 1);
  close(a);
}

Test(server, handshake_timeout_408, .init = setup_limits,
     .fini = server_teardown) {
  char head[1024];
  int fd = client_connect();
  send_all(fd, "GET / HTTP/1.1\r\n", 16);
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 408 ", 13), 0, "got %s", head);
  close(fd);
}

/* The listening socket, found among this process's descriptors. */
static int find_listener(void) {
  int fd;
  for (fd = 3; fd < 4096; fd++) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(int), salen = sizeof(sa);
    int listening = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
        listening && getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 &&
        sa.sin_family == AF_INET && ntohs(sa.sin_port) == port)
      return fd;
  }
  return -1;
}

/* WebSocket clients speak first, so the kernel keeps a connection until
 * its first bytes arrive (TCP_DEFER_ACCEPT): a silent peer is not a
 * session yet, and one that then sends its request is served at once. */
Test(server, accept_waits_for_the_first_bytes, .init = setup_and_start,
     .fini = server_teardown) {
  char req[512], head[1024];
  int seconds = 0, fd, lfd = find_listener();
  socklen_t len = sizeof(seconds);
  cr_assert_geq(lfd, 0, "no listening socket on port %d", port);
  cr_assert_eq(getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, &len),
               0);
  cr_assert_gt(seconds, 0);
  fd = client_connect();
  usleep(300 * 1000);
  cr_assert_eq(wschat_server_connection_count(server), 0);
  snprintf(req, sizeof(req),
           "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n");
  send_all(fd, req, strlen(req));
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 101 ", 13), 0, "got: %s", head);
  cr_assert_eq(wschat_server_connection_count(server), 1);
  client_close(fd, 1000);
  expect_close(fd, 1000, "");
  expect_eof(fd);
  close(fd);
}

/* A peer that resets the connection right after its close frame: the
 * server's last send (held back with MSG_MORE for the FIN) may fail with
 * ECONNRESET or EPIPE, or the read may see the reset first. Either way
 * each session is reported closed once (1000 or 1006), the server keeps
 * serving, and the teardown finds no memory left behind. */
Test(server, reset_after_close_frame, .init = setup_and_start,
     .fini = server_teardown) {
  uint8_t buf[16];
  int i, op, fd;
  char want[32];
  for (i = 0; i < 30; i++) {
    struct linger lg = {1, 0};
    fd = client_open(NULL);
    client_close(fd, 1000);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd); /* RST */
  }
  snprintf(want, sizeof(want), "close %d 10", 30);
  cr_assert(log_wait_for(want));
  for (i = 0; i < 300 && wschat_server_connection_count(server) > 0; i++)
    usleep(10000);
  cr_assert_eq(wschat_server_connection_count(server), 0);
  pthread_mutex_lock(&log_mu);
  {
    const char *p = event_log;
    int closes = 0;
    while ((p = strstr(p, "close ")) != NULL) {
      closes++;
      p++;
    }
    pthread_mutex_unlock(&log_mu);
    cr_assert_eq(closes, 30, "log: %s", event_log);
  }
  fd = client_open(NULL);
  client_send(fd, 1, "still", 5);
  cr_assert_eq(client_recv(fd, &op, buf, sizeof(buf)), 5);
  cr_assert_eq(memcmp(buf, "still", 5), 0);
  client_close(fd, 1000);
  expect_close(fd, 1000, "");
  expect_eof(fd);
  close(fd);
}

/* The descriptors in the server's io_uring table of registered files,
 * from /proc/self/fdinfo of the ring (the server runs in this process);
 * -1 when there is no ring. */
static int registered_files(void) {
  char path[64], line[256], target[64];
  int fd, n = -1, in_files = 0;
  for (fd = 0; fd < 1024 && n < 0; fd++) {
    FILE *f;
    ssize_t len;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    len = readlink(path, target, sizeof(target) - 1);
    if (len <= 0)
      continue;
    target[len] = '\0';
    if (strstr(target, "io_uring") == NULL)
      continue;
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
      if (strncmp(line, "UserFiles:", 10) == 0)
        in_files = 1;
      else if (in_files && strstr(line, ": socket:[") != NULL)
        n++;
      else if (in_files)
        in_files = 0;
    }
    fclose(f);
  }
  return n;
}

static void fan_and_expect(int sender, const int *fds, int nfds) {
  uint8_t buf[16];
  int i, op;
  client_send(sender, 1, "fan", 3);
  for (i = 0; i < nfds; i++) {
    cr_assert_eq(client_recv(fds[i], &op, buf, sizeof(buf)), 1);
    cr_assert_eq(op, 1);
    cr_assert_eq(buf[0], 'F');
  }
}

/* Sessions that keep being sent to in batches get their descriptors
 * registered in the ring's table (so the kernel does not look them up
 * per send); short-lived ones do not. A registered session's socket must
 * still close at once (its slot emptied first: a slot holds the socket
 * open), and a new connection that gets the same descriptor number must
 * get its own bytes. */
Test(server, registered_sockets_close_at_once_and_free_their_slot,
     .init = setup_and_start, .fini = server_teardown) {
  int fds[2], i, before;
  uint8_t buf[16];
  int op;

  if (registered_files() < 0)
    cr_skip_test("no io_uring here: nothing is registered");
  before = registered_files();
  cr_assert_eq(before, 0);
  for (i = 0; i < 2; i++) {
    fds[i] = client_open(NULL);
    client_send(fds[i], 1, "join", 4);
  }
  /* The join is in once the first fan reaches both. */
  for (i = 0; i < 8; i++)
    fan_and_expect(fds[0], fds, 2);
  cr_assert_eq(registered_files(), 2);

  /* B closes: the close handshake, then the server's FIN right away. */
  client_close(fds[1], 1000);
  expect_close(fds[1], 1000, "");
  expect_eof(fds[1]);
  close(fds[1]);
  for (i = 0; i < 100 && registered_files() != 1; i++)
    usleep(10000);
  cr_assert_eq(registered_files(), 1);

  /* C most likely takes B's descriptor number; whatever it got, every
   * fan reaches A and C, before and after C is registered. */
  fds[1] = client_open(NULL);
  client_send(fds[1], 1, "join", 4);
  for (i = 0; i < 8; i++)
    fan_and_expect(fds[0], fds, 2);
  cr_assert_eq(registered_files(), 2);
  client_send(fds[1], 1, "echo", 4);
  cr_assert_eq(client_recv(fds[1], &op, buf, sizeof(buf)), 4);
  cr_assert_eq(memcmp(buf, "echo", 4), 0);

  /* D is registered and then resets its connection: the session ends
   * (1006), its slot is emptied, and A and C go on getting every fan. */
  {
    int all[3];
    struct linger lg = {1, 0};
    all[0] = fds[0];
    all[1] = fds[1];
    all[2] = client_open(NULL);
    client_send(all[2], 1, "join", 4);
    for (i = 0; i < 8; i++)
      fan_and_expect(fds[0], all, 3);
    cr_assert_eq(registered_files(), 3);
    cr_assert_eq(setsockopt(all[2], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(all[2]); /* RST */
    cr_assert(log_wait_for(" 1006 ;"), "log: %s", event_log);
    for (i = 0; i < 100 && registered_files() != 2; i++)
      usleep(10000);
    cr_assert_eq(registered_files(), 2);
    for (i = 0; i < 3; i++)
      fan_and_expect(fds[0], fds, 2);
  }

  /* Short-lived connections (a handshake and a close) stay out. */
  for (i = 0; i < 5; i++) {
    int fd = client_open(NULL);
    client_close(fd, 1000);
    expect_close(fd, 1000, "");
    expect_eof(fd);
    close(fd);
  }
  cr_assert_eq(registered_files(), 2);
  for (i = 0; i < 2; i++) {
    client_close(fds[i], 1000);
    expect_close(fds[i], 1000, "");
    expect_eof(fds[i]);
    close(fds[i]);
  }
  for (i = 0; i < 100 && registered_files() != 0; i++)
    usleep(10000);
  cr_assert_eq(registered_files(), 0);
}

static void setup_idle(void) {
  server_setup();
  cr_assert_eq(wschat_server_set_idle_timeout(server, 200), 0);
  server_start();
}

Test(server, idle_timeout_1001, .init = setup_idle, .fini = server_teardown) {
  int fd = client_open(NULL);
  expect_close(fd, 1001, "idle timeout");
  client_close(fd, 1001);
  expect_eof(fd);
  close(fd);
  cr_assert(log_wait_for("close 1 1001 idle timeout;"));
}

Test(server, stop_closes_sessions_with_1001, .init = setup_and_start) {
  int fd = client_open(NULL);
  cr_assert(log_wait_for("open 1"));
  cr_assert_eq(wschat_server_free(server), WSCHAT_EBUSY);
  /* From this (non-loop) thread, twice. */
  cr_assert_eq(wschat_server_stop(server), 0);
  cr_assert_eq(wschat_server_stop(server), 0);
  expect_close(fd, 1001, "server shutting down");
  client_close(fd, 1001);
  expect_eof(fd);
  close(fd);
  pthread_join(loop_thread, NULL);
  cr_assert(log_wait_for("close 1 1001 server shutting down;"));
  cr_assert(wschat_server_is_stopped(server));
  cr_assert_eq(wschat_server_free(server), 0);
  cr_assert_eq(wschat_live_bytes(), live_before);
}

static double elapsed_since(const struct timeval *t0) {
  struct timeval t1;
  gettimeofday(&t1, NULL);
  return (double)(t1.tv_sec - t0->tv_sec) +
         (double)(t1.tv_usec - t0->tv_usec) / 1e6;
}

static void setup_slow_close(void) {
  server_setup();
  cr_assert_eq(wschat_server_set_close_timeout(server, 60000), 0);
  server_start();
}

Test(server, stop_is_bounded_when_peers_never_answer,
     .init = setup_slow_close) {
  struct timeval t0;
  int fd = client_open(NULL);
  cr_assert(log_wait_for("open 1"));
  gettimeofday(&t0, NULL);
  cr_assert_eq(wschat_server_stop(server), 0);
  /* The client reads the close frame but never answers or closes. */
  expect_close(fd, 1001, "server shutting down");
  pthread_join(loop_thread, NULL);
  cr_assert_lt(elapsed_since(&t0), 2.5, "stop waited for the close timeout");
  cr_assert(log_wait_for("close 1 1001 server shutting down;"));
  cr_assert_eq(wschat_server_free(server), 0);
  cr_assert_eq(wschat_live_bytes(), live_before);
  close(fd);
}
