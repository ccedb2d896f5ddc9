/* Tests for wschat_library_shutdown(): it refuses while libwschat memory
 * is live, and once everything is freed it restores the default
 * allocator so that another one may be installed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <uv.h>

#include "wschat.h"

/* A counting allocator, to see which allocator the library calls. */
static size_t counted_calls;

static void *counting_malloc(size_t size) {
  counted_calls++;
  return malloc(size);
}

static void *counting_realloc(void *ptr, size_t size) {
  counted_calls++;
  return realloc(ptr, size);
}

static void counting_free(void *ptr) {
  counted_calls++;
  free(ptr);
}

Test(shutdown, nothing_allocated_succeeds_and_repeats) {
  cr_assert_eq(wschat_live_bytes(), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
}

Test(shutdown, busy_while_a_frame_is_held) {
  wschat_frame *frame = NULL;
  cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, "hello", 5, &frame), 0);
  cr_assert_gt(wschat_live_bytes(), 0);
  cr_assert_eq(wschat_library_shutdown(), WSCHAT_EBUSY);
  wschat_frame_release(frame);
  cr_assert_eq(wschat_live_bytes(), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
}

Test(shutdown, busy_while_a_server_is_not_freed) {
  uv_loop_t loop;
  wschat_server *srv;
  cr_assert_eq(uv_loop_init(&loop), 0);
  srv = wschat_server_new(&loop);
  cr_assert_not_null(srv);
  cr_assert_eq(wschat_library_shutdown(), WSCHAT_EBUSY);
  cr_assert_eq(wschat_server_free(srv), 0);
  cr_assert_eq(wschat_library_shutdown(), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(shutdown, restores_the_default_allocator) {
  wschat_frame *frame = NULL;
  cr_assert_eq(wschat_replace_allocator(counting_malloc, counting_realloc,
                                        counting_free),
               0);
  cr_assert_eq(wschat_frame_new(WSCHAT_BINARY, "x", 1, &frame), 0);
  wschat_frame_release(frame);
  cr_assert_gt(counted_calls, 0);

  cr_assert_eq(wschat_library_shutdown(), 0);
  counted_calls = 0;
  cr_assert_eq(wschat_frame_new(WSCHAT_BINARY, "x", 1, &frame), 0);
  wschat_frame_release(frame);
  cr_assert_eq(counted_calls, 0, "the replaced allocator was still called");

  /* And a new allocator can be installed again afterwards. */
  cr_assert_eq(wschat_replace_allocator(counting_malloc, counting_realloc,
                                        counting_free),
               0);
  cr_assert_eq(wschat_frame_new(WSCHAT_BINARY, "x", 1, &frame), 0);
  wschat_frame_release(frame);
  /* The frame's handle and the block its bytes were carved from, each
   * allocated and freed. */
  cr_assert_eq(counted_calls, 4);
  cr_assert_eq(wschat_library_shutdown(), 0);
}
