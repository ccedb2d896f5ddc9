/*
 * strmap.h - an open-addressing hash map from NUL-terminated strings to
 * pointers, optionally case-insensitive (ASCII). Keys are borrowed: the
 * caller keeps each key alive while it is in the map (in practice the key
 * is stored in the value it maps to).
 */
#ifndef WSCHAT_CORE_STRMAP_H
#define WSCHAT_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct wschat__strmap_slot {
  const char *key; /* NULL: empty; STRMAP_TOMBSTONE: deleted */
  void *value;
  uint32_t hash;
} wschat__strmap_slot;

typedef struct wschat__strmap {
  wschat__strmap_slot *slots;
  size_t cap;  /* power of two, or 0 */
  size_t used; /* live + tombstones */
  size_t live;
  int is_nocase;
} wschat__strmap;

void wschat__strmap_init(wschat__strmap *m, int is_nocase);
void wschat__strmap_free(wschat__strmap *m);
void *wschat__strmap_get(const wschat__strmap *m, const char *key);
/* Insert or replace. Returns 0 or WSCHAT_ENOMEM. */
int wschat__strmap_put(wschat__strmap *m, const char *key, void *value);
/* Remove the key if present; returns its value or NULL. */
void *wschat__strmap_remove(wschat__strmap *m, const char *key);

#endif
