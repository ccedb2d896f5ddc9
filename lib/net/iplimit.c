/*
 * iplimit.c - the per-address connection count (see iplimit.h).
 *
 * Open addressing with linear probing; a removal shifts the entries that
 * follow back into the gap (no tombstones), so lookups never degrade
 * after churn. The table doubles at half full. The hash mixes the
 * address with a per-table seed taken from the clock and the table's
 * address: a client choosing many source addresses (an IPv6 /64 has
 * plenty) cannot aim them all at one probe sequence without knowing it.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/alloc.h"
#include "net/iplimit.h"
#include "wschat.h"

enum { IPLIMIT_MIN_CAP = 16 };

void wschat__iplimit_init(wschat__iplimit *t) {
  memset(t, 0, sizeof(*t));
  t->seed = uv_hrtime() ^ (uint64_t)(uintptr_t)t;
}

void wschat__iplimit_free(wschat__iplimit *t) {
  wschat__free(t->slots);
  t->slots = NULL;
  t->cap = 0;
  t->used = 0;
}

int wschat__ipkey_from_sockaddr(const struct sockaddr *sa, wschat__ipkey *out) {
  if (sa->sa_family == AF_INET6) {
    memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  if (sa->sa_family == AF_INET) {
    memset(out->b, 0, 10);
    out->b[10] = 0xff;
    out->b[11] = 0xff;
    memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 0;
  }
  return -1;
}

/* A 64-bit finalizer (splitmix64's) over both halves and the seed. */
static uint64_t iplimit_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static uint32_t iplimit_hash(const wschat__iplimit *t,
                             const wschat__ipkey *key) {
  uint64_t hi;
  uint64_t lo;
  memcpy(&hi, key->b, 8);
  memcpy(&lo, key->b + 8, 8);
  return (uint32_t)iplimit_mix(iplimit_mix(hi ^ t->seed) ^ lo);
}

/* The slot holding key, or the free slot where it would go. */
static wschat__ipcount *iplimit_find(const wschat__iplimit *t,
                                     const wschat__ipkey *key) {
  uint32_t mask = t->cap - 1;
  uint32_t i = iplimit_hash(t, key) & mask;
  for (;; i = (i + 1) & mask) {
    wschat__ipcount *e = &t->slots[i];
    if (e->count == 0 || memcmp(&e->key, key, sizeof(*key)) == 0)
      return e;
  }
}

static int iplimit_grow(wschat__iplimit *t) {
  uint32_t cap = t->cap ? t->cap * 2 : IPLIMIT_MIN_CAP;
  wschat__ipcount *old = t->slots;
  uint32_t old_cap = t->cap;
  uint32_t i;
  if (cap < t->cap)
    return WSCHAT_ENOMEM;
  t->slots = wschat__calloc(cap, sizeof(*t->slots));
  if (t->slots == NULL) {
    t->slots = old;
    return WSCHAT_ENOMEM;
  }
  t->cap = cap;
  for (i = 0; i < old_cap; i++)
    if (old[i].count != 0)
      *iplimit_find(t, &old[i].key) = old[i];
  wschat__free(old);
  return 0;
}

int wschat__iplimit_acquire(wschat__iplimit *t, const wschat__ipkey *key,
                            unsigned max) {
  wschat__ipcount *e;
  if (t->cap == 0 || (t->used + 1) * 2 > t->cap) {
    int rc = iplimit_grow(t);
    if (rc != 0)
      return rc;
  }
  e = iplimit_find(t, key);
  if (e->count == 0) {
    e->key = *key;
    t->used++;
  } else if (max != 0 && e->count >= max) {
    return WSCHAT_ETOOMANY;
  } else if (e->count == UINT32_MAX) {
    return WSCHAT_ETOOMANY;
  }
  e->count++;
  return 0;
}

void wschat__iplimit_release(wschat__iplimit *t, const wschat__ipkey *key) {
  uint32_t mask;
  uint32_t hole;
  uint32_t i;
  wschat__ipcount *e;
  if (t->cap == 0)
    return;
  e = iplimit_find(t, key);
  if (e->count == 0 || --e->count > 0)
    return;
  /* The address leaves: shift back every following entry of the run
   * whose home slot is not between the hole and itself. */
  mask = t->cap - 1;
  hole = (uint32_t)(e - t->slots);
  for (i = (hole + 1) & mask; t->slots[i].count != 0; i = (i + 1) & mask) {
    uint32_t home = iplimit_hash(t, &t->slots[i].key) & mask;
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      t->slots[hole] = t->slots[i];
      t->slots[i].count = 0;
      hole = i;
    }
  }
  if (--t->used == 0)
    wschat__iplimit_free(t);
}

unsigned wschat__iplimit_count(const wschat__iplimit *t,
                               const wschat__ipkey *key) {
  if (t->cap == 0)
    return 0;
  return iplimit_find(t, key)->count;
}
