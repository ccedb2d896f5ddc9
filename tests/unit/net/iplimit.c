/*
 * Tests for lib/net/iplimit.c, the per-address connection count behind
 * wschat_server_set_max_per_ip(), and for the setter's range.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "core/alloc.h"
#include "net/iplimit.h"
#include "wschat.h"

static wschat__ipkey key4(const char *ip) {
  struct sockaddr_in a;
  wschat__ipkey k;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  cr_assert_eq(wschat__ipkey_from_sockaddr((struct sockaddr *)&a, &k), 0);
  return k;
}

static wschat__ipkey key6(const char *ip) {
  struct sockaddr_in6 a;
  wschat__ipkey k;
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
  cr_assert_eq(wschat__ipkey_from_sockaddr((struct sockaddr *)&a, &k), 0);
  return k;
}

/* The n-th of many distinct IPv6 addresses in one /64. */
static wschat__ipkey key_n(unsigned n) {
  wschat__ipkey k = key6("2001:db8::");
  k.b[12] = (uint8_t)(n >> 24);
  k.b[13] = (uint8_t)(n >> 16);
  k.b[14] = (uint8_t)(n >> 8);
  k.b[15] = (uint8_t)n;
  return k;
}

Test(iplimit, counts_up_to_the_limit_and_back) {
  wschat__iplimit t;
  wschat__ipkey a = key4("192.0.2.1");
  wschat__ipkey b = key4("192.0.2.2");
  wschat__iplimit_init(&t);
  cr_assert_eq(wschat__iplimit_count(&t, &a), 0);
  cr_assert_eq(wschat__iplimit_acquire(&t, &a, 2), 0);
  cr_assert_eq(wschat__iplimit_acquire(&t, &a, 2), 0);
  cr_assert_eq(wschat__iplimit_acquire(&t, &a, 2), WSCHAT_ETOOMANY);
  cr_assert_eq(wschat__iplimit_count(&t, &a), 2);
  cr_assert_eq(wschat__iplimit_acquire(&t, &b, 2), 0);
  cr_assert_eq(wschat__iplimit_count(&t, &b), 1);
  wschat__iplimit_release(&t, &a);
  cr_assert_eq(wschat__iplimit_count(&t, &a), 1);
  cr_assert_eq(wschat__iplimit_acquire(&t, &a, 2), 0);
  wschat__iplimit_release(&t, &a);
  wschat__iplimit_release(&t, &a);
  wschat__iplimit_release(&t, &b);
  /* Empty again: the table's memory is gone. */
  cr_assert_eq(t.used, 0);
  cr_assert_null(t.slots);
  wschat__iplimit_free(&t);
}

Test(iplimit, zero_means_no_limit) {
  wschat__iplimit t;
  wschat__ipkey a = key6("::1");
  unsigned i;
  wschat__iplimit_init(&t);
  for (i = 0; i < 100000; i++)
    cr_assert_eq(wschat__iplimit_acquire(&t, &a, 0), 0);
  cr_assert_eq(wschat__iplimit_count(&t, &a), 100000);
  cr_assert_eq(t.used, 1);
  wschat__iplimit_free(&t);
}

Test(iplimit, ipv4_and_its_mapped_ipv6_form_are_one_address) {
  wschat__iplimit t;
  wschat__ipkey v4 = key4("127.0.0.1");
  wschat__ipkey mapped = key6("::ffff:127.0.0.1");
  wschat__ipkey other = key6("::1");
  cr_assert_eq(memcmp(&v4, &mapped, sizeof(v4)), 0);
  wschat__iplimit_init(&t);
  cr_assert_eq(wschat__iplimit_acquire(&t, &v4, 1), 0);
  cr_assert_eq(wschat__iplimit_acquire(&t, &mapped, 1), WSCHAT_ETOOMANY);
  cr_assert_eq(wschat__iplimit_acquire(&t, &other, 1), 0);
  wschat__iplimit_free(&t);
}

Test(iplimit, other_families_have_no_key) {
  struct sockaddr sa;
  wschat__ipkey k;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNIX;
  cr_assert_eq(wschat__ipkey_from_sockaddr(&sa, &k), -1);
}

/* Many addresses in and out in an interleaved order, checked against a
 * plain array after every step: growth and the backward shift on removal
 * must never lose or mix up an entry. */
Test(iplimit, churn_matches_a_reference) {
  enum { N = 3000 };
  static unsigned ref[N];
  wschat__iplimit t;
  unsigned step;
  unsigned i;
  size_t live0 = wschat_live_bytes();
  wschat__iplimit_init(&t);
  for (step = 0; step < 60000; step++) {
    unsigned n = (step * 2654435761u) % N;
    wschat__ipkey k = key_n(n);
    if (ref[n] < 3 && (step % 3 != 0 || ref[n] == 0)) {
      cr_assert_eq(wschat__iplimit_acquire(&t, &k, 3), 0);
      ref[n]++;
    } else if (ref[n] == 3 && step % 3 != 0) {
      cr_assert_eq(wschat__iplimit_acquire(&t, &k, 3), WSCHAT_ETOOMANY);
    } else {
      wschat__iplimit_release(&t, &k);
      ref[n]--;
    }
    if (step % 997 == 0)
      for (i = 0; i < N; i++) {
        wschat__ipkey ki = key_n(i);
        cr_assert_eq(wschat__iplimit_count(&t, &ki), ref[i], "address %u", i);
      }
  }
  for (i = 0; i < N; i++) {
    wschat__ipkey ki = key_n(i);
    cr_assert_eq(wschat__iplimit_count(&t, &ki), ref[i]);
    while (ref[i] > 0) {
      wschat__iplimit_release(&t, &ki);
      ref[i]--;
    }
  }
  cr_assert_eq(t.used, 0);
  cr_assert_eq(wschat_live_bytes(), live0, "the emptied table kept memory");
  wschat__iplimit_free(&t);
}

Test(iplimit, setter_range) {
  wschat_server *s = wschat_server_new(NULL);
  cr_assert_not_null(s);
  cr_assert_eq(wschat_server_set_max_per_ip(s, 0), 0);
  cr_assert_eq(wschat_server_set_max_per_ip(s, 1), 0);
  cr_assert_eq(wschat_server_set_max_per_ip(s, 10000000), 0);
  cr_assert_eq(wschat_server_set_max_per_ip(s, 10000001), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_per_ip(NULL, 1), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_free(s), 0);
}
