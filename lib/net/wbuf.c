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
  wb->is_chunk = 0;
  wb->len = 0;
  wb->cap = cap;
  return wb;
}

void wschat__wbuf_unref(wschat__wbuf *wb) {
  if (--wb->refs == 0)
    wschat__free(wb);
}
