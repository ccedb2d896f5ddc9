/*
 * wschat-bench - a load generator for WebSocket (and plain TCP) servers,
 * C on one libuv loop, able to saturate a C server from one core.
 *
 *   wschat-bench MODE [options]    MODE: echo | broadcast | connect |
 *                                        idle | slow
 *
 * Each run ends with exactly one summary line on stdout,
 * "wschat-bench MODE: key=value ...", everything else goes to stderr.
 * Exit status: 0 when the run completed and correctness held, 1 when it
 * did not (the reason on stderr), 2 on bad usage (one line naming the
 * flag). See usage() for the options.
 *
 * What the figures mean:
 *   - Every echo/broadcast/slow payload starts with "SEQ:SENDER:TSNS:"
 *     (TSNS: CLOCK_MONOTONIC ns when it was queued) and is padded with 'x'
 *     to --size. Latency is the time it was read minus TSNS.
 *   - The window is --duration seconds after --warmup. A message belongs
 *     to the window when its TSNS does, wherever it arrives before the
 *     drain ends: msgs (echo) and deliveries (broadcast, slow) count the
 *     arrivals of those messages, sent counts them once, so with nothing
 *     lost deliveries == sent x receivers exactly. The per-second rates
 *     divide by the window's length.
 *   - After the window no new message is sent; the run waits until
 *     everything sent has arrived everywhere (at most 1 s; slow 3 s), then
 *     counts as lost whatever is still missing, warmup included.
 *   - broadcast --rate 0: each sender keeps --inflight of its messages
 *     not yet received back by itself; the fan-out a server batches per
 *     write grows with it, so compare servers at the same --inflight.
 *   - json dialect: connections join --room before the load starts;
 *     idle connections only read the welcome (no join: presence events
 *     would make opening N of them cost N^2 frames). slow: the --slow
 *     receivers are extra connections after the --connections normal
 *     ones; they join, stop reading, and are read again after the window
 *     to see whether the server closed them (close frame or EOF).
 *   - server_cpu_s: utime + stime of /proc/PID/stat over the window (on
 *     loopback the kernel's TCP work for both ends is partly charged to
 *     whichever process triggered it). RSS: VmRSS of /proc/PID/status;
 *     idle compares it before connecting and once it has settled, so it
 *     is only meaningful against a freshly started server.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "procfs.h"

enum {
  OPT_HOST = 256,
  OPT_PORT,
  OPT_PATH,
  OPT_PROTO,
  OPT_DIALECT,
  OPT_ROOM,
  OPT_DURATION,
  OPT_WARMUP,
  OPT_CONNECTIONS,
  OPT_SIZE,
  OPT_SOURCES,
  OPT_SERVER_PID,
  OPT_DEPTH,
  OPT_SENDERS,
  OPT_RATE,
  OPT_INFLIGHT,
  OPT_SLOW,
  OPT_HELP
};

static const struct option options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"path", required_argument, NULL, OPT_PATH},
    {"proto", required_argument, NULL, OPT_PROTO},
    {"dialect", required_argument, NULL, OPT_DIALECT},
    {"room", required_argument, NULL, OPT_ROOM},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"size", required_argument, NULL, OPT_SIZE},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"senders", required_argument, NULL, OPT_SENDERS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"slow", required_argument, NULL, OPT_SLOW},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static void usage(FILE *out) {
  fputs("usage: wschat-bench MODE [options]\n"
        "MODE: echo | broadcast | connect | idle | slow\n"
        "  --host ADDR          server address (default 127.0.0.1)\n"
        "  --port N             server port (required)\n"
        "  --path PATH          upgrade path (default /)\n"
        "  --proto ws|raw       WebSocket (default), or plain TCP with each\n"
        "                       message a 4-byte big-endian length + payload\n"
        "  --dialect plain|json payloads as they are (default), or wschatd's\n"
        "                       JSON dialect (subprotocol wschat.v1.json)\n"
        "  --room NAME          json: the room to join (default bench)\n"
        "  --duration SEC       measured window (default 5)\n"
        "  --warmup SEC         load before the window (default 1)\n"
        "  --connections C      connections (echo 100, broadcast 1000,\n"
        "                       connect 50, idle 1000, slow 1000)\n"
        "  --size S             payload bytes (echo 32, broadcast/slow 64)\n"
        "  --sources N          source addresses 127.0.0.1 .. 127.0.0.N\n"
        "                       (default 1)\n"
        "  --server-pid PID     read the server's CPU time and RSS in /proc\n"
        "echo:       --depth D       messages in flight per connection (1)\n"
        "broadcast:  --senders K     the first K connections also send (1)\n"
        "            --rate R        messages/s per sender; 0 = as fast as\n"
        "                            absorbed (default 0)\n"
        "            --inflight N    rate 0: a sender's messages not yet back\n"
        "                            (default 8)\n"
        "slow:       broadcast's options, plus\n"
        "            --slow N        receivers that stop reading (default 1)\n",
        out);
}

static void die_usage(const char *flag, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

static void die_usage(const char *flag, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "wschat-bench: %s: ", flag);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

static const char *flag_name(int val) {
  static char buf[40];
  const struct option *o;
  for (o = options; o->name != NULL; o++)
    if (o->val == val) {
      snprintf(buf, sizeof(buf), "--%s", o->name);
      return buf;
    }
  return "?";
}

static unsigned long long parse_uint(int opt, const char *arg,
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
  die_usage(flag_name(opt), "invalid value '%s' (expected %llu-%llu)", arg, min,
            max);
}

static double parse_seconds(int opt, const char *arg, double min) {
  double v;
  char *end;
  errno = 0;
  if ((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '.') {
    v = strtod(arg, &end);
    if (errno == 0 && *end == '\0' && isfinite(v) && v >= min && v <= 1e6)
      return v;
  }
  die_usage(flag_name(opt), "invalid value '%s' (expected a number >= %g)", arg,
            min);
}

static int is_room_name(const char *s) {
  size_t n = strlen(s), i;
  if (n < 1 || n > 64)
    return 0;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return 1;
}

/* Options that only some modes take; each names the modes. */
static void check_mode(bench_mode mode, int opt, unsigned modes) {
  if (!(modes & (1u << mode)))
    die_usage(flag_name(opt), "not an option of this mode");
}

#define M(m) (1u << (m))

int main(int argc, char **argv) {
  bench_options o;
  const char *mode;
  struct sockaddr_in6 sa;
  struct rlimit rl;
  int opt, is_set[OPT_HELP + 1] = {0};

  if (argc >= 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-')
    die_usage("MODE", "missing (echo, broadcast, connect, idle or slow)");
  mode = argv[1];
  memset(&o, 0, sizeof(o));
  if (strcmp(mode, "echo") == 0)
    o.mode = BENCH_ECHO;
  else if (strcmp(mode, "broadcast") == 0)
    o.mode = BENCH_BROADCAST;
  else if (strcmp(mode, "connect") == 0)
    o.mode = BENCH_CONNECT;
  else if (strcmp(mode, "idle") == 0)
    o.mode = BENCH_IDLE;
  else if (strcmp(mode, "slow") == 0)
    o.mode = BENCH_SLOW;
  else
    die_usage("MODE",
              "unknown mode '%s' (echo, broadcast, connect, idle or "
              "slow)",
              mode);

  o.host = "127.0.0.1";
  o.path = "/";
  o.proto = BENCH_PROTO_WS;
  o.dialect = BENCH_DIALECT_PLAIN;
  o.room = "bench";
  o.duration = 5;
  o.warmup = 1;
  o.sources = 1;
  o.depth = 1;
  o.senders = 1;
  o.inflight = 8;
  o.slow = 1;

  optind = 2;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
    if (opt >= OPT_HOST && opt <= OPT_HELP)
      is_set[opt] = 1;
    switch (opt) {
    case OPT_HOST:
      o.host = optarg;
      break;
    case OPT_PORT:
      o.port = (int)parse_uint(opt, optarg, 1, 65535);
      break;
    case OPT_PATH:
      if (optarg[0] != '/' || strpbrk(optarg, " \r\n") != NULL)
        die_usage("--path", "must start with / and hold no space");
      o.path = optarg;
      break;
    case OPT_PROTO:
      if (strcmp(optarg, "ws") == 0)
        o.proto = BENCH_PROTO_WS;
      else if (strcmp(optarg, "raw") == 0)
        o.proto = BENCH_PROTO_RAW;
      else
        die_usage("--proto", "invalid value '%s' (ws or raw)", optarg);
      break;
    case OPT_DIALECT:
      if (strcmp(optarg, "plain") == 0)
        o.dialect = BENCH_DIALECT_PLAIN;
      else if (strcmp(optarg, "json") == 0)
        o.dialect = BENCH_DIALECT_JSON;
      else
        die_usage("--dialect", "invalid value '%s' (plain or json)", optarg);
      break;
    case OPT_ROOM:
      if (!is_room_name(optarg))
        die_usage("--room", "1-64 characters of A-Z a-z 0-9 _ . -");
      o.room = optarg;
      break;
    case OPT_DURATION:
      o.duration = parse_seconds(opt, optarg, 0.001);
      break;
    case OPT_WARMUP:
      o.warmup = parse_seconds(opt, optarg, 0);
      break;
    case OPT_CONNECTIONS:
      o.connections = (unsigned)parse_uint(opt, optarg, 1, 1000000);
      break;
    case OPT_SIZE:
      o.size = (size_t)parse_uint(opt, optarg, 0, 64u << 20);
      break;
    case OPT_SOURCES:
      o.sources = (unsigned)parse_uint(opt, optarg, 1, 254);
      break;
    case OPT_SERVER_PID:
      o.server_pid = (pid_t)parse_uint(opt, optarg, 1, 0x7fffffff);
      break;
    case OPT_DEPTH:
      check_mode(o.mode, opt, M(BENCH_ECHO));
      o.depth = (unsigned)parse_uint(opt, optarg, 1, 1000000);
      break;
    case OPT_SENDERS:
      check_mode(o.mode, opt, M(BENCH_BROADCAST) | M(BENCH_SLOW));
      o.senders = (unsigned)parse_uint(opt, optarg, 1, 1000000);
      break;
    case OPT_RATE:
      check_mode(o.mode, opt, M(BENCH_BROADCAST) | M(BENCH_SLOW));
      o.rate = parse_seconds(opt, optarg, 0);
      break;
    case OPT_INFLIGHT:
      check_mode(o.mode, opt, M(BENCH_BROADCAST) | M(BENCH_SLOW));
      o.inflight = (unsigned)parse_uint(opt, optarg, 1, 1000000);
      break;
    case OPT_SLOW:
      check_mode(o.mode, opt, M(BENCH_SLOW));
      o.slow = (unsigned)parse_uint(opt, optarg, 0, 1000000);
      break;
    case OPT_HELP:
      usage(stdout);
      return 0;
    case ':':
      die_usage(optopt >= OPT_HOST ? flag_name(optopt) : argv[optind - 1],
                "missing value");
    default:
      if (optopt >= OPT_HOST)
        die_usage(flag_name(optopt), "takes no value");
      die_usage(argv[optind - 1], "unknown option");
    }
  }
  if (optind < argc)
    die_usage(argv[optind], "unexpected argument");

  if (!is_set[OPT_PORT])
    die_usage("--port", "required");
  if (!is_set[OPT_CONNECTIONS])
    o.connections = o.mode == BENCH_ECHO      ? 100
                    : o.mode == BENCH_CONNECT ? 50
                                              : 1000;
  if (!is_set[OPT_SIZE])
    o.size = o.mode == BENCH_ECHO ? 32 : 64;
  if (uv_ip4_addr(o.host, 0, (struct sockaddr_in *)&sa) != 0 &&
      uv_ip6_addr(o.host, 0, &sa) != 0)
    die_usage("--host", "'%s' is not an IPv4 or IPv6 address", o.host);
  if (o.sources > 1 && uv_ip4_addr(o.host, 0, (struct sockaddr_in *)&sa) != 0)
    die_usage("--sources", "needs an IPv4 --host");
  if (o.dialect == BENCH_DIALECT_JSON && o.proto == BENCH_PROTO_RAW)
    die_usage("--dialect", "json needs --proto ws");
  if (o.dialect == BENCH_DIALECT_JSON && o.mode == BENCH_ECHO)
    die_usage("--dialect", "json is for broadcast, slow, connect and idle");
  if ((o.mode == BENCH_BROADCAST || o.mode == BENCH_SLOW) &&
      o.senders > o.connections)
    die_usage("--senders", "%u senders but only %u connections", o.senders,
              o.connections);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
      (unsigned long long)o.connections + (o.mode == BENCH_SLOW ? o.slow : 0) +
              32 >
          (unsigned long long)rl.rlim_max)
    die_usage("--connections",
              "%u connections need more descriptors than the hard limit "
              "(%llu)",
              o.connections + (o.mode == BENCH_SLOW ? o.slow : 0),
              (unsigned long long)rl.rlim_max);
  if (o.server_pid != 0 && bench_proc_cpu_seconds(o.server_pid) < 0)
    die_usage("--server-pid", "no process %ld to read in /proc",
              (long)o.server_pid);
  return bench_run(&o);
}
