/*
 * http.h - the plain-HTTP side of wschatd's port: the static files of the
 * web root, /healthz and /metrics. WebSocket upgrades never come here; the
 * library hands over only requests that are not upgrades.
 *
 *   GET|HEAD /healthz   200 "ok\n" while accepting, 503 once stopping
 *   GET|HEAD /metrics   200, Prometheus text (wschat_server_metrics())
 *   GET|HEAD CHAT_PATH  426, with Upgrade: websocket
 *   GET|HEAD other      the file below the web root (see webroot.h)
 *   any other method    405, with Allow: GET, HEAD
 */
#ifndef WSCHATD_HTTP_H
#define WSCHATD_HTTP_H

#include "wschat.h"

/* What the handler serves: web_root_fd is a directory descriptor (-1 for
 * none: every file is then 404), chat_path the WebSocket endpoint. Both
 * must stay valid while the server runs. */
void wschatd_http_configure(int web_root_fd, const char *chat_path);

/* From now on /healthz answers 503. */
void wschatd_http_set_stopping(void);

/* The wschat_http_cb. It keeps its state in this module, not in the
 * server's user data, which the chat protocol owns. */
void wschatd_http_handle(wschat_server *server, wschat_http_request *req,
                         void *userdata);

#endif /* WSCHATD_HTTP_H */
