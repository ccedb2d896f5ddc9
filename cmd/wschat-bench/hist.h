/*
 * hist.h - a fixed-size log-linear latency histogram (HdrHistogram's
 * layout, reduced): values below 256 have a bucket each, and every
 * power-of-two range above is split into 128 equal buckets, so a
 * percentile is within 1/128 (0.8%) of the true value, whatever the
 * range, with no per-sample storage and no allocation.
 */
#ifndef WSCHAT_BENCH_HIST_H
#define WSCHAT_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7
/* Values up to 2^64 - 1: shift 0 has 256 buckets, shifts 1..56 128 each. */
#define BENCH_HIST_BUCKETS                                                     \
  ((64 - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

typedef struct bench_hist {
  uint64_t count;
  uint64_t max;
  uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_add(bench_hist *h, uint64_t value);

/* The value at quantile q (0..1): the midpoint of the bucket holding the
 * ceil(q * count)-th smallest sample (never above the largest sample).
 * 0 when the histogram is empty. */
uint64_t bench_hist_quantile(const bench_hist *h, double q);

#endif
