/*
 * wschatd - the standalone chat server: libwschat's chat protocol on
 * /chat, the browser client and /healthz, /metrics on the same port.
 *
 *   wschatd [--host ADDR] [--port N] [--web-root DIR] [--history N]
 *           [--max-text BYTES] [--presence-limit N] [--max-message BYTES]
 *           [--rate N]
 *           [--max-connections N] [--max-per-ip N]
 *           [--allow-origin ORIGIN]... [--idle-timeout MS]
 *           [--handshake-timeout MS] [--log-level LEVEL]
 *
 * It has no protocol logic of its own: every flag becomes a call of one of
 * the library's public setters. When ready it prints
 * "wschatd: serving http://HOST:PORT/" on stdout; it logs to stderr; on
 * SIGINT or SIGTERM it closes every session with 1001 and exits 0. A bad
 * flag prints one line naming it and exits 2; a failure to listen prints
 * one line and exits 1. See wschatd(1).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "wschat.h"

#include "http.h"
#include "log.h"
#include "origin.h"
#include "webroot.h"

#define WSCHATD_VERSION "0.1.0"

#ifndef WSCHAT_PREFIX
#define WSCHAT_PREFIX "/usr/local"
#endif

#define CHAT_PATH "/chat"
/* How long a closing session may wait for its peer. The stop bounds each
 * session to 1 s (or this, if shorter), so a stop ends well within 2 s. */
#define CLOSE_TIMEOUT_MS 1500

enum {
  OPT_HOST = 256,
  OPT_PORT,
  OPT_WEB_ROOT,
  OPT_HISTORY,
  OPT_MAX_TEXT,
  OPT_PRESENCE_LIMIT,
  OPT_MAX_MESSAGE,
  OPT_RATE,
  OPT_MAX_CONNECTIONS,
  OPT_MAX_PER_IP,
  OPT_ALLOW_ORIGIN,
  OPT_IDLE_TIMEOUT,
  OPT_HANDSHAKE_TIMEOUT,
  OPT_LOG_LEVEL,
  OPT_VERSION,
  OPT_HELP
};

static const struct option options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"web-root", required_argument, NULL, OPT_WEB_ROOT},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"max-text", required_argument, NULL, OPT_MAX_TEXT},
    {"presence-limit", required_argument, NULL, OPT_PRESENCE_LIMIT},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

/* A numeric setting: given or not, and its value. Settings not given keep
 * the library's defaults, so that those are defined in one place. */
typedef struct {
  int is_set;
  unsigned long long value;
} setting;

typedef struct {
  const char *host;
  int port;
  const char *web_root; /* NULL: look for the installed or in-tree one */
  setting history;
  setting max_text;
  setting presence_limit;
  setting max_message;
  setting rate;
  setting max_connections;
  setting max_per_ip;
  setting idle_timeout;
  setting handshake_timeout;
} config;

static uv_signal_t signals[2]; /* SIGINT, SIGTERM */
static int is_stopping;

static void usage(FILE *out) {
  fputs(
      "usage: wschatd [options]\n"
      "A WebSocket chat server: the chat protocol on /chat, the browser\n"
      "client, /healthz and /metrics on one port. See wschatd(1).\n"
      "\n"
      "  --host ADDR              listen address, an IPv4 or IPv6 literal\n"
      "                           (default 127.0.0.1)\n"
      "  --port N                 listen port, 0 picks one (default 8080)\n"
      "  --web-root DIR           static files to serve (default: the\n"
      "                           installed client, else the in-tree one)\n"
      "  --history N              messages kept per room (default 1000)\n"
      "  --max-text BYTES         longest chat text (default 4096)\n"
      "  --presence-limit N       rooms larger than N announce joins and\n"
      "                           leaves only to the member concerned, and\n"
      "                           list N members; 0 means no limit\n"
      "                           (default 1000)\n"
      "  --max-message BYTES      largest WebSocket message (default 65536)\n"
      "  --rate N                 messages per second per session, burst 2N;\n"
      "                           0 turns limiting off (default 20)\n"
      "  --max-connections N      connection limit (default 10000)\n"
      "  --max-per-ip N           connections per client address; 0 means\n"
      "                           no limit (default 0: behind a proxy every\n"
      "                           client has the proxy's address)\n"
      "  --allow-origin ORIGIN    also accept WebSocket clients from ORIGIN\n"
      "                           (repeatable; * accepts any). Clients\n"
      "                           without Origin and same-origin pages are\n"
      "                           always accepted\n"
      "  --idle-timeout MS        close sessions silent this long\n"
      "                           (default 0, off)\n"
      "  --handshake-timeout MS   time a client has to send its request\n"
      "                           head (default 10000)\n"
      "  --log-level LEVEL        error, warn, info or debug (default info)\n"
      "  --version                print the version and exit\n"
      "  --help                   print this help and exit\n",
      out);
}

/* Print "wschatd: FLAG: MESSAGE" as the one line of a usage error, and
 * exit 2. */
static void die_usage(const char *flag, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

static void die_usage(const char *flag, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "wschatd: %s: ", flag);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

/* A whole decimal number in [min, max], or exit 2 naming the flag. No
 * sign, space or suffix is accepted: "-1" must not wrap around. */
static unsigned long long parse_number(const char *flag, const char *arg,
                                       unsigned long long min,
                                       unsigned long long max) {
  unsigned long long v;
  char *end;

  errno = 0;
  if (arg[0] >= '0' && arg[0] <= '9') {
    v = strtoull(arg, &end, 10);
    if (errno == 0 && *end == '\0' && v >= min && v <= max)
      return v;
  }
  die_usage(flag, "invalid value '%s' (expected %llu-%llu)", arg, min, max);
}

static void parse_setting(setting *s, const char *flag, const char *arg,
                          unsigned long long min, unsigned long long max) {
  s->value = parse_number(flag, arg, min, max);
  s->is_set = 1;
}

static const char *option_name(int val) {
  const struct option *o;
  for (o = options; o->name != NULL; o++)
    if (o->val == val)
      return o->name;
  return "?";
}

static int count_prefix_matches(const char *prefix) {
  const struct option *o;
  size_t len = strlen(prefix);
  int count = 0;
  for (o = options; o->name != NULL; o++)
    if (len > 0 && strncmp(o->name, prefix, len) == 0)
      count++;
  return count;
}

/* getopt_long's error cases, each as one line naming the flag. */
static void die_bad_option(char **argv, int code) {
  char flag[64];
  const char *arg = argv[optind - 1];

  if (optopt >= OPT_HOST)
    snprintf(flag, sizeof(flag), "--%s", option_name(optopt));
  else if (optopt > ' ' && optopt < 0x7f)
    snprintf(flag, sizeof(flag), "-%c", optopt);
  else
    snprintf(flag, sizeof(flag), "%.*s", (int)strcspn(arg, "="), arg);
  if (code == ':')
    die_usage(flag, "missing value");
  if (optopt >= OPT_HOST)
    die_usage(flag, "takes no value");
  /* getopt_long takes unique prefixes ("--max-c"); say so when a prefix
   * was not unique rather than call a real option's start unknown. */
  if (strncmp(flag, "--", 2) == 0 && count_prefix_matches(flag + 2) > 1)
    die_usage(flag, "ambiguous option (see wschatd --help)");
  die_usage(flag, "unknown option (see wschatd --help)");
}

static void parse_flags(int argc, char **argv, config *cfg) {
  wschatd_log_level level;
  unsigned char addr[16];
  int opt;

  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
    switch (opt) {
    case OPT_HOST:
      if (uv_inet_pton(AF_INET, optarg, addr) != 0 &&
          uv_inet_pton(AF_INET6, optarg, addr) != 0)
        die_usage("--host",
                  "invalid value '%s' (expected an IPv4 or IPv6 address)",
                  optarg);
      cfg->host = optarg;
      break;
    case OPT_PORT:
      cfg->port = (int)parse_number("--port", optarg, 0, 65535);
      break;
    case OPT_WEB_ROOT:
      if (optarg[0] == '\0')
        die_usage("--web-root", "invalid value '' (expected a directory)");
      cfg->web_root = optarg;
      break;
    case OPT_HISTORY:
      parse_setting(&cfg->history, "--history", optarg, 0, 1000000);
      break;
    case OPT_MAX_TEXT:
      parse_setting(&cfg->max_text, "--max-text", optarg, 1, 1048576);
      break;
    case OPT_PRESENCE_LIMIT:
      parse_setting(&cfg->presence_limit, "--presence-limit", optarg, 0,
                    UINT_MAX);
      break;
    case OPT_MAX_MESSAGE:
      parse_setting(&cfg->max_message, "--max-message", optarg, 1,
                    (unsigned long long)INT64_MAX + 1);
      break;
    case OPT_RATE:
      parse_setting(&cfg->rate, "--rate", optarg, 0, 1000000);
      break;
    case OPT_MAX_CONNECTIONS:
      parse_setting(&cfg->max_connections, "--max-connections", optarg, 1,
                    10000000);
      break;
    case OPT_MAX_PER_IP:
      parse_setting(&cfg->max_per_ip, "--max-per-ip", optarg, 0, 10000000);
      break;
    case OPT_HANDSHAKE_TIMEOUT:
      parse_setting(&cfg->handshake_timeout, "--handshake-timeout", optarg, 1,
                    3600000);
      break;
    case OPT_ALLOW_ORIGIN:
      if (!wschatd_origin_is_valid(optarg))
        die_usage("--allow-origin",
                  "invalid value '%s' (expected SCHEME://HOST[:PORT] or *)",
                  optarg);
      if (wschatd_origin_allow(optarg) != 0)
        die_usage("--allow-origin", "out of memory");
      break;
    case OPT_IDLE_TIMEOUT:
      parse_setting(&cfg->idle_timeout, "--idle-timeout", optarg, 0, 86400000);
      break;
    case OPT_LOG_LEVEL:
      if (wschatd_log_parse_level(optarg, &level) != 0)
        die_usage("--log-level",
                  "invalid value '%s' (expected error, warn, info or debug)",
                  optarg);
      wschatd_log_set_level(level);
      break;
    case OPT_VERSION:
      printf("wschatd %s (libwschat %s)\n", WSCHATD_VERSION,
             wschat_version_string());
      exit(0);
    case OPT_HELP:
      usage(stdout);
      exit(0);
    default:
      die_bad_option(argv, opt);
    }
  }
  if (optind < argc)
    die_usage(argv[optind], "unexpected argument (wschatd takes only "
                            "options; see wschatd --help)");
}

/* A setter refused a value the flag parser let through (the library's
 * range is the last word): the same one line and exit 2. */
static void check_setter(const char *flag, const setting *s, int rc) {
  if (rc < 0)
    die_usage(flag, "invalid value '%llu' (%s)", s->value, wschat_strerror(rc));
}

static void apply_settings(wschat_server *server, const config *cfg) {
  const setting *s;
  unsigned burst;

  if ((s = &cfg->history)->is_set)
    check_setter("--history", s,
                 wschat_server_set_history(server, (unsigned)s->value));
  if ((s = &cfg->max_text)->is_set)
    check_setter("--max-text", s,
                 wschat_chat_set_max_text(server, (size_t)s->value));
  if ((s = &cfg->presence_limit)->is_set)
    check_setter("--presence-limit", s,
                 wschat_chat_set_presence_limit(server, (unsigned)s->value));
  if ((s = &cfg->max_message)->is_set)
    check_setter("--max-message", s,
                 wschat_server_set_max_message(server, s->value));
  if ((s = &cfg->rate)->is_set) {
    /* A burst of two seconds' worth; the library wants a burst of at
     * least 1 even when limiting is off. */
    burst = s->value == 0 ? 1 : (unsigned)(2 * s->value);
    if (burst > 1000000)
      burst = 1000000;
    check_setter("--rate", s,
                 wschat_server_set_rate(server, (unsigned)s->value, burst));
  }
  if ((s = &cfg->max_connections)->is_set)
    check_setter("--max-connections", s,
                 wschat_server_set_max_connections(server, (unsigned)s->value));
  if ((s = &cfg->idle_timeout)->is_set)
    check_setter("--idle-timeout", s,
                 wschat_server_set_idle_timeout(server, (unsigned)s->value));
  if ((s = &cfg->max_per_ip)->is_set)
    check_setter("--max-per-ip", s,
                 wschat_server_set_max_per_ip(server, (unsigned)s->value));
  if ((s = &cfg->handshake_timeout)->is_set)
    check_setter(
        "--handshake-timeout", s,
        wschat_server_set_handshake_timeout(server, (unsigned)s->value));
}

/* Accepting stopped working (out of descriptors, usually): one line per
 * burst, which the library guarantees. */
static void on_accept_error(wschat_server *server, int err, void *userdata) {
  (void)server;
  (void)userdata;
  wschatd_log(WSCHATD_LOG_ERROR,
              "cannot accept connections: %s (%s); new connections are "
              "closed until descriptors are free",
              wschat_strerror(err), wschat_err_name(err));
}

/* Open the web root: --web-root's (exit 2 when it cannot be opened), else
 * the installed client, else the examples/web of the source tree the
 * program was built in, found from its own path: BUILD/cmd/wschatd, with
 * BUILD "build" or a variant such as "build/asan". Returns the descriptor
 * with its path in real, or -1 when there is none. */
static int open_web_root(const char *flag_value, char *real, size_t size) {
  static const char *const in_tree[] = {"/../../examples/web",
                                        "/../../../examples/web"};
  char exe[PATH_MAX];
  char tree[PATH_MAX + 32];
  ssize_t n;
  char *slash;
  size_t i;
  int fd;

  if (flag_value != NULL) {
    fd = wschatd_webroot_open(flag_value, real, size);
    if (fd < 0)
      die_usage("--web-root", "cannot open '%s': %s", flag_value,
                strerror(-fd));
    return fd;
  }
  fd = wschatd_webroot_open(WSCHAT_PREFIX "/share/wschat/web", real, size);
  if (fd >= 0)
    return fd;
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return -1;
  exe[n] = '\0';
  slash = strrchr(exe, '/');
  if (slash == NULL)
    return -1;
  *slash = '\0';
  for (i = 0; i < sizeof(in_tree) / sizeof(in_tree[0]); i++) {
    snprintf(tree, sizeof(tree), "%s%s", exe, in_tree[i]);
    fd = wschatd_webroot_open(tree, real, size);
    if (fd >= 0)
      return fd;
  }
  return -1;
}

static void on_signal(uv_signal_t *handle, int signum) {
  int i;
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";

  if (is_stopping) {
    wschatd_log(WSCHATD_LOG_INFO, "received %s; already stopping", name);
    return;
  }
  is_stopping = 1;
  wschatd_log(WSCHATD_LOG_INFO, "received %s; stopping", name);
  wschatd_http_set_stopping();
  wschat_server_stop(handle->data);
  /* Unreferenced, the signal handles no longer keep the loop alive once
   * the server's handles are gone, yet a second signal during the stop
   * still lands here instead of killing the process. */
  for (i = 0; i < 2; i++)
    uv_unref((uv_handle_t *)&signals[i]);
}

/* "http://127.0.0.1:8080", with IPv6 hosts in brackets. */
static void format_base_url(char *buf, size_t size, const char *scheme,
                            const char *host, int port) {
  snprintf(buf, size, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", scheme,
           host, port);
}

int main(int argc, char **argv) {
  config cfg = {.host = "127.0.0.1", .port = 8080};
  char web_root[PATH_MAX];
  char http_url[128];
  char ws_url[128];
  wschat_server *server;
  uv_loop_t *loop;
  int root_fd;
  int port;
  int rc;
  int i;

  parse_flags(argc, argv, &cfg);
  root_fd = open_web_root(cfg.web_root, web_root, sizeof(web_root));

  loop = uv_default_loop();
  server = wschat_server_new(loop);
  if (server == NULL) {
    fputs("wschatd: out of memory\n", stderr);
    return 1;
  }
  rc = wschat_chat_enable(server);
  if (rc == 0)
    rc = wschat_chat_set_server_name(server, "wschatd/" WSCHATD_VERSION);
  if (rc == 0)
    rc = wschat_server_set_path(server, CHAT_PATH);
  if (rc == 0)
    rc = wschat_server_set_close_timeout(server, CLOSE_TIMEOUT_MS);
  if (rc < 0) {
    fprintf(stderr, "wschatd: cannot set up the chat server: %s\n",
            wschat_strerror(rc));
    return 1;
  }
  apply_settings(server, &cfg);
  wschatd_http_configure(root_fd, CHAT_PATH);
  wschat_server_on_http(server, wschatd_http_handle);
  wschat_server_on_origin(server, wschatd_origin_check);
  wschat_server_on_accept_error(server, on_accept_error);

  rc = wschat_server_listen(server, cfg.host, cfg.port);
  if (rc < 0) {
    format_base_url(http_url, sizeof(http_url), "http", cfg.host, cfg.port);
    fprintf(stderr, "wschatd: cannot listen on %s: %s (%s)\n", http_url,
            wschat_strerror(rc), wschat_err_name(rc));
    return 1;
  }
  port = wschat_server_port(server);
  if (wschatd_origin_allow_listen_address(cfg.host, port) != 0) {
    fputs("wschatd: out of memory\n", stderr);
    return 1;
  }
  for (i = 0; i < 2; i++) {
    uv_signal_init(loop, &signals[i]);
    signals[i].data = server;
    uv_signal_start(&signals[i], on_signal, i == 0 ? SIGINT : SIGTERM);
  }

  format_base_url(http_url, sizeof(http_url), "http", cfg.host, port);
  format_base_url(ws_url, sizeof(ws_url), "ws", cfg.host, port);
  wschatd_log(WSCHATD_LOG_INFO, "wschatd %s (libwschat %s) listening on %s/",
              WSCHATD_VERSION, wschat_version_string(), http_url);
  wschatd_log(WSCHATD_LOG_INFO, "chat endpoint %s%s", ws_url, CHAT_PATH);
  if (root_fd >= 0)
    wschatd_log(WSCHATD_LOG_INFO, "web root %s", web_root);
  else
    wschatd_log(WSCHATD_LOG_WARN,
                "no web root (neither %s nor the in-tree examples/web "
                "exists); serving only /healthz and /metrics",
                WSCHAT_PREFIX "/share/wschat/web");
  printf("wschatd: serving %s/\n", http_url);
  fflush(stdout);

  uv_run(loop, UV_RUN_DEFAULT);

  rc = wschat_server_free(server);
  for (i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&signals[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  wschatd_origin_cleanup();
  if (root_fd >= 0)
    close(root_fd);
  if (rc < 0) {
    wschatd_log(WSCHATD_LOG_ERROR, "stop did not complete: %s",
                wschat_strerror(rc));
    return 1;
  }
  /* With the server freed no library memory may remain: anything left is
   * a leak, reported as a failed exit. */
  if (wschat_library_shutdown() < 0) {
    wschatd_log(WSCHATD_LOG_ERROR,
                "%zu bytes of libwschat memory still allocated at exit",
                wschat_live_bytes());
    return 1;
  }
  wschatd_log(WSCHATD_LOG_INFO, "stopped");
  return 0;
}
