/*
 * log.h - wschatd's log: one line per event on stderr,
 *
 *   2026-11-25T21:40:00.123Z info listening on http://127.0.0.1:8080/
 *
 * (ISO-8601 UTC with milliseconds, the level, the message). Messages often
 * carry what a client sent (a path, an Origin), so every byte outside
 * printable ASCII, and the backslash, is written as \xNN: a client can
 * neither forge a log line nor put a terminal escape into one.
 */
#ifndef WSCHATD_LOG_H
#define WSCHATD_LOG_H

typedef enum {
  WSCHATD_LOG_ERROR = 0,
  WSCHATD_LOG_WARN,
  WSCHATD_LOG_INFO,
  WSCHATD_LOG_DEBUG
} wschatd_log_level;

/* Map "error", "warn", "info" or "debug" to its level. Returns 0, or -1
 * for any other name. */
int wschatd_log_parse_level(const char *name, wschatd_log_level *out);

/* Events less severe than `level` are dropped. The default is info. */
void wschatd_log_set_level(wschatd_log_level level);

/* Whether an event of this level would be written (to skip costly
 * formatting). */
int wschatd_log_enabled(wschatd_log_level level);

/* Write one line, if the level is enabled. A message longer than about
 * 1 KiB is cut. */
void wschatd_log(wschatd_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* WSCHATD_LOG_H */
