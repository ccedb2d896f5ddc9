/*
 * chat.c - the tutorial's last program on libwschat: every connection to
 * /chat is named user<N>, and whatever one of them sends reaches everyone
 * as "user3 said: hi". It greets each newcomer with the number of people
 * present.
 *
 *   chat [PORT]        (default 8080; 0 picks one)
 *
 * The set of connections is a room: joining adds a connection, the library
 * removes it when it closes, and a broadcast encodes the line once for
 * everyone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "wschat.h"

static wschat_room *everyone;

/* Send one line to every connection, encoded once. */
static void tell_everyone(const char *line, size_t len) {
  wschat_frame *frame;
  if (wschat_frame_new(WSCHAT_TEXT, line, len, &frame) != 0)
    return;
  wschat_room_broadcast(everyone, frame, NULL);
  wschat_frame_release(frame);
}

static void on_open(wschat_session *session, void *userdata) {
  char greeting[128];
  int n;
  (void)userdata;
  if (wschat_room_join(everyone, session) != 0) {
    wschat_session_close(session, WSCHAT_CLOSE_INTERNAL, "cannot join");
    return;
  }
  n = snprintf(greeting, sizeof(greeting),
               "You are connected! There are %u users here.",
               wschat_room_member_count(everyone));
  wschat_session_send_text(session, greeting, (size_t)n);
}

static void on_message(wschat_session *session, wschat_msg_type type,
                       const char *data, size_t len, void *userdata) {
  const char *name = wschat_session_name(session);
  size_t name_len = strlen(name);
  static const char said[] = " said: ";
  char *line;
  (void)userdata;
  if (type != WSCHAT_TEXT)
    return; /* the tutorial's chat is text only */
  line = malloc(name_len + sizeof(said) - 1 + len);
  if (line == NULL)
    return;
  memcpy(line, name, name_len);
  memcpy(line + name_len, said, sizeof(said) - 1);
  memcpy(line + name_len + sizeof(said) - 1, data, len);
  tell_everyone(line, name_len + sizeof(said) - 1 + len);
  free(line);
}

static void on_signal(uv_signal_t *handle, int signum) {
  (void)signum;
  wschat_server_stop(handle->data);
  uv_close((uv_handle_t *)handle, NULL);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8080;
  wschat_server *server = wschat_server_new(NULL);
  uv_signal_t sigterm;
  int rc;

  if (server == NULL || wschat_server_set_path(server, "/chat") != 0 ||
      wschat_room_open(server, "everyone", &everyone) != 0) {
    fputs("chat: out of memory\n", stderr);
    return 1;
  }
  wschat_server_on_open(server, on_open);
  wschat_server_on_message(server, on_message);
  rc = wschat_server_listen(server, "127.0.0.1", port);
  if (rc != 0) {
    fprintf(stderr, "chat: listen: %s\n", wschat_strerror(rc));
    return 1;
  }
  uv_signal_init(wschat_server_loop(server), &sigterm);
  sigterm.data = server;
  uv_signal_start_oneshot(&sigterm, on_signal, SIGTERM);
  printf("chat: listening on ws://127.0.0.1:%d/chat\n",
         wschat_server_port(server));
  fflush(stdout);

  wschat_server_run(server);
  if (wschat_server_free(server) != 0)
    return 1;
  return wschat_library_shutdown() == 0 ? 0 : 1;
}
