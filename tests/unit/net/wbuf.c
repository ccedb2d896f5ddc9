/*
 * Tests for lib/net/wbuf.c: the blocks small shared frames are carved
 * from (back to back, a new block when one is full, freed with the last
 * reference and then forgotten by the thread), and plain buffers.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "net/wbuf.h"
#include "wschat.h"

Test(wbuf, carved_frames_sit_back_to_back) {
  size_t before = wschat_live_bytes();
  wschat__wbuf *a, *b, *c;
  size_t oa, ob, oc;
  cr_assert_eq(wschat__wbuf_carve(100, &a, &oa), 0);
  cr_assert_eq(wschat__wbuf_carve(200, &b, &ob), 0);
  cr_assert_eq(wschat__wbuf_carve(WSCHAT__FRAME_CARVE_MAX, &c, &oc), 0);
  cr_assert_eq(a->kind, WSCHAT__WBUF_FRAMES);
  cr_assert_eq(a, b);
  cr_assert_eq(b, c);
  cr_assert_eq(oa, 0);
  cr_assert_eq(ob, 100);
  cr_assert_eq(oc, 300);
  cr_assert_eq(a->refs, 3);
  cr_assert_eq(a->cap, WSCHAT__FRAME_BLOCK_SIZE);
  cr_assert_gt(wschat_live_bytes(), before);
  wschat__wbuf_unref(a);
  wschat__wbuf_unref(b);
  wschat__wbuf_unref(c);
  cr_assert_eq(wschat_live_bytes(), before, "the block outlived its frames");
}

Test(wbuf, a_full_block_is_left_to_its_frames) {
  size_t before = wschat_live_bytes();
  wschat__wbuf *first, *wb, *next;
  size_t off, used = 0;
  int n = 0;
  cr_assert_eq(wschat__wbuf_carve(1000, &first, &off), 0);
  used = 1000;
  /* Fill the block until less than 2000 bytes are left. */
  while (WSCHAT__FRAME_BLOCK_SIZE - used >= 2000) {
    cr_assert_eq(wschat__wbuf_carve(1000, &wb, &off), 0);
    cr_assert_eq(wb, first);
    cr_assert_eq(off, used);
    used += 1000;
    n++;
  }
  /* One byte more than is left does not fit: a new block, from 0. */
  cr_assert_eq(
      wschat__wbuf_carve(WSCHAT__FRAME_BLOCK_SIZE - used + 1, &next, &off), 0);
  cr_assert_neq(next, first);
  cr_assert_eq(off, 0);
  cr_assert_eq(first->refs, (uint32_t)n + 1);
  while (n-- > 0)
    wschat__wbuf_unref(first);
  wschat__wbuf_unref(first); /* the old block goes; the new one stays */
  cr_assert_eq(next->refs, 1);
  wschat__wbuf_unref(next);
  cr_assert_eq(wschat_live_bytes(), before);
  /* The thread forgot the freed block: the next carve starts a new one
   * (under AddressSanitizer, using the freed one would be reported). */
  cr_assert_eq(wschat__wbuf_carve(10, &wb, &off), 0);
  cr_assert_eq(off, 0);
  cr_assert_eq(wb->refs, 1);
  wschat__wbuf_unref(wb);
  cr_assert_eq(wschat_live_bytes(), before);
}

Test(wbuf, too_large_to_carve) {
  wschat__wbuf *wb = NULL;
  size_t off = 7;
  cr_assert_eq(wschat__wbuf_carve(WSCHAT__FRAME_CARVE_MAX + 1, &wb, &off), -1);
  cr_assert_null(wb);
  cr_assert_eq(off, 7);
}

static void *carve_in_thread(void *arg) {
  wschat__wbuf **out = arg;
  size_t off;
  cr_assert_eq(wschat__wbuf_carve(10, out, &off), 0);
  cr_assert_eq(off, 0, "another thread's block was shared");
  return NULL;
}

Test(wbuf, each_thread_carves_its_own_blocks) {
  wschat__wbuf *mine, *theirs = NULL;
  size_t off;
  pthread_t t;
  cr_assert_eq(wschat__wbuf_carve(10, &mine, &off), 0);
  cr_assert_eq(pthread_create(&t, NULL, carve_in_thread, &theirs), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_not_null(theirs);
  cr_assert_neq(theirs, mine);
  wschat__wbuf_unref(theirs);
  wschat__wbuf_unref(mine);
}

Test(wbuf, plain_buffers) {
  wschat__wbuf *wb = wschat__wbuf_new(64);
  cr_assert_not_null(wb);
  cr_assert_eq(wb->kind, WSCHAT__WBUF_OWN);
  cr_assert_eq(wb->refs, 1);
  cr_assert_eq(wb->len, 0);
  cr_assert_eq(wb->cap, 64);
  cr_assert_eq(wschat__wbuf_ref(wb), wb);
  cr_assert_eq(wb->refs, 2);
  wschat__wbuf_unref(wb);
  wschat__wbuf_unref(wb);
  cr_assert_null(wschat__wbuf_new(SIZE_MAX));
}
