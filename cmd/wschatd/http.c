/* Plain HTTP on wschatd's port; see http.h. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "webroot.h"

static int web_root_fd = -1;
static const char *chat_path = "/chat";
static int is_stopping;

void wschatd_http_configure(int root_fd, const char *path) {
  web_root_fd = root_fd;
  chat_path = path;
}

void wschatd_http_set_stopping(void) {
  is_stopping = 1;
}

/* Every answer is fresh: the client's files change with each install, and
 * /healthz and /metrics must never come from a cache. */
static void respond(wschat_http_request *req, int status,
                    const char *content_type, const char *extra_headers,
                    const void *body, size_t len) {
  static const char common[] = "Cache-Control: no-cache\r\n"
                               "X-Content-Type-Options: nosniff\r\n";
  char headers[sizeof(common) + 128];
  int rc;

  snprintf(headers, sizeof(headers), "%s%s", common,
           extra_headers != NULL ? extra_headers : "");
  rc = wschat_http_respond(req, status, content_type, headers, body, len);
  if (rc < 0) {
    wschatd_log(WSCHATD_LOG_ERROR, "http %s %s: cannot respond: %s",
                wschat_http_method(req), wschat_http_path(req),
                wschat_strerror(rc));
    return;
  }
  wschatd_log(WSCHATD_LOG_DEBUG, "http %s %s%s%s %d %zu",
              wschat_http_method(req), wschat_http_path(req),
              wschat_http_query(req)[0] != '\0' ? "?" : "",
              wschat_http_query(req), status, len);
}

static void respond_error(wschat_http_request *req, int status,
                          const char *extra_headers) {
  const char *text;
  switch (status) {
  case 400:
    text = "bad request\n";
    break;
  case 403:
    text = "forbidden\n";
    break;
  case 404:
    text = "not found\n";
    break;
  case 405:
    text = "method not allowed\n";
    break;
  case 414:
    text = "URI too long\n";
    break;
  case 426:
    text = "this is a WebSocket endpoint\n";
    break;
  case 503:
    text = "stopping\n";
    break;
  default:
    text = "internal server error\n";
    break;
  }
  respond(req, status, "text/plain; charset=utf-8", extra_headers, text,
          strlen(text));
}

static void serve_health(wschat_http_request *req) {
  if (is_stopping)
    respond_error(req, 503, NULL);
  else
    respond(req, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
}

static void serve_metrics(wschat_server *server, wschat_http_request *req) {
  char small[8192];
  char *text = small;
  int n = wschat_server_metrics(server, small, sizeof(small));

  if (n >= 0 && (size_t)n >= sizeof(small)) {
    text = malloc((size_t)n + 1);
    if (text == NULL) {
      wschatd_log(WSCHATD_LOG_ERROR, "http /metrics: out of memory");
      respond_error(req, 500, NULL);
      return;
    }
    n = wschat_server_metrics(server, text, (size_t)n + 1);
  }
  if (n < 0) {
    wschatd_log(WSCHATD_LOG_ERROR, "http /metrics: %s", wschat_strerror(n));
    respond_error(req, 500, NULL);
  } else {
    respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text,
            strlen(text));
  }
  if (text != small)
    free(text);
}

static void serve_file(wschat_http_request *req, const char *path) {
  char name[WSCHATD_WEBROOT_MAX_NAME];
  const char *why = NULL;
  char *data;
  size_t len;
  int status = wschatd_webroot_resolve(path, name, sizeof(name));

  if (status == 400)
    wschatd_log(WSCHATD_LOG_INFO, "http %s %s: refused path",
                wschat_http_method(req), path);
  if (status == 0 && web_root_fd < 0)
    status = 404;
  if (status == 0)
    status = wschatd_webroot_read(web_root_fd, name, &data, &len, &why);
  if (status != 0) {
    if (why != NULL)
      wschatd_log(WSCHATD_LOG_ERROR, "http %s %s: %s", wschat_http_method(req),
                  path, why);
    respond_error(req, status, NULL);
    return;
  }
  respond(req, 200, wschatd_webroot_mime_type(name), NULL, data, len);
  free(data);
}

void wschatd_http_handle(wschat_server *server, wschat_http_request *req,
                         void *userdata) {
  const char *method = wschat_http_method(req);
  const char *path = wschat_http_path(req);
  (void)userdata;

  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    respond_error(req, 405, "Allow: GET, HEAD\r\n");
  else if (strcmp(path, "/healthz") == 0)
    serve_health(req);
  else if (strcmp(path, "/metrics") == 0)
    serve_metrics(server, req);
  else if (strcmp(path, chat_path) == 0)
    respond_error(req, 426, "Upgrade: websocket\r\n");
  else
    serve_file(req, path);
}
