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

/* What a wbuf holds, which says what may be done with it. */
enum {
  WSCHAT__WBUF_OWN = 0,   /* one frame or one session's bytes */
  WSCHAT__WBUF_CHUNK = 1, /* a coalescing chunk from a server's pool */
  WSCHAT__WBUF_FRAMES = 2 /* a block small shared frames are carved from */
};

typedef struct wschat__wbuf {
  uint32_t refs;
  uint32_t kind; /* WSCHAT__WBUF_* */
  size_t len;    /* bytes written into data */
  size_t cap;
  uint8_t data[];
} wschat__wbuf;

/* Blocks of WSCHAT__FRAME_BLOCK_SIZE hold shared frames of up to
 * WSCHAT__FRAME_CARVE_MAX bytes. */
#define WSCHAT__FRAME_BLOCK_SIZE (16 * 1024)
#define WSCHAT__FRAME_CARVE_MAX  (4 * 1024)

/* A wbuf with room for cap bytes, len 0 and one reference; NULL when out
 * of memory. */
wschat__wbuf *wschat__wbuf_new(size_t cap);

static inline wschat__wbuf *wschat__wbuf_ref(wschat__wbuf *wb) {
  wb->refs++;
  return wb;
}

/* Drop a reference; frees the buffer with the last one. */
void wschat__wbuf_unref(wschat__wbuf *wb);

/*
 * Room for a shared frame of len <= WSCHAT__FRAME_CARVE_MAX bytes, right
 * after the previous one this thread carved: *wb gets the block (with a
 * reference for the caller) and *off where the room starts; the caller
 * writes exactly len bytes there. The frames a loop turn makes therefore
 * sit back to back, and a recipient's queue holds consecutive ones as one
 * stretch, sent as one iovec. The thread keeps no reference: a block is
 * freed once its frames and the queues that carried them are done.
 * Returns 0, or -1 when out of memory.
 */
int wschat__wbuf_carve(size_t len, wschat__wbuf **wb, size_t *off);

#endif
