#include "net/wbuf.h"

#include "core/alloc.h"

wschat__wbuf *wschat__wbuf_new(size_t cap) {
  wschat__wbuf *wb;
  if (cap > SIZE_MAX - sizeof(*wb))
    return NULL;
  wb = wschat__malloc(sizeof(*wb) + cap);
  if (wb == NULL)
    return NULL;
  wb->refs = 1;
  wb->kind = WSCHAT__WBUF_OWN;
  wb->len = 0;
  wb->cap = cap;
  return wb;
}

/* The block this thread carves frames from; not a reference (see
 * wschat__wbuf_carve). Buffers and frames are loop-thread objects. */
static _Thread_local wschat__wbuf *frame_block;

void wschat__wbuf_unref(wschat__wbuf *wb) {
  if (--wb->refs == 0) {
    if (wb == frame_block)
      frame_block = NULL;
    wschat__free(wb);
  }
}

int wschat__wbuf_carve(size_t len, wschat__wbuf **wb, size_t *off) {
  wschat__wbuf *b = frame_block;
  if (len > WSCHAT__FRAME_CARVE_MAX)
    return -1;
  if (b == NULL || b->cap - b->len < len) {
    /* The full block stays with those using it. */
    if ((b = wschat__wbuf_new(WSCHAT__FRAME_BLOCK_SIZE)) == NULL)
      return -1;
    b->kind = WSCHAT__WBUF_FRAMES;
    b->refs = 0;
    frame_block = b;
  }
  *off = b->len;
  b->len += len;
  *wb = wschat__wbuf_ref(b);
  return 0;
}
