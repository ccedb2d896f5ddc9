/*
 * wbuf.h - refcounted, immutable-once-queued byte buffers holding encoded
 * frames. One wbuf can sit in many sessions' write queues at once (a
 * broadcast is encoded once); it is freed when the last reference goes.
 * Loop thread only: the count is not atomic.
 */
#ifndef WSCHAT_NET_WBUF_H
#define WSCHAT_NET_WBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct wschat__wbuf {
  uint32_t refs;
  uint32_t is_chunk; /* a coalescing chunk from the server pool */
  size_t len;        /* bytes written into data */
  size_t cap;
  uint8_t data[];
} wschat__wbuf;

/* A wbuf with room for cap bytes, len 0 and one reference; NULL when out
 * of memory. */
wschat__wbuf *wschat__wbuf_new(size_t cap);

static inline wschat__wbuf *wschat__wbuf_ref(wschat__wbuf *wb) {
  wb->refs++;
  return wb;
}

/* Drop a reference; frees the buffer with the last one. */
void wschat__wbuf_unref(wschat__wbuf *wb);

#endif
