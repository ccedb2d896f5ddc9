/* The Origin policy of wschatd's WebSocket endpoint; see origin.h. */
#include "origin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"

static char **allowed;
static size_t allowed_count;
static size_t allowed_cap;
static int is_any_allowed;

int wschatd_origin_is_valid(const char *s) {
  const char *p = s;
  size_t host_len;

  if (strcmp(s, "*") == 0)
    return 1;
  /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), RFC 3986 3.1 */
  if (!isalpha((unsigned char)*p))
    return 0;
  while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  if (strncmp(p, "://", 3) != 0)
    return 0;
  p += 3;
  if (*p == '[') {
    host_len = strspn(p + 1, "0123456789abcdefABCDEF:.");
    if (host_len == 0 || p[1 + host_len] != ']')
      return 0;
    p += host_len + 2;
  } else {
    host_len = strspn(p, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~");
    if (host_len == 0)
      return 0;
    p += host_len;
  }
  if (*p == ':') {
    size_t digits = strspn(p + 1, "0123456789");
    if (digits == 0 || digits > 5 || atoi(p + 1) > 65535)
      return 0;
    p += 1 + digits;
  }
  return *p == '\0';
}

int wschatd_origin_allow(const char *origin) {
  char *copy;
  size_t i;

  if (strcmp(origin, "*") == 0) {
    is_any_allowed = 1;
    return 0;
  }
  for (i = 0; i < allowed_count; i++)
    if (strcasecmp(allowed[i], origin) == 0)
      return 0;
  if (allowed_count == allowed_cap) {
    size_t cap = allowed_cap ? 2 * allowed_cap : 8;
    char **grown = realloc(allowed, cap * sizeof(*grown));
    if (grown == NULL)
      return -1;
    allowed = grown;
    allowed_cap = cap;
  }
  copy = strdup(origin);
  if (copy == NULL)
    return -1;
  allowed[allowed_count++] = copy;
  return 0;
}

/* Accept http://HOST:PORT, and http://HOST too on port 80, where browsers
 * leave the default port out. host_is_v6 puts the host in brackets. */
static int allow_http_origin(const char *host, int host_is_v6, int port) {
  char origin[320];
  const char *open = host_is_v6 ? "[" : "";
  const char *close = host_is_v6 ? "]" : "";

  snprintf(origin, sizeof(origin), "http://%s%s%s:%d", open, host, close, port);
  if (wschatd_origin_allow(origin) != 0)
    return -1;
  if (port == 80) {
    snprintf(origin, sizeof(origin), "http://%s%s%s", open, host, close);
    if (wschatd_origin_allow(origin) != 0)
      return -1;
  }
  return 0;
}

/* For a wildcard listen address: every local address of the families the
 * socket accepts (a "::" socket takes IPv4 too, as Linux's default
 * bindv6only=0 has it) and the host name. */
static int allow_interface_origins(int with_v6, int port) {
  uv_interface_address_t *ifaces;
  char name[256];
  int count;
  int i;
  int rc = 0;

  if (uv_interface_addresses(&ifaces, &count) == 0) {
    for (i = 0; i < count && rc == 0; i++) {
      const struct sockaddr *sa = (const struct sockaddr *)&ifaces[i].address;
      if (sa->sa_family == AF_INET) {
        uv_ip4_name(&ifaces[i].address.address4, name, sizeof(name));
        rc = allow_http_origin(name, 0, port);
      } else if (sa->sa_family == AF_INET6 && with_v6) {
        uv_ip6_name(&ifaces[i].address.address6, name, sizeof(name));
        rc = allow_http_origin(name, 1, port);
      }
    }
    uv_free_interface_addresses(ifaces, count);
  }
  if (rc == 0 && gethostname(name, sizeof(name)) == 0) {
    name[sizeof(name) - 1] = '\0';
    rc = allow_http_origin(name, 0, port);
  }
  return rc;
}

int wschatd_origin_allow_listen_address(const char *host, int port) {
  unsigned char addr[16];
  static const unsigned char zeros[16];
  char canonical[64];

  if (allow_http_origin("localhost", 0, port) != 0)
    return -1;
  /* Browsers serialize the host of an origin in canonical form, so the
   * listen address is compared in that form too ("::0:1" is "[::1]"). */
  if (uv_inet_pton(AF_INET, host, addr) == 0) {
    if (memcmp(addr, zeros, 4) == 0)
      return allow_interface_origins(0, port);
    uv_inet_ntop(AF_INET, addr, canonical, sizeof(canonical));
    return allow_http_origin(canonical, 0, port);
  }
  if (uv_inet_pton(AF_INET6, host, addr) == 0) {
    if (memcmp(addr, zeros, 16) == 0)
      return allow_interface_origins(1, port);
    uv_inet_ntop(AF_INET6, addr, canonical, sizeof(canonical));
    return allow_http_origin(canonical, 1, port);
  }
  return allow_http_origin(host, 0, port);
}

/* Same-origin: the page was served by this host, as the browser named it
 * in the Host header (so a name or an address wschatd cannot know about,
 * such as a proxy's, works too). */
static int is_same_origin(const wschat_http_request *request,
                          const char *origin) {
  const char *host = wschat_http_header(request, "Host");
  return host != NULL && strncasecmp(origin, "http://", 7) == 0 &&
         strcasecmp(origin + 7, host) == 0;
}

int wschatd_origin_check(wschat_server *server,
                         const wschat_http_request *request, const char *origin,
                         void *userdata) {
  size_t i;
  (void)server;
  (void)userdata;

  if (origin == NULL || is_any_allowed || is_same_origin(request, origin)) {
    wschatd_log(WSCHATD_LOG_DEBUG, "WebSocket upgrade from origin %s",
                origin != NULL ? origin : "(none)");
    return 1;
  }
  for (i = 0; i < allowed_count; i++) {
    if (strcasecmp(allowed[i], origin) == 0) {
      wschatd_log(WSCHATD_LOG_DEBUG, "WebSocket upgrade from origin %s",
                  origin);
      return 1;
    }
  }
  wschatd_log(WSCHATD_LOG_INFO, "refused a WebSocket upgrade from origin %s",
              origin);
  return 0;
}

void wschatd_origin_cleanup(void) {
  size_t i;
  for (i = 0; i < allowed_count; i++)
    free(allowed[i]);
  free(allowed);
  allowed = NULL;
  allowed_count = allowed_cap = 0;
  is_any_allowed = 0;
}
