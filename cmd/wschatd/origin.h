/*
 * origin.h - which browser pages may open a WebSocket to wschatd.
 *
 * The Origin header is the browser's word on which page is connecting; a
 * non-browser client sends none (and could send any), so a request
 * without one is always let through. Beyond that the policy accepts
 * same-origin pages (Origin equal to http:// and the request's Host), the
 * server's own origins (the listen address, and localhost, at the
 * listening port: the pages wschatd itself serves) and every origin given
 * with --allow-origin, where "*" accepts any. Origins compare
 * case-insensitively, as their scheme and host do.
 */
#ifndef WSCHATD_ORIGIN_H
#define WSCHATD_ORIGIN_H

#include "wschat.h"

/* Whether s is something --allow-origin accepts: "*", or
 * SCHEME://HOST[:PORT] with no path (an origin as browsers send it). */
int wschatd_origin_is_valid(const char *s);

/* Accept this origin (or any, for "*"). The string is copied. Returns 0
 * or -1 when out of memory. */
int wschatd_origin_allow(const char *origin);

/*
 * Accept the server's own origins once it listens on host (an address
 * literal) and port: http://HOST:PORT and http://localhost:PORT (and the
 * forms without ":80" on port 80). For a wildcard host ("0.0.0.0", "::")
 * the host is unknown, so every local interface address and the host
 * name stand in for it. Returns 0 or -1 when out of memory.
 */
int wschatd_origin_allow_listen_address(const char *host, int port);

/* The wschat_origin_cb that applies the policy; an Origin equal to
 * "http://" + the request's Host is same-origin and accepted. */
int wschatd_origin_check(wschat_server *server,
                         const wschat_http_request *request, const char *origin,
                         void *userdata);

/* Free the lists. */
void wschatd_origin_cleanup(void);

#endif /* WSCHATD_ORIGIN_H */
