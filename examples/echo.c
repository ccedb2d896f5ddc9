/*
 * echo.c - the tutorial's first route: a WebSocket server that sends every
 * text and binary message back unchanged, on any path.
 *
 *   echo [options] [PORT]        (PORT defaults to 8080; 0 picks one)
 *
 * It listens on 127.0.0.1 unless --host says otherwise, prints one line
 * "echo: listening on HOST:PORT" when ready, and on SIGINT or SIGTERM
 * closes every session with 1001 and exits 0. The options map one to one
 * onto the library's setters; see --help.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "wschat.h"

static void on_message(wschat_session *session, wschat_msg_type type,
                       const char *data, size_t len, void *userdata) {
  (void)userdata;
  if (type == WSCHAT_TEXT)
    wschat_session_send_text(session, data, len);
  else
    wschat_session_send_binary(session, data, len);
}

static uv_signal_t signals[2]; /* SIGINT, SIGTERM */

static void on_signal(uv_signal_t *handle, int signum) {
  int i;
  (void)signum;
  wschat_server_stop(handle->data);
  /* Unreferenced, the signal handles no longer keep the loop alive once
   * the server's handles are gone, yet a second signal during the stop
   * still lands here instead of killing the process. */
  for (i = 0; i < 2; i++)
    uv_unref((uv_handle_t *)&signals[i]);
}

static void usage(FILE *out) {
  fputs("usage: echo [options] [PORT]\n"
        "  --host ADDR              listen address (default 127.0.0.1)\n"
        "  --max-message BYTES      largest message (default 65536)\n"
        "  --max-connections N      connection limit (default 10000)\n"
        "  --max-per-ip N           connections per client address\n"
        "                           (default 0, no limit)\n"
        "  --max-queued BYTES       per-session output limit (default 1 MiB,\n"
        "                           or 2 x max-message + 1 MiB if larger)\n"
        "  --handshake-timeout MS   (default 10000)\n"
        "  --close-timeout MS       (default 5000)\n"
        "  --idle-timeout MS        (default 0, off)\n"
        "  --ping-interval MS       (default 0, off)\n"
        "  --subprotocol NAME       offer NAME (repeatable)\n"
        "  --path PATH              upgrade only on PATH (default: any)\n",
        out);
}

/* Parse a whole non-negative decimal number, or exit 2 naming the flag. */
static unsigned long long parse_number(const char *flag, const char *arg,
                                       unsigned long long max) {
  char *end;
  unsigned long long v;
  if (arg[0] < '0' || arg[0] > '9')
    goto bad;
  v = strtoull(arg, &end, 10);
  if (*end != '\0' || v > max)
    goto bad;
  return v;
bad:
  fprintf(stderr, "echo: %s: invalid value '%s'\n", flag, arg);
  exit(2);
}

static void check(const char *what, int rc) {
  if (rc < 0) {
    fprintf(stderr, "echo: %s: %s (%s)\n", what, wschat_strerror(rc),
            wschat_err_name(rc));
    exit(2);
  }
}

int main(int argc, char **argv) {
  static const struct option options[] = {
      {"host", required_argument, NULL, 'H'},
      {"max-message", required_argument, NULL, 'm'},
      {"max-connections", required_argument, NULL, 'c'},
      {"max-per-ip", required_argument, NULL, 'I'},
      {"max-queued", required_argument, NULL, 'q'},
      {"handshake-timeout", required_argument, NULL, 'h'},
      {"close-timeout", required_argument, NULL, 'C'},
      {"idle-timeout", required_argument, NULL, 'i'},
      {"ping-interval", required_argument, NULL, 'p'},
      {"subprotocol", required_argument, NULL, 's'},
      {"path", required_argument, NULL, 'P'},
      {"help", no_argument, NULL, '?' + 256},
      {NULL, 0, NULL, 0}};
  const char *host = "127.0.0.1";
  const char *protocols[32];
  size_t nprotocols = 0;
  uv_loop_t *loop = uv_default_loop();
  wschat_server *server = wschat_server_new(loop);
  int port = 8080;
  int opt;
  /* An echo sends back what it receives: its output limit must hold the
   * largest message, or one big echo would count as a slow consumer. */
  unsigned long long max_message = 0;
  int is_max_queued_set = 0;

  if (server == NULL) {
    fputs("echo: out of memory\n", stderr);
    return 1;
  }
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 'H':
      host = optarg;
      break;
    case 'm':
      max_message = parse_number("--max-message", optarg, ULLONG_MAX);
      check("--max-message", wschat_server_set_max_message(server, max_message));
      break;
    case 'c':
      check("--max-connections",
            wschat_server_set_max_connections(
                server, parse_number("--max-connections", optarg, UINT_MAX)));
      break;
    case 'I':
      check("--max-per-ip",
            wschat_server_set_max_per_ip(
                server, parse_number("--max-per-ip", optarg, UINT_MAX)));
      break;
    case 'q':
      is_max_queued_set = 1;
      check("--max-queued",
            wschat_server_set_max_queued(
                server, parse_number("--max-queued", optarg, ULLONG_MAX)));
      break;
    case 'h':
      check("--handshake-timeout",
            wschat_server_set_handshake_timeout(
                server,
                parse_number("--handshake-timeout", optarg, UINT_MAX)));
      break;
    case 'C':
      check("--close-timeout",
            wschat_server_set_close_timeout(
                server, parse_number("--close-timeout", optarg, UINT_MAX)));
      break;
    case 'i':
      check("--idle-timeout",
            wschat_server_set_idle_timeout(
                server, parse_number("--idle-timeout", optarg, UINT_MAX)));
      break;
    case 'p':
      check("--ping-interval",
            wschat_server_set_ping_interval(
                server, parse_number("--ping-interval", optarg, UINT_MAX)));
      break;
    case 's':
      if (nprotocols == sizeof(protocols) / sizeof(protocols[0])) {
        fputs("echo: --subprotocol: too many\n", stderr);
        return 2;
      }
      protocols[nprotocols++] = optarg;
      break;
    case 'P':
      check("--path", wschat_server_set_path(server, optarg));
      break;
    case '?' + 256:
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc)
    port = (int)parse_number("PORT", argv[optind++], 65535);
  if (optind < argc) {
    usage(stderr);
    return 2;
  }
  if (max_message > 0 && !is_max_queued_set &&
      max_message <= ((1ULL << 62) - (1 << 20)) / 2)
    check("--max-queued",
          wschat_server_set_max_queued(server, 2 * max_message + (1 << 20)));
  check("--subprotocol",
        wschat_server_set_subprotocols(server, protocols, nprotocols));
  wschat_server_on_message(server, on_message);
  check("listen", wschat_server_listen(server, host, port));

  for (int i = 0; i < 2; i++) {
    uv_signal_init(loop, &signals[i]);
    signals[i].data = server;
    uv_signal_start(&signals[i], on_signal, i == 0 ? SIGINT : SIGTERM);
  }

  printf(strchr(host, ':') ? "echo: listening on [%s]:%d\n"
                           : "echo: listening on %s:%d\n",
         host, wschat_server_port(server));
  fflush(stdout);

  uv_run(loop, UV_RUN_DEFAULT);
  check("shutdown", wschat_server_free(server));
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&signals[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  check("library shutdown", wschat_library_shutdown());
  return 0;
}
