#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* The header keeps the size and preserves max_align_t alignment. */
typedef union block_header {
  size_t size;
  max_align_t align;
} block_header;

static wschat_malloc_func user_malloc = malloc;
static wschat_realloc_func user_realloc = realloc;
static wschat_free_func user_free = free;
static atomic_size_t live_bytes;

int wschat_replace_allocator(wschat_malloc_func malloc_fn,
                             wschat_realloc_func realloc_fn,
                             wschat_free_func free_fn) {
  if (malloc_fn == NULL || realloc_fn == NULL || free_fn == NULL)
    return WSCHAT_EINVAL;
  if (atomic_load(&live_bytes) != 0)
    return WSCHAT_EBUSY;
  user_malloc = malloc_fn;
  user_realloc = realloc_fn;
  user_free = free_fn;
  return 0;
}

size_t wschat_live_bytes(void) {
  return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

/* The allocator is the only process-wide state (see wschat.h). */
int wschat_library_shutdown(void) {
  if (atomic_load(&live_bytes) != 0)
    return WSCHAT_EBUSY;
  user_malloc = malloc;
  user_realloc = realloc;
  user_free = free;
  return 0;
}

void *wschat__malloc(size_t size) {
  block_header *h;
  if (size > SIZE_MAX - sizeof(*h))
    return NULL;
  h = user_malloc(sizeof(*h) + size);
  if (h == NULL)
    return NULL;
  h->size = size;
  atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed);
  return h + 1;
}

void *wschat__calloc(size_t count, size_t size) {
  void *p;
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  p = wschat__malloc(count * size);
  if (p != NULL)
    memset(p, 0, count * size);
  return p;
}

void *wschat__realloc(void *ptr, size_t size) {
  block_header *h;
  size_t old;
  if (ptr == NULL)
    return wschat__malloc(size);
  if (size > SIZE_MAX - sizeof(*h))
    return NULL;
  h = (block_header *)ptr - 1;
  old = h->size;
  h = user_realloc(h, sizeof(*h) + size);
  if (h == NULL)
    return NULL;
  h->size = size;
  if (size >= old)
    atomic_fetch_add_explicit(&live_bytes, size - old, memory_order_relaxed);
  else
    atomic_fetch_sub_explicit(&live_bytes, old - size, memory_order_relaxed);
  return h + 1;
}

void wschat__free(void *ptr) {
  block_header *h;
  if (ptr == NULL)
    return;
  h = (block_header *)ptr - 1;
  atomic_fetch_sub_explicit(&live_bytes, h->size, memory_order_relaxed);
  user_free(h);
}

int wschat__release_free_memory(void) {
#ifdef __GLIBC__
  if (user_malloc == malloc && user_free == free) {
    malloc_trim(0);
    return 1;
  }
#endif
  return 0;
}

char *wschat__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = wschat__malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

const wschat__allocator wschat__allocator_default = {wschat__realloc,
                                                     wschat__free};
