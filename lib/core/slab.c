#include "core/slab.h"

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"

/* Under valgrind, memcheck is told about each object as if malloc had
 * handed it out, so that a use after free, a read of a free object or an
 * object never freed is reported as for any other heap block; free and
 * never-used parts of a block are off limits. Outside valgrind the
 * requests cost a few instructions each. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SLAB_VALGRIND 1
#endif
#endif
#ifndef SLAB_VALGRIND
#define VALGRIND_MALLOCLIKE_BLOCK(addr, size, redzone, zeroed)
#define VALGRIND_FREELIKE_BLOCK(addr, redzone)
#define VALGRIND_MAKE_MEM_NOACCESS(addr, len)
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, len)
#define VALGRIND_MAKE_MEM_DEFINED(addr, len)
#endif

void wschat__slab_init(wschat__slab *s, size_t size, size_t align) {
  memset(s, 0, sizeof(*s));
  /* A free object holds a pointer. */
  if (align < _Alignof(void *))
    align = _Alignof(void *);
  if (size < sizeof(void *))
    size = sizeof(void *);
  s->size = (size + align - 1) / align * align;
  s->per_block = (uint32_t)(WSCHAT__SLAB_BLOCK / s->size);
}

void wschat__slab_destroy(wschat__slab *s) {
  uint32_t i;
  for (i = 0; i < s->nblocks; i++) {
    VALGRIND_MAKE_MEM_UNDEFINED(s->blocks[i].base, WSCHAT__SLAB_BLOCK);
    wschat__free(s->blocks[i].base);
  }
  wschat__free(s->blocks);
  s->blocks = NULL;
  s->nblocks = s->cap = s->hint = 0;
  s->live = 0;
}

#if !WSCHAT__SLAB_PASSTHROUGH
/* The index of the block holding p: the last one whose base is not above
 * it. */
static uint32_t slab_find(const wschat__slab *s, const void *p) {
  uint32_t lo = 0, hi = s->nblocks;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if ((const char *)p < s->blocks[mid].base)
      hi = mid;
    else
      lo = mid;
  }
  return lo;
}

static wschat__slab_block *slab_add_block(wschat__slab *s) {
  char *base;
  uint32_t at;
  if (s->nblocks == s->cap) {
    uint32_t cap = s->cap ? s->cap * 2 : 8;
    wschat__slab_block *b =
        wschat__realloc(s->blocks, cap * sizeof(*s->blocks));
    if (b == NULL)
      return NULL;
    s->blocks = b;
    s->cap = cap;
  }
  if ((base = wschat__malloc(WSCHAT__SLAB_BLOCK)) == NULL)
    return NULL;
  VALGRIND_MAKE_MEM_NOACCESS(base, WSCHAT__SLAB_BLOCK);
  s->blocks_added++;
  at = 0;
  if (s->nblocks > 0) {
    at = slab_find(s, base);
    if (base > s->blocks[at].base)
      at++;
  }
  memmove(&s->blocks[at + 1], &s->blocks[at],
          (s->nblocks - at) * sizeof(*s->blocks));
  s->nblocks++;
  s->blocks[at].base = base;
  s->blocks[at].free = NULL;
  s->blocks[at].used = 0;
  s->blocks[at].carved = 0;
  s->hint = at;
  return &s->blocks[at];
}
#endif

void *wschat__slab_alloc(wschat__slab *s) {
  void *p;
#if WSCHAT__SLAB_PASSTHROUGH
  if ((p = wschat__calloc(1, s->size)) != NULL)
    s->live++;
  return p;
#else
  wschat__slab_block *b = NULL;
  uint32_t i;
  if (s->hint < s->nblocks && s->blocks[s->hint].used < s->per_block) {
    b = &s->blocks[s->hint];
  } else {
    for (i = 0; i < s->nblocks; i++) {
      if (s->blocks[i].used < s->per_block) {
        b = &s->blocks[i];
        s->hint = i;
        break;
      }
    }
  }
  if (b == NULL && (b = slab_add_block(s)) == NULL)
    return NULL;
  if (b->free != NULL) {
    p = b->free;
    VALGRIND_MAKE_MEM_DEFINED(p, sizeof(void *));
    memcpy(&b->free, p, sizeof(void *));
  } else {
    p = b->base + (size_t)b->carved++ * s->size;
  }
  VALGRIND_MALLOCLIKE_BLOCK(p, s->size, 0, 0);
  b->used++;
  s->live++;
  memset(p, 0, s->size);
  return p;
#endif
}

void wschat__slab_free(wschat__slab *s, void *p) {
#if WSCHAT__SLAB_PASSTHROUGH
  if (p == NULL)
    return;
  s->live--;
  wschat__free(p);
#else
  uint32_t i;
  wschat__slab_block *b;
  if (p == NULL)
    return;
  i = slab_find(s, p);
  b = &s->blocks[i];
  VALGRIND_FREELIKE_BLOCK(p, 0);
  VALGRIND_MAKE_MEM_UNDEFINED(p, sizeof(void *));
  memcpy(p, &b->free, sizeof(void *));
  VALGRIND_MAKE_MEM_NOACCESS(p, sizeof(void *));
  b->free = p;
  b->used--;
  s->live--;
  if (b->used > 0) {
    /* The freed object is the next one handed out. */
    s->hint = i;
    return;
  }
  /* An empty block goes back to the allocator, and the array with the
   * last block, so an idle server holds nothing here. */
  VALGRIND_MAKE_MEM_UNDEFINED(b->base, WSCHAT__SLAB_BLOCK);
  wschat__free(b->base);
  s->blocks_freed++;
  memmove(&s->blocks[i], &s->blocks[i + 1],
          (s->nblocks - i - 1) * sizeof(*s->blocks));
  s->nblocks--;
  s->hint = 0;
  if (s->nblocks == 0) {
    wschat__free(s->blocks);
    s->blocks = NULL;
    s->cap = 0;
  }
#endif
}
