/*
 * procfs.h - what the bench reads about the server process from /proc:
 * its CPU time (utime + stime of /proc/PID/stat) and its resident set
 * (VmRSS of /proc/PID/status).
 */
#ifndef WSCHAT_BENCH_PROCFS_H
#define WSCHAT_BENCH_PROCFS_H

#include <stdint.h>
#include <sys/types.h>

/* User plus system CPU seconds pid has used, or -1 when it cannot be
 * read (no such process). Resolution: one clock tick (usually 10 ms). */
double bench_proc_cpu_seconds(pid_t pid);

/* VmRSS of pid in kB, or -1 when it cannot be read. */
long bench_proc_rss_kb(pid_t pid);

#endif
