/*
 * room.h - the room structure, shared by room.c (membership, history) and
 * broadcast.c (fan-out).
 */
#ifndef WSCHAT_CHAT_ROOM_H
#define WSCHAT_CHAT_ROOM_H

#include "net/net.h"

typedef struct history_entry {
  uint64_t id;
  size_t len;
  char *data;
} history_entry;

struct wschat_room {
  wschat_server *server;
  wschat__link node; /* server->room_list */
  void *userdata;

  wschat__membership **members; /* join order; NULL = left */
  uint32_t nslots;              /* used entries of members[] */
  uint32_t cap;
  unsigned nmembers; /* live entries */
  unsigned walking;  /* foreach/broadcast depth: no compaction */

  history_entry *history; /* ring of history_cap entries */
  unsigned history_cap;
  unsigned history_head; /* oldest */
  unsigned history_count;
  uint64_t last_id;

  char name[]; /* NUL-terminated */
};

/* Close the holes left by members who left, unless a walk is going on. */
void wschat__room_compact(wschat_room *r);

#endif
