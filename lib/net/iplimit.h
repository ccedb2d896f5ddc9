/*
 * iplimit.h - connections per client address, for the per-address
 * connection limit (wschat_server_set_max_per_ip).
 *
 * A table maps a 16-byte address key to the number of connections
 * counted for it. IPv4 addresses are stored in their IPv4-mapped IPv6
 * form (::ffff:a.b.c.d), so that a client reaching a dual-stack listener
 * as ::ffff:a.b.c.d and one reaching an IPv4 listener as a.b.c.d count
 * alike. An address whose count falls to zero leaves the table; the
 * table's memory goes when it is empty, so it holds at most one entry per
 * address with a connection open.
 */
#ifndef WSCHAT_NET_IPLIMIT_H
#define WSCHAT_NET_IPLIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

typedef struct wschat__ipkey {
  uint8_t b[16];
} wschat__ipkey;

typedef struct wschat__ipcount {
  wschat__ipkey key;
  uint32_t count; /* 0: free slot */
} wschat__ipcount;

typedef struct wschat__iplimit {
  wschat__ipcount *slots; /* open addressing, linear probing */
  uint32_t cap;           /* 0 or a power of two */
  uint32_t used;          /* addresses in the table */
  uint64_t seed;          /* per table, so probe sequences are not
                             predictable from outside */
} wschat__iplimit;

void wschat__iplimit_init(wschat__iplimit *t);
void wschat__iplimit_free(wschat__iplimit *t);

/* The key for an AF_INET or AF_INET6 address. Returns 0, or -1 for any
 * other family. */
int wschat__ipkey_from_sockaddr(const struct sockaddr *sa, wschat__ipkey *out);

/* Count one more connection from key unless it already has `max` (max 0:
 * no limit). Returns 0 when counted, WSCHAT_ETOOMANY when the address is
 * at its limit, or WSCHAT_ENOMEM. */
int wschat__iplimit_acquire(wschat__iplimit *t, const wschat__ipkey *key,
                            unsigned max);

/* Count one connection from key less (it must have been acquired). */
void wschat__iplimit_release(wschat__iplimit *t, const wschat__ipkey *key);

/* Connections counted for key now (0 if it is not in the table). */
unsigned wschat__iplimit_count(const wschat__iplimit *t,
                               const wschat__ipkey *key);

#endif
