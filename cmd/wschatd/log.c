/* wschatd's one-line-per-event log on stderr; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static wschatd_log_level log_level = WSCHATD_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int wschatd_log_parse_level(const char *name, wschatd_log_level *out) {
  size_t i;
  for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(name, level_names[i]) == 0) {
      *out = (wschatd_log_level)i;
      return 0;
    }
  }
  return -1;
}

void wschatd_log_set_level(wschatd_log_level level) {
  log_level = level;
}

int wschatd_log_enabled(wschatd_log_level level) {
  return level <= log_level;
}

/* "2026-11-25T21:40:00.123Z" into buf (at least 32 bytes). */
static void format_timestamp(char *buf, size_t size) {
  struct timespec now;
  struct tm tm;
  size_t n;

  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

void wschatd_log(wschatd_log_level level, const char *fmt, ...) {
  static const char hex[] = "0123456789abcdef";
  char message[1024];
  char line[64 + 4 * sizeof(message)];
  size_t n;
  const unsigned char *p;
  va_list ap;

  if (!wschatd_log_enabled(level))
    return;
  va_start(ap, fmt);
  vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);

  format_timestamp(line, 32);
  n = strlen(line);
  n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_names[level]);
  for (p = (const unsigned char *)message; *p != '\0'; p++) {
    if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
      line[n++] = (char)*p;
    } else {
      line[n++] = '\\';
      line[n++] = 'x';
      line[n++] = hex[*p >> 4];
      line[n++] = hex[*p & 0xf];
    }
  }
  line[n++] = '\n';
  /* One write per line, so that lines from a crash handler or a
   * concurrent writer never interleave inside one another. */
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}
