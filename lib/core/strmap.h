/*
 * strmap.h - an open-addressing hash map from NUL-terminated strings to
 * pointers, optionally case-insensitive (ASCII). Each value holds its own
 * key, at a fixed offset given at init (a session's name, a room's name):
 * a slot is then the value pointer alone, 8 bytes, which matters for the
 * map of session names (one entry per connection). The key is borrowed
 * through the value, so it must not change while the value is in the map.
 */
#ifndef WSCHAT_CORE_STRMAP_H
#define WSCHAT_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct wschat__strmap {
  void **slots; /* value, or NULL (empty), or a tombstone (deleted) */
  size_t cap;   /* power of two, or 0 */
  size_t used;  /* live + tombstones */
  size_t live;
  size_t key_offset; /* the key is the string at (char *)value + this */
  int is_nocase;
} wschat__strmap;

void wschat__strmap_init(wschat__strmap *m, int is_nocase, size_t key_offset);
void wschat__strmap_free(wschat__strmap *m);
void *wschat__strmap_get(const wschat__strmap *m, const char *key);
/* Insert or replace. key must be the value's own key ((char *)value +
 * key_offset). Returns 0 or WSCHAT_ENOMEM. */
int wschat__strmap_put(wschat__strmap *m, const char *key, void *value);
/* Remove the key if present; returns its value or NULL. */
void *wschat__strmap_remove(wschat__strmap *m, const char *key);

#endif
