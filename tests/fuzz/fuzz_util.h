/*
 * fuzz_util.h - shared by the libFuzzer targets in tests/fuzz/: a check
 * that aborts with a message (so libFuzzer records the input as a crash
 * even where no sanitizer would notice), and a splitter that turns the
 * first bytes of an input into the sizes of the chunks the rest is fed
 * in, so that incremental parsers see every kind of split.
 * Header-only; each target includes it once.
 */
#ifndef WSCHAT_TESTS_FUZZ_UTIL_H
#define WSCHAT_TESTS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/*
 * Input layout for split feeding: byte 0's low 3 bits give how many chunk
 * sizes follow (0..7), each one byte; the payload is everything after
 * them. Chunk k gets min(size[k], what is left) bytes (a size of 0 feeds
 * an empty chunk), and the last chunk takes whatever remains.
 */
typedef struct fuzz_split {
  const uint8_t *payload;
  size_t payload_len;
  const uint8_t *sizes;
  size_t n_sizes;
  size_t next_size; /* index of the next size to use */
  size_t off;       /* bytes of payload handed out so far */
  int done;
} fuzz_split;

/* Returns 0 when the input is too short to hold its own split header. */
static inline int fuzz_split_init(fuzz_split *s, const uint8_t *data,
                                  size_t len) {
  size_t n;
  if (len < 1)
    return 0;
  n = data[0] & 7;
  if (len < 1 + n)
    return 0;
  s->sizes = data + 1;
  s->n_sizes = n;
  s->payload = data + 1 + n;
  s->payload_len = len - 1 - n;
  s->next_size = 0;
  s->off = 0;
  s->done = 0;
  return 1;
}

/* The next chunk as [*off, *off + *n) of the payload; 0 when all of the
 * payload has been handed out (always at least one chunk, maybe empty). */
static inline int fuzz_split_next(fuzz_split *s, size_t *off, size_t *n) {
  size_t left = s->payload_len - s->off;
  if (s->done)
    return 0;
  *off = s->off;
  if (s->next_size < s->n_sizes) {
    size_t want = s->sizes[s->next_size++];
    *n = want < left ? want : left;
  } else {
    *n = left;
    s->done = 1;
  }
  s->off += *n;
  return 1;
}

/* FNV-1a, to compare delivered messages between two runs cheaply. */
static inline uint64_t fuzz_hash(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = UINT64_C(1469598103934665603);
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

#endif
