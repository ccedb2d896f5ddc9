/*
 * support.h - shared by the unit tests that run a real server: an event
 * log the loop thread writes and the test thread reads, and a blocking
 * raw RFC 6455 client, so every byte the server sends can be asserted.
 * Header-only (static functions), included by each test file.
 */
#ifndef WSCHAT_TESTS_UNIT_SUPPORT_H
#define WSCHAT_TESTS_UNIT_SUPPORT_H

/* Not every test file uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The port the test's server listens on. */
static int port;

/* ------------------------------------------------------------------------
 * Event log, written by the loop thread.
 * ---------------------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char event_log[8192];

static void log_event(const char *fmt, ...) {
  va_list ap;
  size_t n;
  pthread_mutex_lock(&log_mu);
  n = strlen(event_log);
  va_start(ap, fmt);
  vsnprintf(event_log + n, sizeof(event_log) - n, fmt, ap);
  va_end(ap);
  pthread_mutex_unlock(&log_mu);
}

/* Wait up to 3 s for the log to contain `want`. */
static int log_wait_for(const char *want) {
  int i;
  for (i = 0; i < 300; i++) {
    int found;
    pthread_mutex_lock(&log_mu);
    found = strstr(event_log, want) != NULL;
    pthread_mutex_unlock(&log_mu);
    if (found)
      return 1;
    usleep(10000);
  }
  cr_log_error("log was: %s", event_log);
  return 0;
}

/* ------------------------------------------------------------------------
 * A raw client
 * ---------------------------------------------------------------------- */

static int client_connect(void) {
  struct sockaddr_in a;
  struct timeval tv = {3, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void recv_exact(int fd, void *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, (char *)p + got, n - got, 0);
    cr_assert_gt(r, 0, "connection ended after %zu of %zu bytes", got, n);
    got += (size_t)r;
  }
}

/* Read an HTTP response head into buf (NUL-terminated). */
static void recv_head(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    cr_assert_eq(recv(fd, buf + n, 1, 0), 1);
    n++;
    buf[n] = '\0';
    if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
      return;
  }
  cr_assert_fail("response head too long");
}

static void expect_eof(int fd) {
  char c;
  cr_assert_eq(recv(fd, &c, 1, 0), 0, "expected the server to close TCP");
}

static int client_open(const char *extra) {
  char req[1024], head[1024];
  int fd = client_connect();
  snprintf(
      req, sizeof(req),
      "GET /chat?x=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n%s\r\n",
      extra ? extra : "");
  send_all(fd, req, strlen(req));
  recv_head(fd, head, sizeof(head));
  cr_assert_eq(strncmp(head, "HTTP/1.1 101 ", 13), 0, "got: %s", head);
  cr_assert_not_null(
      strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
  return fd;
}

static void client_send(int fd, int opcode, const void *data, size_t len) {
  uint8_t frame[256];
  static const uint8_t mask[4] = {1, 2, 3, 4};
  size_t i, h = 0;
  cr_assert_leq(len, 125);
  frame[h++] = (uint8_t)(0x80 | opcode);
  frame[h++] = (uint8_t)(0x80 | len);
  memcpy(frame + h, mask, 4);
  h += 4;
  for (i = 0; i < len; i++)
    frame[h + i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
  send_all(fd, frame, h + len);
}

/* Read one server frame; returns the payload length (< 1 MiB here). */
static size_t client_recv(int fd, int *opcode, uint8_t *buf, size_t cap) {
  uint8_t h[2];
  uint64_t len;
  recv_exact(fd, h, 2);
  cr_assert_eq(h[0] & 0x70, 0);
  cr_assert_eq(h[1] & 0x80, 0, "server frames are never masked");
  *opcode = h[0] & 0x0F;
  len = h[1] & 0x7F;
  if (len == 126) {
    uint8_t e[2];
    recv_exact(fd, e, 2);
    len = (uint64_t)e[0] << 8 | e[1];
  } else if (len == 127) {
    uint8_t e[8];
    int i;
    recv_exact(fd, e, 8);
    for (len = 0, i = 0; i < 8; i++)
      len = len << 8 | e[i];
  }
  cr_assert_leq(len, cap);
  recv_exact(fd, buf, (size_t)len);
  return (size_t)len;
}

static void expect_close(int fd, int code, const char *reason) {
  uint8_t buf[256];
  int op;
  size_t n = client_recv(fd, &op, buf, sizeof(buf));
  cr_assert_eq(op, 8);
  cr_assert_geq(n, 2);
  cr_assert_eq(buf[0] << 8 | buf[1], code);
  cr_assert_eq(n - 2, strlen(reason));
  cr_assert_eq(memcmp(buf + 2, reason, n - 2), 0);
}

static void client_close(int fd, int code) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  client_send(fd, 8, p, 2);
}

#endif
