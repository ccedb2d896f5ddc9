/*
 * Tests for lib/chat/room.c and broadcast.c: names, rooms, membership,
 * shared-frame broadcast, history, rate limiting, statistics. History and
 * room bookkeeping need no connection; the rest runs a real server in a
 * second thread driven by one-word commands from raw clients.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <uv.h>

#include "wschat.h"

#include "../support.h"

/* ------------------------------------------------------------------------
 * Without connections
 * ---------------------------------------------------------------------- */

static void collect(wschat_room *r, uint64_t id, const char *data, size_t len,
                    void *arg) {
  char *out = arg;
  (void)r;
  sprintf(out + strlen(out), "%llu=%.*s,", (unsigned long long)id, (int)len,
          data);
}

Test(history, ids_ring_and_ranges) {
  wschat_server *s = wschat_server_new(NULL);
  wschat_room *r;
  char out[512] = "";
  uint64_t id = 0;
  int more = -1;
  char msg[16];
  int i;
  cr_assert_eq(wschat_server_set_history(s, 5), 0);
  cr_assert_eq(wschat_room_open(s, "dev", &r), 0);
  cr_assert_eq(wschat_room_last_id(r), 0);
  cr_assert_eq(wschat_room_first_id(r), 0);
  cr_assert_eq(wschat_room_history(r, 0, 0, 10, collect, out, &more), 0);
  for (i = 1; i <= 8; i++) {
    snprintf(msg, sizeof(msg), "m%d", i);
    cr_assert_eq(wschat_room_history_add(r, msg, strlen(msg), &id), 0);
    cr_assert_eq(id, (uint64_t)i);
  }
  /* Ring of 5: ids 4..8 kept. */
  cr_assert_eq(wschat_room_first_id(r), 4);
  cr_assert_eq(wschat_room_last_id(r), 8);
  cr_assert_eq(wschat_room_history(r, 0, 0, 50, collect, out, &more), 5);
  cr_assert_str_eq(out, "4=m4,5=m5,6=m6,7=m7,8=m8,");
  cr_assert_eq(more, 0);
  /* The newest 2, oldest first, with older ones left out. */
  out[0] = '\0';
  cr_assert_eq(wschat_room_history(r, 0, 0, 2, collect, out, &more), 2);
  cr_assert_str_eq(out, "7=m7,8=m8,");
  cr_assert_eq(more, 1);
  /* since 6 */
  out[0] = '\0';
  cr_assert_eq(wschat_room_history(r, 6, 0, 1000, collect, out, &more), 2);
  cr_assert_str_eq(out, "7=m7,8=m8,");
  /* before 7, limit 2 */
  out[0] = '\0';
  cr_assert_eq(wschat_room_history(r, 0, 7, 2, collect, out, &more), 2);
  cr_assert_str_eq(out, "5=m5,6=m6,");
  cr_assert_eq(more, 1);
  /* Ranges that hold nothing. */
  cr_assert_eq(wschat_room_history(r, 8, 0, 10, collect, out, &more), 0);
  cr_assert_eq(wschat_room_history(r, 0, 4, 10, collect, out, &more), 0);
  cr_assert_eq(wschat_room_history(r, 0, 1, 10, collect, out, &more), 0);
  cr_assert_eq(wschat_room_history(r, UINT64_MAX, 0, 10, NULL, NULL, NULL), 0);
  cr_assert_eq(wschat_room_history(r, 0, 0, 0, NULL, NULL, NULL), 0);
  cr_assert_eq(wschat_server_free(s), 0);
}

Test(history, size_zero_still_assigns_ids) {
  wschat_server *s = wschat_server_new(NULL);
  wschat_room *r;
  uint64_t id;
  cr_assert_eq(wschat_server_set_history(s, 0), 0);
  cr_assert_eq(wschat_server_set_history(s, 1000001), WSCHAT_EINVAL);
  cr_assert_eq(wschat_room_open(s, "a", &r), 0);
  cr_assert_eq(wschat_room_history_add(r, "x", 1, &id), 0);
  cr_assert_eq(wschat_room_history_add(r, "y", 1, &id), 0);
  cr_assert_eq(id, 2);
  cr_assert_eq(wschat_room_first_id(r), 0);
  cr_assert_eq(wschat_room_history(r, 0, 0, 10, NULL, NULL, NULL), 0);
  cr_assert_eq(wschat_server_free(s), 0);
}

static void list_room(wschat_room *r, void *arg) {
  char *out = arg;
  sprintf(out + strlen(out), "%s(%u) ", wschat_room_name(r),
          wschat_room_member_count(r));
}

Test(rooms, names_limits_and_eviction) {
  size_t before = wschat_live_bytes();
  wschat_server *s = wschat_server_new(NULL);
  wschat_room *a, *b, *c, *again;
  char out[256] = "";
  char longname[66];
  memset(longname, 'x', 65);
  longname[65] = '\0';
  cr_assert_eq(wschat_room_open(s, "", &a), WSCHAT_EINVAL);
  cr_assert_eq(wschat_room_open(s, "a b", &a), WSCHAT_EINVAL);
  cr_assert_eq(wschat_room_open(s, "caf\xc3\xa9", &a), WSCHAT_EINVAL);
  cr_assert_eq(wschat_room_open(s, longname, &a), WSCHAT_EINVAL);
  longname[64] = '\0';
  cr_assert_eq(wschat_room_open(s, longname, &a), 0);
  cr_assert_eq(wschat_server_set_max_rooms(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_server_set_max_rooms(s, 3), 0);
  cr_assert_eq(wschat_room_open(s, "lobby", &b), 0);
  cr_assert_eq(wschat_room_open(s, "lobby", &again), 0);
  cr_assert_eq(again, b);
  cr_assert_eq(wschat_room_find(s, "lobby"), b);
  cr_assert_null(wschat_room_find(s, "Lobby")); /* rooms: exact names */
  cr_assert_eq(wschat_room_open(s, "dev", &c), 0);
  cr_assert_eq(wschat_server_room_count(s), 3);
  wschat_server_foreach_room(s, list_room, out);
  cr_assert_eq(strncmp(out, "xxxx", 4), 0);
  cr_assert_not_null(strstr(out, "(0) lobby(0) dev(0) "));
  /* Full: the oldest empty room makes way. */
  cr_assert_eq(wschat_room_open(s, "new", &a), 0);
  cr_assert_eq(wschat_server_room_count(s), 3);
  cr_assert_null(wschat_room_find(s, longname));
  cr_assert_eq(wschat_server_stat(s, WSCHAT_STAT_ROOMS), 3);
  wschat_room_set_userdata(a, out);
  cr_assert_eq(wschat_room_get_userdata(a), out);
  cr_assert_eq(wschat_server_free(s), 0);
  cr_assert_eq(wschat_live_bytes(), before);
}

Test(frames, new_and_release) {
  wschat_frame *f = NULL;
  cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, "\xc0\xaf", 2, &f),
               WSCHAT_EBADUTF8);
  cr_assert_eq(wschat_frame_new((wschat_msg_type)7, "x", 1, &f), WSCHAT_EINVAL);
  cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, "x", 1, NULL), WSCHAT_EINVAL);
  cr_assert_eq(wschat_frame_new(WSCHAT_BINARY, "\xc0", 1, &f), 0);
  wschat_frame_release(f);
  wschat_frame_release(NULL);
}

/* ------------------------------------------------------------------------
 * With a running server
 * ---------------------------------------------------------------------- */

static wschat_server *server;
static pthread_t loop_thread;
static size_t live_before;

static void on_open(wschat_session *s, void *ud) {
  wschat_room *lobby;
  (void)ud;
  cr_assert_eq(wschat_room_open(server, "lobby", &lobby), 0);
  cr_assert_eq(wschat_room_join(lobby, s), 0);
  cr_assert_eq(wschat_room_join(lobby, s), WSCHAT_EEXIST);
  log_event("open %s;", wschat_session_name(s));
}

static void on_close(wschat_session *s, int code, const char *reason,
                     size_t len, void *ud) {
  wschat_room *lobby = wschat_room_find(server, "lobby");
  (void)code;
  (void)reason;
  (void)len;
  (void)ud;
  /* Still a member during on_close; removed just after. */
  log_event("close %s member=%d;", wschat_session_name(s),
            wschat_room_is_member(lobby, s));
}

/* "ok" for 0, the error's name otherwise. */
static const char *rc_name(int rc) {
  return rc == 0 ? "ok" : wschat_err_name(rc);
}

static void name_of(wschat_session *s, void *arg) {
  char *out = arg;
  sprintf(out + strlen(out), "%s ", wschat_session_name(s));
}

static void visit_and_leave(wschat_session *s, void *arg) {
  /* Leaving (another member, or oneself) in the middle of a walk. */
  wschat_room *r = arg;
  log_event("visit %s;", wschat_session_name(s));
  if (strcmp(wschat_session_name(s), "user1") == 0)
    wschat_room_leave(r, wschat_server_find_session(server, "user2"));
}

/* Closes every other member it visits, then sends to it: the closed
 * session stays valid (its free is deferred) and refuses the send. */
static void visit_and_close(wschat_session *s, void *arg) {
  wschat_session *self = arg;
  if (s == self)
    return;
  cr_assert_eq(wschat_session_close(s, 4001, "closed mid-walk"), 0);
  cr_assert_eq(wschat_session_send_text(s, "late", 4), WSCHAT_ECLOSED);
}

/* Commands: "name N", "join R", "leave R", "say R TEXT", "who R",
 * "rooms", "rate N", "walk R". Each logs its result. */
static void on_message(wschat_session *s, wschat_msg_type type,
                       const char *data, size_t len, void *ud) {
  char cmd[16], arg[80], text[80] = "";
  char line[256];
  wschat_room *r = NULL;
  (void)type;
  (void)ud;
  snprintf(line, sizeof(line), "%.*s", (int)len, data);
  if (sscanf(line, "%15s %79s %79[^\n]", cmd, arg, text) < 1)
    return;
  if (strcmp(cmd, "name") == 0) {
    log_event("name %s=%s;", arg, rc_name(wschat_session_set_name(s, arg)));
  } else if (strcmp(cmd, "join") == 0) {
    cr_assert_eq(wschat_room_open(server, arg, &r), 0);
    log_event("join %s=%s;", arg, rc_name(wschat_room_join(r, s)));
  } else if (strcmp(cmd, "leave") == 0) {
    log_event("leave %s=%s;", arg,
              rc_name(wschat_room_leave(wschat_room_find(server, arg), s)));
  } else if (strcmp(cmd, "say") == 0) {
    wschat_frame *f;
    cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, text, strlen(text), &f), 0);
    log_event("say %d;",
              wschat_room_broadcast(wschat_room_find(server, arg), f, NULL));
    wschat_frame_release(f);
  } else if (strcmp(cmd, "sayx") == 0) {
    wschat_frame *f;
    cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, text, strlen(text), &f), 0);
    log_event("sayx %d;",
              wschat_room_broadcast(wschat_room_find(server, arg), f, s));
    wschat_frame_release(f);
  } else if (strcmp(cmd, "who") == 0) {
    char out[256] = "";
    wschat_room_foreach_member(wschat_room_find(server, arg), name_of, out);
    log_event("who %s: %s;", arg, out);
  } else if (strcmp(cmd, "rooms") == 0) {
    char out[256] = "";
    wschat_session_foreach_room(s, list_room, out);
    log_event("rooms %s;", out);
  } else if (strcmp(cmd, "rate") == 0) {
    int i, ok = 0;
    for (i = 0; i < atoi(arg); i++)
      ok += wschat_session_rate_take(s) == 0;
    log_event("rate %d;", ok);
  } else if (strcmp(cmd, "walk") == 0) {
    wschat_room *room = wschat_room_find(server, arg);
    wschat_room_foreach_member(room, visit_and_leave, room);
    log_event("walked %u;", wschat_room_member_count(room));
  } else if (strcmp(cmd, "walkclose") == 0) {
    wschat_room *room = wschat_room_find(server, arg);
    wschat_frame *f;
    wschat_room_foreach_member(room, visit_and_close, s);
    /* A broadcast right after reaches only the member still open. */
    cr_assert_eq(wschat_frame_new(WSCHAT_TEXT, "after", 5, &f), 0);
    log_event("walkclose %d;", wschat_room_broadcast(room, f, NULL));
    wschat_frame_release(f);
  } else if (strcmp(cmd, "burst") == 0) {
    /* atoi(arg) broadcasts in this one turn, numbered, of growing sizes
     * (so small frames fill and roll over frame blocks, and every 50th
     * is too large to be carved), with a direct reply to the caller after
     * every 7th: all must arrive whole and in this order. */
    static char big[6000];
    int i, n = atoi(arg), sent = 0;
    for (i = 0; i < n; i++) {
      wschat_frame *f;
      size_t len = (size_t)(i % 50 == 49 ? 5000 : 8 + (i * 37) % 900);
      memset(big, 'a' + i % 26, len);
      snprintf(big, 16, "%06d:", i);
      big[7] = 'a' + i % 26; /* snprintf's NUL */
      cr_assert_eq(wschat_frame_new(WSCHAT_BINARY, big, len, &f), 0);
      sent +=
          wschat_room_broadcast(wschat_room_find(server, "lobby"), f, NULL) > 0;
      wschat_frame_release(f);
      if (i % 7 == 6)
        cr_assert_eq(wschat_session_send_text(s, "direct", 6), 0);
    }
    log_event("burst %d;", sent);
  } else if (strcmp(cmd, "find") == 0) {
    wschat_session *f = wschat_server_find_session(server, arg);
    log_event("find %s=%s;", arg, f ? wschat_session_name(f) : "-");
  }
}

static void *run_loop(void *arg) {
  (void)arg;
  cr_assert_eq(wschat_server_run(server), 0);
  return NULL;
}

static void setup(void) {
  event_log[0] = '\0';
  live_before = wschat_live_bytes();
  server = wschat_server_new(NULL);
  wschat_server_on_open(server, on_open);
  wschat_server_on_message(server, on_message);
  wschat_server_on_close(server, on_close);
  cr_assert_eq(wschat_server_listen(server, "127.0.0.1", 0), 0);
  port = wschat_server_port(server);
  pthread_create(&loop_thread, NULL, run_loop, NULL);
}

static void teardown(void) {
  cr_assert_eq(wschat_server_stop(server), 0);
  pthread_join(loop_thread, NULL);
  cr_assert_eq(wschat_server_free(server), 0);
  cr_assert_eq(wschat_live_bytes(), live_before);
}

static void send_text(int fd, const char *s) {
  client_send(fd, 1, s, strlen(s));
}

static void expect_text(int fd, const char *want) {
  uint8_t buf[256];
  int op;
  size_t n = client_recv(fd, &op, buf, sizeof(buf) - 1);
  buf[n] = '\0';
  cr_assert_eq(op, 1);
  cr_assert_str_eq((char *)buf, want);
}

Test(chat, names_user_n_and_renames, .init = setup, .fini = teardown) {
  int a = client_open(NULL);
  cr_assert(log_wait_for("open user1;"));
  int b = client_open(NULL);
  cr_assert(log_wait_for("open user2;"));
  send_text(a, "name Alice");
  cr_assert(log_wait_for("name Alice=ok;"));
  send_text(b, "name alice");
  cr_assert(log_wait_for("name alice=WSCHAT_ENAMETAKEN;"));
  send_text(b, "name bad/name");
  cr_assert(log_wait_for("name bad/name=WSCHAT_EINVAL;"));
  send_text(b, "name 012345678901234567890123456789012");
  cr_assert(log_wait_for("=WSCHAT_EINVAL;"));
  send_text(a, "name ALICE"); /* its own name in another case */
  cr_assert(log_wait_for("name ALICE=ok;"));
  send_text(b, "find alice");
  cr_assert(log_wait_for("find alice=ALICE;"));
  /* A new session skips numbers taken by renames. */
  send_text(b, "name user3");
  cr_assert(log_wait_for("name user3=ok;"));
  int c = client_open(NULL);
  cr_assert(log_wait_for("open user4;"));
  /* A closed session's name is free again. */
  close(a);
  cr_assert(log_wait_for("close ALICE member=1;"));
  send_text(c, "find ALICE");
  cr_assert(log_wait_for("find ALICE=-;"));
  send_text(c, "name alice");
  cr_assert(log_wait_for("name alice=ok;"));
  close(b);
  close(c);
}

Test(chat, broadcast_shares_one_frame, .init = setup, .fini = teardown) {
  int fds[3], i;
  for (i = 0; i < 3; i++)
    fds[i] = client_open(NULL);
  cr_assert(log_wait_for("open user3;"));
  send_text(fds[0], "say lobby hello all");
  cr_assert(log_wait_for("say 3;"));
  for (i = 0; i < 3; i++)
    expect_text(fds[i], "hello all");
  send_text(fds[1], "sayx lobby not to me");
  cr_assert(log_wait_for("sayx 2;"));
  expect_text(fds[0], "not to me");
  expect_text(fds[2], "not to me");
  /* user2 got nothing: its next frame is the next broadcast. */
  send_text(fds[0], "say lobby second");
  expect_text(fds[1], "second");
  for (i = 0; i < 3; i++)
    close(fds[i]);
}

/* Frames broadcast in one turn are carved back to back and queued as
 * one stretch per recipient; interleaved direct sends, frames too large
 * to carve and block rollovers must not disturb their order or bytes. */
Test(chat, burst_of_broadcasts_arrives_whole_and_in_order, .init = setup,
     .fini = teardown) {
  static uint8_t buf[8192];
  char want[6000];
  int fds[2], i, k, op;
  for (i = 0; i < 2; i++)
    fds[i] = client_open(NULL);
  cr_assert(log_wait_for("open user2;"));
  send_text(fds[0], "burst 400");
  cr_assert(log_wait_for("burst 400;"));
  for (k = 0; k < 2; k++) {
    for (i = 0; i < 400; i++) {
      size_t len = (size_t)(i % 50 == 49 ? 5000 : 8 + (i * 37) % 900);
      size_t n = client_recv(fds[k], &op, buf, sizeof(buf));
      memset(want, 'a' + i % 26, len);
      snprintf(want, 16, "%06d:", i);
      want[7] = 'a' + i % 26;
      cr_assert_eq(op, 2, "client %d frame %d: opcode %d", k, i, op);
      cr_assert_eq(n, len, "client %d frame %d: %zu bytes", k, i, n);
      cr_assert_eq(memcmp(buf, want, len), 0, "client %d frame %d", k, i);
      if (k == 0 && i % 7 == 6) {
        n = client_recv(fds[k], &op, buf, sizeof(buf));
        cr_assert_eq(op, 1);
        cr_assert_eq(n, 6);
        cr_assert_eq(memcmp(buf, "direct", 6), 0, "after frame %d", i);
      }
    }
  }
  for (i = 0; i < 2; i++)
    close(fds[i]);
}

/* This process's io_uring descriptor, or -1. */
static int ring_fd(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  char path[300], target[128];
  int fd = -1;
  cr_assert_not_null(d);
  while ((e = readdir(d)) != NULL) {
    ssize_t n;
    snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
    n = readlink(path, target, sizeof(target) - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strstr(target, "io_uring") != NULL)
        fd = atoi(e->d_name);
    }
  }
  closedir(d);
  return fd;
}

/* The batched flush sends through the server's io_uring; when the ring
 * fails, the sessions of that batch are written the plain way and the
 * server goes on without it. The ring is broken here by putting another
 * file in place of its descriptor. */
Test(chat, broadcast_survives_a_failed_ring, .init = setup, .fini = teardown) {
  int fds[2], i, ring, null;
  for (i = 0; i < 2; i++)
    fds[i] = client_open(NULL);
  cr_assert(log_wait_for("open user2;"));
  send_text(fds[0], "say lobby batched");
  cr_assert(log_wait_for("say 2;"));
  for (i = 0; i < 2; i++)
    expect_text(fds[i], "batched");
  ring = ring_fd();
  cr_assert_geq(ring, 0, "the server has no io_uring on this machine");
  null = open("/dev/null", O_WRONLY);
  cr_assert_geq(null, 0);
  cr_assert_eq(dup2(null, ring), ring);
  close(null);
  send_text(fds[0], "say lobby after the ring failed");
  for (i = 0; i < 2; i++)
    expect_text(fds[i], "after the ring failed");
  send_text(fds[1], "say lobby and without it");
  for (i = 0; i < 2; i++)
    expect_text(fds[i], "and without it");
  /* The server closed what stood in for its ring. */
  cr_assert_eq(fcntl(ring, F_GETFD), -1);
  for (i = 0; i < 2; i++)
    close(fds[i]);
}

Test(chat, membership, .init = setup, .fini = teardown) {
  int a = client_open(NULL);
  int b = client_open(NULL);
  cr_assert(log_wait_for("open user2;"));
  send_text(a, "join dev");
  cr_assert(log_wait_for("join dev=ok;"));
  send_text(a, "join dev");
  cr_assert(log_wait_for("join dev=WSCHAT_EEXIST;"));
  send_text(b, "leave dev");
  cr_assert(log_wait_for("leave dev=WSCHAT_ENOTMEMBER;"));
  send_text(b, "join dev");
  cr_assert(log_wait_for("leave dev=WSCHAT_ENOTMEMBER;join dev=ok;"));
  send_text(a, "rooms");
  cr_assert(log_wait_for("rooms lobby(2) dev(2) ;"));
  send_text(a, "who dev");
  cr_assert(log_wait_for("who dev: user1 user2 ;"));
  send_text(a, "leave lobby");
  cr_assert(log_wait_for("leave lobby=ok;"));
  send_text(a, "rooms");
  cr_assert(log_wait_for("rooms dev(2) ;"));
  /* Closing leaves every room. */
  close(b);
  cr_assert(log_wait_for("close user2 member=1;"));
  send_text(a, "who dev");
  cr_assert(log_wait_for("who dev: user1 ;"));
  send_text(a, "who lobby");
  cr_assert(log_wait_for("who lobby: ;"));
  close(a);
}

Test(chat, leave_during_walk_skips_the_member, .init = setup,
     .fini = teardown) {
  int a = client_open(NULL);
  int b = client_open(NULL);
  int c = client_open(NULL);
  cr_assert(log_wait_for("open user3;"));
  send_text(a, "walk lobby");
  cr_assert(log_wait_for("visit user1;visit user3;walked 2;"));
  send_text(a, "who lobby");
  cr_assert(log_wait_for("who lobby: user1 user3 ;"));
  close(a);
  close(b);
  close(c);
}

Test(chat, rate_limit_bucket, .init = setup, .fini = teardown) {
  int a = client_open(NULL);
  cr_assert(log_wait_for("open user1;"));
  send_text(a, "rate 100");
  /* Default burst 40; the few ms the loop takes refill next to nothing. */
  cr_assert(log_wait_for("rate 40;"));
  close(a);
}

Test(chat, metrics_text, .init = setup, .fini = teardown) {
  char buf[4096];
  int n;
  int a = client_open(NULL);
  cr_assert(log_wait_for("open user1;"));
  send_text(a, "say lobby x");
  expect_text(a, "x");
  client_close(a, 1000);
  expect_close(a, 1000, "");
  close(a);
  cr_assert(log_wait_for("close user1"));
  usleep(50000);
  n = wschat_server_metrics(server, buf, sizeof(buf));
  cr_assert_gt(n, 0);
  cr_assert_lt(n, (int)sizeof(buf));
  cr_assert_not_null(strstr(buf, "# TYPE wschat_connections gauge\n"));
  cr_assert_not_null(strstr(buf, "\nwschat_sessions_opened_total 1\n"));
  cr_assert_not_null(strstr(buf, "\nwschat_messages_in_total 1\n"));
  cr_assert_not_null(strstr(buf, "\nwschat_messages_out_total 1\n"));
  cr_assert_not_null(strstr(buf, "wschat_closes_total{code=\"1000\"} 1\n"));
  cr_assert_not_null(strstr(buf, "\nwschat_rooms 1\n"));
  /* Cut output reports the length it needed, like snprintf. */
  cr_assert_eq(wschat_server_metrics(server, buf, 10), n);
  cr_assert_eq(strlen(buf), 9);
  cr_assert_eq(wschat_server_closes(server, 1000), 1);
  cr_assert_eq(wschat_server_closes(server, 4000), 0);
}

Test(chat, close_during_walk_and_broadcast, .init = setup, .fini = teardown) {
  int fds[4], i;
  for (i = 0; i < 4; i++)
    fds[i] = client_open(NULL);
  cr_assert(log_wait_for("open user4;"));
  send_text(fds[0], "walkclose lobby");
  cr_assert(log_wait_for("walkclose 1;"));
  expect_text(fds[0], "after");
  for (i = 1; i < 4; i++) {
    expect_close(fds[i], 4001, "closed mid-walk");
    client_close(fds[i], 4001);
    expect_eof(fds[i]);
    close(fds[i]);
  }
  cr_assert(log_wait_for("close user4 member=1;"));
  send_text(fds[0], "who lobby");
  cr_assert(log_wait_for("who lobby: user1 ;"));
  close(fds[0]);
}
