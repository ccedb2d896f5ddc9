/*
 * procfs.c - see procfs.h. Both files are read with one read() into a
 * stack buffer: they are small, and the RSS is sampled every 100 ms.
 */
#include "procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0)
    return -1;
  n = read(fd, buf, cap - 1);
  close(fd);
  if (n >= 0)
    buf[n] = '\0';
  return n;
}

double bench_proc_cpu_seconds(pid_t pid) {
  char path[64], buf[1024];
  const char *p;
  unsigned long long utime, stime;
  int field;

  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  if (read_small(path, buf, sizeof(buf)) <= 0)
    return -1;
  /* The command name may hold spaces and parentheses: fields are counted
   * from the last ')', after which comes field 3 (state). */
  p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  p++;
  for (field = 3; field < 14; field++) {
    p = strchr(p + 1, ' ');
    if (p == NULL)
      return -1;
  }
  if (sscanf(p, " %llu %llu", &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_rss_kb(pid_t pid) {
  char path[64], buf[4096];
  const char *p;

  snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
  if (read_small(path, buf, sizeof(buf)) <= 0)
    return -1;
  p = strstr(buf, "\nVmRSS:");
  if (p == NULL)
    return -1;
  return strtol(p + 7, NULL, 10);
}
