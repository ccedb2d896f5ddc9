#include "core/strmap.h"

#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "wschat.h"

/* A deleted slot: never a value's address. */
static char tombstone;
#define STRMAP_TOMBSTONE ((void *)&tombstone)

static uint32_t strmap_hash(const char *s, int is_nocase) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (is_nocase && c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    h = (h ^ c) * 16777619u;
  }
  return h;
}

static const char *strmap_key(const wschat__strmap *m, const void *value) {
  return (const char *)value + m->key_offset;
}

static int strmap_eq(const wschat__strmap *m, const char *a, const char *b) {
  return m->is_nocase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

void wschat__strmap_init(wschat__strmap *m, int is_nocase, size_t key_offset) {
  memset(m, 0, sizeof(*m));
  m->is_nocase = is_nocase;
  m->key_offset = key_offset;
}

void wschat__strmap_free(wschat__strmap *m) {
  wschat__free(m->slots);
  m->slots = NULL;
  m->cap = m->used = m->live = 0;
}

/* The slot holding key, or NULL. Slots keep no hash, so each occupied
 * slot on the probe path costs a string comparison; the load stays under
 * 3/4, which keeps the paths short. */
static void **strmap_find(const wschat__strmap *m, const char *key,
                          uint32_t h) {
  size_t i;
  if (m->cap == 0)
    return NULL;
  for (i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    void **s = &m->slots[i];
    if (*s == NULL)
      return NULL;
    if (*s != STRMAP_TOMBSTONE && strmap_eq(m, strmap_key(m, *s), key))
      return s;
  }
}

void *wschat__strmap_get(const wschat__strmap *m, const char *key) {
  void **s = strmap_find(m, key, strmap_hash(key, m->is_nocase));
  return s != NULL ? *s : NULL;
}

static int strmap_resize(wschat__strmap *m, size_t cap) {
  void **old = m->slots;
  size_t old_cap = m->cap;
  size_t i;
  m->slots = wschat__calloc(cap, sizeof(*m->slots));
  if (m->slots == NULL) {
    m->slots = old;
    return WSCHAT_ENOMEM;
  }
  m->cap = cap;
  m->used = m->live = 0;
  for (i = 0; i < old_cap; i++) {
    void *v = old[i];
    if (v != NULL && v != STRMAP_TOMBSTONE) {
      size_t j = strmap_hash(strmap_key(m, v), m->is_nocase) & (cap - 1);
      while (m->slots[j] != NULL)
        j = (j + 1) & (cap - 1);
      m->slots[j] = v;
      m->used++;
      m->live++;
    }
  }
  wschat__free(old);
  return 0;
}

int wschat__strmap_put(wschat__strmap *m, const char *key, void *value) {
  uint32_t h = strmap_hash(key, m->is_nocase);
  void **s = strmap_find(m, key, h);
  size_t i;
  if (s != NULL) {
    *s = value;
    return 0;
  }
  /* Keep the load (tombstones included) under 3/4. */
  if ((m->used + 1) * 4 > m->cap * 3) {
    size_t cap = m->cap ? m->cap : 16;
    while ((m->live + 1) * 2 > cap)
      cap *= 2;
    if (strmap_resize(m, cap) != 0)
      return WSCHAT_ENOMEM;
  }
  for (i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    s = &m->slots[i];
    if (*s == NULL || *s == STRMAP_TOMBSTONE)
      break;
  }
  if (*s == NULL)
    m->used++;
  *s = value;
  m->live++;
  return 0;
}

void *wschat__strmap_remove(wschat__strmap *m, const char *key) {
  void **s = strmap_find(m, key, strmap_hash(key, m->is_nocase));
  void *value;
  if (s == NULL)
    return NULL;
  value = *s;
  *s = STRMAP_TOMBSTONE;
  m->live--;
  return value;
}
