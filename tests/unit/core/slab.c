/* Tests for the slab allocator (lib/core/slab.c): objects are zero-filled,
 * distinct and reused, blocks go back to the allocator as soon as they
 * empty, wschat_live_bytes() returns to its baseline, and the blocks go
 * through a user-set allocator. Under AddressSanitizer the slab hands out
 * one allocation per object instead; the tests that depend on blocks say
 * so and check that mode's own outcomes. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/slab.h"
#include "wschat.h"

/* A user allocator that records the largest request and the number of
 * frees. */
static size_t largest_request;
static size_t frees;

static void *recording_malloc(size_t size) {
  if (size > largest_request)
    largest_request = size;
  return malloc(size);
}

static void *recording_realloc(void *ptr, size_t size) {
  if (size > largest_request)
    largest_request = size;
  return realloc(ptr, size);
}

static void recording_free(void *ptr) {
  if (ptr != NULL)
    frees++;
  free(ptr);
}

static int is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i;
  for (i = 0; i < n; i++)
    if (b[i] != 0)
      return 0;
  return 1;
}

Test(slab, size_is_rounded_to_the_alignment) {
  wschat__slab s;
  wschat__slab_init(&s, 420, 8);
  cr_assert_eq(s.size, 424);
  cr_assert_eq(s.per_block, WSCHAT__SLAB_BLOCK / 424);
  wschat__slab_init(&s, 3, 1); /* a free object holds a pointer */
  cr_assert_eq(s.size, sizeof(void *));
  wschat__slab_init(&s, 100, 16);
  cr_assert_eq(s.size, 112);
  wschat__slab_destroy(&s);
}

Test(slab, objects_are_zeroed_distinct_and_aligned) {
  wschat__slab s;
  unsigned char *a, *b;
  wschat__slab_init(&s, 200, 8);
  a = wschat__slab_alloc(&s);
  b = wschat__slab_alloc(&s);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert_neq(a, b);
  cr_assert_eq((uintptr_t)a % 8, 0);
  cr_assert_eq((uintptr_t)b % 8, 0);
  cr_assert(is_zero(a, 200));
  cr_assert(is_zero(b, 200));
  cr_assert_eq(s.live, 2);
#if !WSCHAT__SLAB_PASSTHROUGH
  /* Packed: the second object follows the first, in one block. */
  cr_assert_eq(b - a, (ptrdiff_t)s.size);
  cr_assert_eq(s.nblocks, 1);
#endif
  wschat__slab_free(&s, a);
  wschat__slab_free(&s, b);
  cr_assert_eq(s.live, 0);
  wschat__slab_destroy(&s);
}

Test(slab, freed_object_is_reused_and_zeroed_again) {
  wschat__slab s;
  unsigned char *keep, *a, *b;
  wschat__slab_init(&s, 64, 8);
  keep = wschat__slab_alloc(&s); /* keeps the block alive */
  a = wschat__slab_alloc(&s);
  cr_assert_not_null(a);
  memset(a, 0xAB, 64);
  wschat__slab_free(&s, a);
  b = wschat__slab_alloc(&s);
  cr_assert_not_null(b);
  cr_assert(is_zero(b, 64));
#if !WSCHAT__SLAB_PASSTHROUGH
  cr_assert_eq(b, a);
#endif
  wschat__slab_free(&s, b);
  wschat__slab_free(&s, keep);
  wschat__slab_destroy(&s);
}

Test(slab, an_empty_block_goes_back_at_once) {
  wschat__slab s;
  size_t base = wschat_live_bytes();
  void **objs;
  uint32_t per, i;
  wschat__slab_init(&s, 1000, 8);
  per = s.per_block;
  cr_assert_eq(per, WSCHAT__SLAB_BLOCK / 1000);
  objs = calloc(per + 1, sizeof(*objs));
  cr_assert_not_null(objs);
  for (i = 0; i < per + 1; i++) {
    objs[i] = wschat__slab_alloc(&s);
    cr_assert_not_null(objs[i]);
  }
  cr_assert_eq(s.live, per + 1);
#if !WSCHAT__SLAB_PASSTHROUGH
  /* One full block and one with a single object. */
  cr_assert_eq(s.nblocks, 2);
  cr_assert_eq(s.blocks_added, 2);
  cr_assert_geq(wschat_live_bytes(), base + 2 * WSCHAT__SLAB_BLOCK);
  wschat__slab_free(&s, objs[per]);
  cr_assert_eq(s.nblocks, 1);
  cr_assert_eq(s.blocks_freed, 1);
  /* Freeing part of the full block keeps it. */
  wschat__slab_free(&s, objs[0]);
  cr_assert_eq(s.nblocks, 1);
  for (i = 1; i < per; i++)
    wschat__slab_free(&s, objs[i]);
  cr_assert_eq(s.nblocks, 0);
  cr_assert_eq(s.blocks_freed, 2);
  cr_assert_null(s.blocks);
#else
  for (i = 0; i < per + 1; i++)
    wschat__slab_free(&s, objs[i]);
#endif
  cr_assert_eq(s.live, 0);
  cr_assert_eq(wschat_live_bytes(), base);
  free(objs);
  wschat__slab_destroy(&s);
  cr_assert_eq(wschat_live_bytes(), base);
}

/* Objects over many blocks, freed in a scrambled order: none overlaps
 * another (each keeps its own pattern), and every block goes back. */
Test(slab, many_objects_in_any_order) {
  enum { N = 3000, SIZE = 96 };
  wschat__slab s;
  size_t base = wschat_live_bytes();
  unsigned char *objs[N];
  unsigned i, j;
  wschat__slab_init(&s, SIZE, 8);
  for (i = 0; i < N; i++) {
    objs[i] = wschat__slab_alloc(&s);
    cr_assert_not_null(objs[i]);
    memset(objs[i], (int)(i % 251) + 1, SIZE);
  }
#if !WSCHAT__SLAB_PASSTHROUGH
  cr_assert_eq(s.nblocks, (N + s.per_block - 1) / s.per_block);
#endif
  for (i = 0; i < N; i++)
    for (j = 0; j < SIZE; j++)
      cr_assert_eq(objs[i][j], (unsigned char)((i % 251) + 1));
  /* Every other object, then the rest from the end. */
  for (i = 0; i < N; i += 2)
    wschat__slab_free(&s, objs[i]);
  /* Half the objects are back; new ones reuse their places. */
  for (i = 0; i < N; i += 2) {
    objs[i] = wschat__slab_alloc(&s);
    cr_assert_not_null(objs[i]);
  }
  for (i = N; i-- > 0;)
    wschat__slab_free(&s, objs[i]);
  cr_assert_eq(s.live, 0);
#if !WSCHAT__SLAB_PASSTHROUGH
  cr_assert_eq(s.nblocks, 0);
  cr_assert_eq(s.blocks_freed, s.blocks_added);
#endif
  cr_assert_eq(wschat_live_bytes(), base);
  wschat__slab_destroy(&s);
}

Test(slab, destroy_gives_back_blocks_still_held) {
  wschat__slab s;
  size_t base = wschat_live_bytes();
  void *a;
  wschat__slab_init(&s, 128, 8);
  a = wschat__slab_alloc(&s);
  cr_assert_not_null(a);
#if !WSCHAT__SLAB_PASSTHROUGH
  /* Leaving an object behind is the caller's error, but the slab's own
   * memory still goes. */
  wschat__slab_destroy(&s);
  cr_assert_eq(s.nblocks, 0);
#else
  /* Each object is its own allocation: it must be freed one by one. */
  wschat__slab_free(&s, a);
  wschat__slab_destroy(&s);
#endif
  cr_assert_eq(wschat_live_bytes(), base);
}

Test(slab, blocks_come_from_the_user_allocator) {
  wschat__slab s;
  void *a;
  cr_assert_eq(wschat_replace_allocator(recording_malloc, recording_realloc,
                                        recording_free),
               0);
  largest_request = 0;
  frees = 0;
  wschat__slab_init(&s, 300, 8);
  a = wschat__slab_alloc(&s);
  cr_assert_not_null(a);
#if !WSCHAT__SLAB_PASSTHROUGH
  /* A whole block (plus the live-bytes header), not one object. */
  cr_assert_gt(largest_request, WSCHAT__SLAB_BLOCK);
#else
  cr_assert_gt(largest_request, 300);
#endif
  cr_assert_gt(wschat_live_bytes(), 0);
  cr_assert_eq(wschat_library_shutdown(), WSCHAT_EBUSY);
  wschat__slab_free(&s, a);
  wschat__slab_destroy(&s);
  /* The block (and the block array) went back through the user's free. */
  cr_assert_geq(frees, 1);
  cr_assert_eq(wschat_live_bytes(), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
}

/* Giving free memory back to the system (server sweeps after bursts):
 * with libc's allocator on glibc it runs malloc_trim; with a user
 * allocator it must leave libc's heap alone. */
Test(slab, free_memory_release_only_with_libc_malloc) {
  int ran = wschat__release_free_memory();
#ifdef __GLIBC__
  cr_assert_eq(ran, 1);
#else
  cr_assert_eq(ran, 0);
#endif
  cr_assert_eq(wschat_replace_allocator(recording_malloc, recording_realloc,
                                        recording_free),
               0);
  cr_assert_eq(wschat__release_free_memory(), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
}
