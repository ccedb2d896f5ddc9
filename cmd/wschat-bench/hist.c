/*
 * hist.c - see hist.h. The bucket of v is (shift << 7) + (v >> shift),
 * shift being how far v must move right to fit in 8 bits: 0..255 map to
 * themselves, and each later power of two starts where the previous one
 * ended.
 */
#include "hist.h"

#include <stddef.h>

static unsigned hist_shift(uint64_t v) {
  unsigned msb;
  if (v < (1u << (BENCH_HIST_SUB_BITS + 1)))
    return 0;
  msb = 63u - (unsigned)__builtin_clzll(v);
  return msb - BENCH_HIST_SUB_BITS;
}

void bench_hist_add(bench_hist *h, uint64_t value) {
  unsigned shift = hist_shift(value);
  h->buckets[((uint64_t)shift << BENCH_HIST_SUB_BITS) + (value >> shift)]++;
  h->count++;
  if (value > h->max)
    h->max = value;
}

uint64_t bench_hist_quantile(const bench_hist *h, double q) {
  uint64_t rank, seen = 0;
  size_t i;

  if (h->count == 0)
    return 0;
  if (q <= 0)
    q = 0;
  rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > h->count)
    rank = h->count;
  for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      unsigned shift = i < ((size_t)2 << BENCH_HIST_SUB_BITS)
                           ? 0
                           : (unsigned)(i >> BENCH_HIST_SUB_BITS) - 1;
      uint64_t low = (i - ((uint64_t)shift << BENCH_HIST_SUB_BITS)) << shift;
      uint64_t mid = low + (((uint64_t)1 << shift) >> 1);
      return mid > h->max ? h->max : mid;
    }
  }
  return h->max;
}
