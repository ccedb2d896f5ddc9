/*
 * slab.h - fixed-size objects carved from large blocks.
 *
 * Sessions are the objects a server holds most of, and most of an idle
 * server's memory. Taken one by one from malloc, each pays two headers
 * (malloc's and ours, see alloc.c) and lies between the short-lived
 * allocations of the connection bursts that created it, so the holes those
 * leave when freed stay resident. A slab packs objects of one size into
 * blocks of WSCHAT__SLAB_BLOCK bytes with no per-object header: a free
 * object holds the link of its block's free list, and a block that
 * empties goes back to the allocator at once.
 *
 * Blocks come from wschat__malloc, so they count in wschat_live_bytes and
 * go to a user-set allocator (wschat_replace_allocator). The blocks are
 * kept in an array sorted by address, which is how wschat__slab_free
 * finds an object's block (a binary search).
 *
 * Under AddressSanitizer every object is a separate wschat__malloc block
 * instead (decided at compile time), so that a use after free or an
 * overflow of one object into the next is still caught. Under valgrind,
 * memcheck is told about every object (when valgrind's headers were
 * there at build time), with the same effect.
 */
#ifndef WSCHAT_CORE_SLAB_H
#define WSCHAT_CORE_SLAB_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define WSCHAT__SLAB_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WSCHAT__SLAB_PASSTHROUGH 1
#endif
#endif
#ifndef WSCHAT__SLAB_PASSTHROUGH
#define WSCHAT__SLAB_PASSTHROUGH 0
#endif

/* Bytes per block: below glibc's default mmap threshold (128 KiB), big
 * enough that a block's own malloc header is negligible. */
#define WSCHAT__SLAB_BLOCK (64 * 1024)

typedef struct wschat__slab_block {
  char *base;      /* WSCHAT__SLAB_BLOCK bytes from wschat__malloc */
  void *free;      /* freed objects of this block, linked through them */
  uint32_t used;   /* objects handed out */
  uint32_t carved; /* objects ever handed out: [0, carved) were touched */
} wschat__slab_block;

typedef struct wschat__slab {
  size_t size;                /* object size, rounded up to alignment */
  uint32_t per_block;         /* objects per block */
  uint32_t nblocks;           /* blocks[0..nblocks), sorted by base */
  uint32_t cap;               /* room in blocks */
  uint32_t hint;              /* a block likely to have room */
  wschat__slab_block *blocks; /* wschat__malloc'd */
  size_t live;                /* objects handed out */
  size_t blocks_added;        /* blocks taken so far */
  size_t blocks_freed;        /* blocks given back so far */
} wschat__slab;

/* Set up a slab of objects of `size` bytes (at most WSCHAT__SLAB_BLOCK)
 * aligned to `align` (a power of two, at most _Alignof(max_align_t); the
 * objects are packed at that alignment). Allocates nothing. */
void wschat__slab_init(wschat__slab *s, size_t size, size_t align);

/* Release the slab's memory; every object must have been freed. */
void wschat__slab_destroy(wschat__slab *s);

/* An object, zero-filled, or NULL when out of memory. */
void *wschat__slab_alloc(wschat__slab *s);

/* Give back an object from wschat__slab_alloc on the same slab (NULL is
 * ignored). */
void wschat__slab_free(wschat__slab *s, void *p);

#endif
