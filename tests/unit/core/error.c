/* Tests for lib/core: error names and messages, version, allocator. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/alloc.h"
#include "wschat.h"

Test(error, every_code_has_a_name_and_message_in_range) {
  struct {
    int code;
    const char *name;
    const char *msg;
  } table[] = {
#define ROW(name, value, msg) {value, "WSCHAT_" #name, msg},
      WSCHAT_ERRNO_MAP(ROW)
#undef ROW
  };
  size_t i, j;
  for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    cr_assert(table[i].code <= -30000 && table[i].code >= -30399);
    cr_assert_str_eq(wschat_err_name(table[i].code), table[i].name);
    cr_assert_str_eq(wschat_strerror(table[i].code), table[i].msg);
    for (j = 0; j < i; j++)
      cr_assert_neq(table[i].code, table[j].code);
  }
}

Test(error, groups_by_hundreds) {
  cr_assert_eq(WSCHAT_EPROTO, -30000);
  cr_assert_eq(WSCHAT_EINVAL, -30100);
  cr_assert_eq(WSCHAT_ETOOBIG, -30200);
  cr_assert_eq(WSCHAT_ENOMEM, -30300);
}

Test(error, libuv_codes_pass_through) {
  cr_assert_str_eq(wschat_err_name(UV_ECONNRESET), "ECONNRESET");
  cr_assert_str_eq(wschat_strerror(UV_ECONNRESET), uv_strerror(UV_ECONNRESET));
  cr_assert_str_eq(wschat_err_name(UV_EADDRINUSE), "EADDRINUSE");
}

Test(error, unknown_codes) {
  cr_assert_str_eq(wschat_err_name(0), "UNKNOWN");
  cr_assert_str_eq(wschat_err_name(-30399), "UNKNOWN");
  cr_assert_str_eq(wschat_err_name(-29999999), "UNKNOWN");
  cr_assert_str_eq(wschat_strerror(-30350), "unknown error");
  cr_assert_str_eq(wschat_strerror(12345), "unknown error");
}

Test(version, matches_header) {
  cr_assert_eq(wschat_version(), WSCHAT_VERSION_HEX);
  cr_assert_str_eq(wschat_version_string(), "0.1.0");
  cr_assert_eq(WSCHAT_VERSION_HEX, 0x000100);
}

Test(alloc, live_bytes_follow_malloc_realloc_free) {
  size_t base = wschat_live_bytes();
  char *p = wschat__malloc(100);
  cr_assert_not_null(p);
  cr_assert_eq(wschat_live_bytes(), base + 100);
  p = wschat__realloc(p, 1000);
  cr_assert_not_null(p);
  cr_assert_eq(wschat_live_bytes(), base + 1000);
  p = wschat__realloc(p, 10);
  cr_assert_eq(wschat_live_bytes(), base + 10);
  wschat__free(p);
  cr_assert_eq(wschat_live_bytes(), base);
  wschat__free(NULL);
  cr_assert_null(wschat__malloc(SIZE_MAX - 4));
  cr_assert_null(wschat__calloc(SIZE_MAX / 2, 4));
}

static size_t custom_calls;
static void *my_malloc(size_t n) {
  custom_calls++;
  return malloc(n);
}
static void *my_realloc(void *p, size_t n) {
  custom_calls++;
  return realloc(p, n);
}
static void my_free(void *p) {
  if (p != NULL)
    custom_calls++;
  free(p);
}

Test(alloc, replace_allocator) {
  char *p;
  cr_assert_eq(wschat_replace_allocator(NULL, my_realloc, my_free),
               WSCHAT_EINVAL);
  cr_assert_eq(wschat_replace_allocator(my_malloc, my_realloc, my_free), 0);
  p = wschat__strdup("hello");
  cr_assert_str_eq(p, "hello");
  cr_assert_eq(custom_calls, 1);
  /* Not while blocks from the current allocator are live. */
  cr_assert_eq(wschat_replace_allocator(malloc, realloc, free), WSCHAT_EBUSY);
  wschat__free(p);
  cr_assert_eq(custom_calls, 2);
  cr_assert_eq(wschat_replace_allocator(malloc, realloc, free), 0);
}
