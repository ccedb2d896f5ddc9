/*
 * handshake.h - the server side of the RFC 6455 opening handshake
 * (section 4.2), sans I/O. Parses an HTTP/1.1 request head incrementally
 * with http-parser (the only module that uses it), decides whether it is a
 * valid WebSocket upgrade, a plain HTTP request, or one to reject with a
 * status code, and builds the replies.
 */
#ifndef WSCHAT_PROTO_HANDSHAKE_H
#define WSCHAT_PROTO_HANDSHAKE_H

#include "proto.h"

typedef struct wschat__hs_config {
  size_t max_header; /* bytes of request head, <= 32768; over: 431 (414) */
  unsigned max_header_count;       /* header lines; over: 431 */
  const char *path;                /* upgrade path, NULL = any; else 404 */
  const char *const *subprotocols; /* server's list, in no special order */
  size_t n_subprotocols;
} wschat__hs_config;

typedef enum wschat__hs_state {
  WSCHAT__HS_MORE = 0, /* request head incomplete: feed more */
  WSCHAT__HS_UPGRADE,  /* valid WebSocket upgrade: build the 101 reply */
  WSCHAT__HS_HTTP,     /* complete request without an Upgrade: websocket */
  WSCHAT__HS_REJECT    /* answer wschat__handshake_status() and close */
} wschat__hs_state;

typedef struct wschat__handshake wschat__handshake;

/* Create a parser; the config is copied (the strings it points to are
 * not, and must outlive the parser). NULL when out of memory. */
wschat__handshake *wschat__handshake_new(const wschat__hs_config *cfg,
                                         const wschat__allocator *alloc);
void wschat__handshake_free(wschat__handshake *hs);
/* Start a new parse with hs (a server keeps finished parsers for the next
 * connection instead of freeing them): like free + new, but the parser's
 * own block is kept. Returns 0 or WSCHAT_EINVAL. */
int wschat__handshake_reset(wschat__handshake *hs,
                            const wschat__hs_config *cfg);

/*
 * Feed request bytes; any split of the request gives the same result.
 * *consumed gets how many bytes of data belong to the request head: once
 * the state is UPGRADE, data[*consumed..len) are the first bytes of the
 * WebSocket stream. Once the state is not MORE, further feeds do nothing
 * and return the same state.
 *
 * Rejections (status, checked in this order): malformed HTTP 400; request
 * target over max_header 414; head over max_header or too many headers
 * 431. For a request whose Upgrade header lists "websocket": method not
 * GET 405; HTTP version below 1.1 400; path not the configured one 404;
 * no Host, or two, 400; Connection without the "upgrade" token 400;
 * Sec-WebSocket-Version on two lines 400, missing or not 13 426;
 * Sec-WebSocket-Key on two lines, or not the base64 of 16 bytes, 400.
 */
wschat__hs_state wschat__handshake_feed(wschat__handshake *hs, const char *data,
                                        size_t len, size_t *consumed);

wschat__hs_state wschat__handshake_state(const wschat__handshake *hs);

/* For REJECT: the HTTP status, and a static reason for logs ("missing
 * Host header"). */
int wschat__handshake_status(const wschat__handshake *hs);
const char *wschat__handshake_error(const wschat__handshake *hs);

/* The request, once complete (state UPGRADE or HTTP; for REJECT whatever
 * was parsed, possibly ""). Strings live as long as the parser. */
const char *wschat__handshake_method(const wschat__handshake *hs);
const char *wschat__handshake_path(const wschat__handshake *hs);
const char *wschat__handshake_query(const wschat__handshake *hs);
/* First header with this name (case-insensitive), or NULL. */
const char *wschat__handshake_header(const wschat__handshake *hs,
                                     const char *name);
/* For UPGRADE: the selected subprotocol (a pointer into cfg's list), or
 * NULL when the client offered none the server speaks. */
const char *wschat__handshake_subprotocol(const wschat__handshake *hs);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)); out gets 28
 * characters and a NUL. Returns 0, or WSCHAT_EINVAL. */
int wschat__accept_key(const char *key, size_t key_len, char out[29]);

/*
 * Build the "101 Switching Protocols" reply for an UPGRADE into out.
 * Returns its length, or WSCHAT_EINVAL if it does not fit (512 bytes plus
 * the subprotocol's length always do).
 */
int wschat__handshake_build_101(const wschat__handshake *hs, char *out,
                                size_t cap);

/*
 * Build an HTTP/1.1 response head with "Connection: close",
 * Content-Length: body_len (not for 1xx and 204, where RFC 7230 forbids
 * it), Content-Type if non-NULL, extra (complete
 * header lines or NULL), and for 426 "Sec-WebSocket-Version: 13", for 405
 * "Allow: GET" unless extra has an Allow line. Returns its length or
 * WSCHAT_EINVAL if it does not fit.
 */
int wschat__http_build_head(int status, const char *content_type,
                            const char *extra, size_t body_len, char *out,
                            size_t cap);

/* "Not Found" for 404 and so on; "Unknown" for a status it does not
 * know. */
const char *wschat__http_status_text(int status);

#endif
