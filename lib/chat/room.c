/*
 * room.c - the chat model: session names, rooms and their membership,
 * each room's history ring, and the per-session rate limit.
 *
 * A room's members are an array in join order, so a broadcast is a walk
 * over contiguous pointers. Leaving punches a hole (NULL) that the next
 * compaction closes; compaction never runs while the array is being
 * walked, which is what makes leaving, closing and joining safe from
 * inside wschat_room_foreach_member() callbacks.
 */
#include <string.h>

#include "chat/room.h"

#include <stdio.h>

#include "core/alloc.h"

/* ------------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------- */

static int is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* 1..max bytes of [A-Za-z0-9_.-]. */
static int is_valid_name(const char *s, size_t max) {
  size_t n;
  if (s == NULL)
    return 0;
  for (n = 0; s[n] != '\0'; n++)
    if (n >= max || !is_name_char(s[n]))
      return 0;
  return n > 0;
}

void wschat__chat_server_init(wschat_server *srv) {
  wschat__strmap_init(&srv->names, 1, offsetof(wschat_session, name));
  wschat__strmap_init(&srv->rooms, 0, offsetof(wschat_room, name));
  wschat__link_init(&srv->room_list);
  srv->max_rooms = 10000;
  srv->history_size = 1000;
  srv->rate_per_second = 20;
  srv->rate_burst = 40;
}

void wschat__chat_session_init(wschat_session *s) {
  s->rooms = NULL;
}

int wschat__chat_session_open(wschat_session *s) {
  wschat_server *srv = wschat__session_server(s);
  /* user<N>, skipping numbers whose name a rename has taken. */
  do
    snprintf(s->name, sizeof(s->name), "user%llu",
             (unsigned long long)++srv->next_user_number);
  while (wschat__strmap_get(&srv->names, s->name) != NULL);
  s->rate_tokens = srv->rate_burst;
  s->rate_refill = wschat__ms(uv_now(srv->loop));
  srv->stats[WSCHAT_STAT_SESSIONS]++;
  srv->stats[WSCHAT_STAT_SESSIONS_TOTAL]++;
  return wschat__strmap_put(&srv->names, s->name, s);
}

const char *wschat_session_name(const wschat_session *s) {
  return s->name;
}

int wschat_session_set_name(wschat_session *s, const char *name) {
  wschat_server *srv = wschat__session_server(s);
  wschat_session *holder;
  if (!is_valid_name(name, 32))
    return WSCHAT_EINVAL;
  if (s->state != WSCHAT__S_OPEN || s->name[0] == '\0')
    return WSCHAT_ECLOSED;
  holder = wschat__strmap_get(&srv->names, name);
  if (holder != NULL && holder != s)
    return WSCHAT_ENAMETAKEN;
  wschat__strmap_remove(&srv->names, s->name);
  strcpy(s->name, name); /* validated: at most 32 bytes */
  /* Cannot fail: the slot just freed is reused. */
  return wschat__strmap_put(&srv->names, s->name, s);
}

wschat_session *wschat_server_find_session(wschat_server *srv,
                                           const char *name) {
  if (name == NULL)
    return NULL;
  return wschat__strmap_get(&srv->names, name);
}

/* ------------------------------------------------------------------------
 * Rooms
 * ---------------------------------------------------------------------- */

static void room_free(wschat_room *r) {
  unsigned i;
  for (i = 0; i < r->history_count; i++)
    wschat__free(r->history[(r->history_head + i) % r->history_cap].data);
  wschat__free(r->history);
  wschat__free(r->members);
  wschat__free(r);
}

static void room_remove(wschat_room *r) {
  wschat_server *srv = r->server;
  wschat__strmap_remove(&srv->rooms, r->name);
  wschat__link_remove(&r->node);
  srv->nrooms--;
  srv->stats[WSCHAT_STAT_ROOMS] = srv->nrooms;
  room_free(r);
}

/* At max_rooms: give up the oldest empty room, if any. */
static int room_make_space(wschat_server *srv) {
  wschat__link *l;
  for (l = srv->room_list.next; l != &srv->room_list; l = l->next) {
    wschat_room *r = WSCHAT__CONTAINER_OF(l, wschat_room, node);
    if (r->nmembers == 0 && r->walking == 0) {
      room_remove(r);
      return 0;
    }
  }
  return WSCHAT_ETOOMANY;
}

int wschat_room_open(wschat_server *srv, const char *name, wschat_room **out) {
  wschat_room *r;
  size_t len;
  if (srv == NULL || out == NULL || !is_valid_name(name, 64))
    return WSCHAT_EINVAL;
  if ((r = wschat__strmap_get(&srv->rooms, name)) != NULL) {
    *out = r;
    return 0;
  }
  if (srv->nrooms >= srv->max_rooms && room_make_space(srv) != 0)
    return WSCHAT_ETOOMANY;
  len = strlen(name);
  r = wschat__calloc(1, sizeof(*r) + len + 1);
  if (r == NULL)
    return WSCHAT_ENOMEM;
  memcpy(r->name, name, len + 1);
  r->server = srv;
  r->history_cap = srv->history_size;
  if (r->history_cap > 0 &&
      (r->history = wschat__calloc(r->history_cap, sizeof(*r->history))) ==
          NULL) {
    wschat__free(r);
    return WSCHAT_ENOMEM;
  }
  if (wschat__strmap_put(&srv->rooms, r->name, r) != 0) {
    room_free(r);
    return WSCHAT_ENOMEM;
  }
  wschat__link_insert_tail(&srv->room_list, &r->node);
  srv->nrooms++;
  srv->stats[WSCHAT_STAT_ROOMS] = srv->nrooms;
  *out = r;
  return 0;
}

wschat_room *wschat_room_find(wschat_server *srv, const char *name) {
  if (srv == NULL || name == NULL)
    return NULL;
  return wschat__strmap_get(&srv->rooms, name);
}

int wschat_server_set_max_rooms(wschat_server *srv, unsigned count) {
  if (srv == NULL || count < 1 || count > 1000000)
    return WSCHAT_EINVAL;
  srv->max_rooms = count;
  return 0;
}

int wschat_server_set_history(wschat_server *srv, unsigned count) {
  if (srv == NULL || count > 1000000)
    return WSCHAT_EINVAL;
  srv->history_size = count;
  return 0;
}

const char *wschat_room_name(const wschat_room *r) {
  return r->name;
}
unsigned wschat_room_member_count(const wschat_room *r) {
  return r->nmembers;
}
unsigned wschat_server_room_count(const wschat_server *srv) {
  return srv->nrooms;
}
void wschat_room_set_userdata(wschat_room *r, void *ud) {
  r->userdata = ud;
}
void *wschat_room_get_userdata(const wschat_room *r) {
  return r->userdata;
}

static wschat__membership *room_membership(const wschat_room *r,
                                           const wschat_session *s) {
  wschat__membership *m;
  /* A session is in few rooms; a room may have thousands of members. */
  for (m = s->rooms; m != NULL; m = m->next)
    if (m->room == r)
      return m;
  return NULL;
}

int wschat_room_is_member(const wschat_room *r, const wschat_session *s) {
  return r != NULL && s != NULL && room_membership(r, s) != NULL;
}

/* Close the holes left by members who left, unless a walk is going on. */
void wschat__room_compact(wschat_room *r) {
  uint32_t i, j = 0;
  if (r->walking > 0 || r->nslots == r->nmembers)
    return;
  for (i = 0; i < r->nslots; i++) {
    if (r->members[i] != NULL) {
      r->members[j] = r->members[i];
      r->members[j]->index = j;
      j++;
    }
  }
  r->nslots = j;
}

int wschat_room_join(wschat_room *r, wschat_session *s) {
  wschat__membership *m, **link;
  if (r == NULL || s == NULL)
    return WSCHAT_EINVAL;
  if (s->state != WSCHAT__S_OPEN || s->name[0] == '\0')
    return WSCHAT_ECLOSED;
  if (room_membership(r, s) != NULL)
    return WSCHAT_EEXIST;
  if (r->nslots == r->cap) {
    uint32_t cap;
    wschat__membership **members;
    wschat__room_compact(r);
    if (r->nslots == r->cap) {
      cap = r->cap ? r->cap * 2 : 8;
      members = wschat__realloc(r->members, cap * sizeof(*members));
      if (members == NULL)
        return WSCHAT_ENOMEM;
      r->members = members;
      r->cap = cap;
    }
  }
  m = wschat__malloc(sizeof(*m));
  if (m == NULL)
    return WSCHAT_ENOMEM;
  m->room = r;
  m->session = s;
  m->index = r->nslots;
  r->members[r->nslots++] = m;
  r->nmembers++;
  /* Last in the session's list, which keeps join order. */
  m->next = NULL;
  for (link = &s->rooms; *link != NULL; link = &(*link)->next)
    ;
  *link = m;
  return 0;
}

static void membership_remove(wschat__membership *m) {
  wschat_room *r = m->room;
  wschat__membership **link = &m->session->rooms;
  r->members[m->index] = NULL;
  r->nmembers--;
  while (*link != m)
    link = &(*link)->next;
  *link = m->next;
  wschat__free(m);
  if (r->nslots > 2 * r->nmembers + 8)
    wschat__room_compact(r);
}

int wschat_room_leave(wschat_room *r, wschat_session *s) {
  wschat__membership *m;
  if (r == NULL || s == NULL)
    return WSCHAT_EINVAL;
  if ((m = room_membership(r, s)) == NULL)
    return WSCHAT_ENOTMEMBER;
  membership_remove(m);
  return 0;
}

void wschat_room_foreach_member(wschat_room *r, wschat_member_cb cb,
                                void *arg) {
  uint32_t i, end = r->nslots;
  r->walking++;
  /* Members who join during the walk land past `end`. */
  for (i = 0; i < end; i++)
    if (r->members[i] != NULL)
      cb(r->members[i]->session, arg);
  r->walking--;
  wschat__room_compact(r);
}

void wschat_server_foreach_room(wschat_server *srv, wschat_room_cb cb,
                                void *arg) {
  wschat__link *l, *next;
  for (l = srv->room_list.next; l != &srv->room_list; l = next) {
    next = l->next;
    cb(WSCHAT__CONTAINER_OF(l, wschat_room, node), arg);
  }
}

void wschat_session_foreach_room(wschat_session *s, wschat_room_cb cb,
                                 void *arg) {
  wschat__membership *m, *next;
  for (m = s->rooms; m != NULL; m = next) {
    next = m->next;
    cb(m->room, arg);
  }
}

void wschat__chat_session_gone(wschat_session *s) {
  wschat_server *srv = wschat__session_server(s);
  while (s->rooms != NULL)
    membership_remove(s->rooms);
  if (s->name[0] != '\0') {
    if (wschat__strmap_get(&srv->names, s->name) == s)
      wschat__strmap_remove(&srv->names, s->name);
    s->name[0] = '\0';
    srv->stats[WSCHAT_STAT_SESSIONS]--;
  }
}

void wschat__chat_server_free(wschat_server *srv) {
  while (!wschat__link_empty(&srv->room_list))
    room_remove(WSCHAT__CONTAINER_OF(srv->room_list.next, wschat_room, node));
  wschat__strmap_free(&srv->rooms);
  wschat__strmap_free(&srv->names);
}

/* ------------------------------------------------------------------------
 * History
 * ---------------------------------------------------------------------- */

int wschat_room_history_add(wschat_room *r, const void *data, size_t len,
                            uint64_t *id) {
  history_entry *e;
  char *copy = NULL;
  if (r == NULL || (data == NULL && len > 0))
    return WSCHAT_EINVAL;
  if (r->history_cap > 0) {
    copy = wschat__malloc(len ? len : 1);
    if (copy == NULL)
      return WSCHAT_ENOMEM;
    if (len)
      memcpy(copy, data, len);
    if (r->history_count == r->history_cap) {
      wschat__free(r->history[r->history_head].data);
      r->history_head = (r->history_head + 1) % r->history_cap;
      r->history_count--;
    }
    e = &r->history[(r->history_head + r->history_count) % r->history_cap];
    e->id = r->last_id + 1;
    e->len = len;
    e->data = copy;
    r->history_count++;
  }
  r->last_id++;
  if (id != NULL)
    *id = r->last_id;
  return 0;
}

uint64_t wschat_room_last_id(const wschat_room *r) {
  return r->last_id;
}

uint64_t wschat_room_first_id(const wschat_room *r) {
  return r->history_count ? r->history[r->history_head].id : 0;
}

unsigned wschat_room_history(wschat_room *r, uint64_t after, uint64_t before,
                             unsigned limit, wschat_history_cb cb, void *arg,
                             int *more) {
  uint64_t first, lo, hi, id;
  unsigned n = 0;
  if (more != NULL)
    *more = 0;
  if (r == NULL || r->history_count == 0 || limit == 0)
    return 0;
  /* Stored ids are consecutive, so the range maps straight onto the ring. */
  first = r->history[r->history_head].id;
  lo = after + 1 > first ? after + 1 : first;
  hi = r->last_id;
  if (before != 0 && before - 1 < hi)
    hi = before - 1;
  if (after == UINT64_MAX || hi < lo)
    return 0;
  if (hi - lo + 1 > limit) {
    lo = hi - limit + 1;
    if (more != NULL)
      *more = 1;
  }
  for (id = lo; id <= hi; id++) {
    history_entry *e =
        &r->history[(r->history_head + (id - first)) % r->history_cap];
    if (cb != NULL)
      cb(r, e->id, e->data, e->len, arg);
    n++;
  }
  return n;
}

/* ------------------------------------------------------------------------
 * Rate limit
 * ---------------------------------------------------------------------- */

int wschat_server_set_rate(wschat_server *srv, unsigned per_second,
                           unsigned burst) {
  if (srv == NULL || per_second > 1000000 || burst < 1 || burst > 1000000)
    return WSCHAT_EINVAL;
  srv->rate_per_second = per_second;
  srv->rate_burst = burst;
  return 0;
}

void wschat_server_get_rate(const wschat_server *srv, unsigned *per_second,
                            unsigned *burst) {
  if (per_second != NULL)
    *per_second = srv->rate_per_second;
  if (burst != NULL)
    *burst = srv->rate_burst;
}

int wschat_session_rate_take(wschat_session *s) {
  wschat_server *srv = wschat__session_server(s);
  uint64_t now;
  if (srv->rate_per_second == 0)
    return 0;
  now = uv_now(srv->loop);
  s->rate_tokens += (double)wschat__ms_since(now, s->rate_refill) *
                    srv->rate_per_second / 1000.0;
  if (s->rate_tokens > srv->rate_burst)
    s->rate_tokens = srv->rate_burst;
  s->rate_refill = wschat__ms(now);
  if (s->rate_tokens < 1.0) {
    srv->stats[WSCHAT_STAT_RATE_LIMITED]++;
    return WSCHAT_ERATELIMITED;
  }
  s->rate_tokens -= 1.0;
  return 0;
}
