/*
 * handshake.c - the server side of the RFC 6455 opening handshake, sans
 * I/O. The only user of http-parser in the library: nothing of its API
 * leaks out of this file, so that it can be replaced (llhttp) without
 * touching the callers.
 *
 * The request head may arrive in any number of reads whose buffers do not
 * outlive the call, so every string the caller can look up later (the
 * target and the header lines) is copied into an arena. A head is at most
 * max_header bytes, and each stored string plus its NUL is never longer
 * than the bytes it came from, so the arena never needs more than
 * max_header bytes (plus one). It starts small, inside the parser's one
 * allocation (HS_INLINE_ARENA bytes and HS_INLINE_HEADERS header slots,
 * which a usual handshake fits), and moves to a larger block of its own
 * only for a larger head: thousands of handshakes in flight then cost
 * about a kilobyte each, not max_header. Headers are stored as arena
 * offsets, and the two pointers into the arena (path and query) are moved
 * with it.
 */
#include "handshake.h"

#include <http_parser.h>
#include <limits.h>
/* SHA1_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but
 * they are the digest itself, with no provider lookup and no context
 * allocation: EVP_Digest() per handshake fetched the algorithm and
 * allocated a context each time, and its provider set-up touched about
 * 2 MB of libcrypto pages in every process (measured in the idle
 * benchmark's RSS). The digest is still OpenSSL's. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HS_GUID     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HS_GUID_LEN (sizeof(HS_GUID) - 1)

/* A valid Sec-WebSocket-Key is 24 characters; wschat__accept_key()
 * refuses anything longer than this. */
#define HS_MAX_KEY 256

/* The largest max_header accepted. Telling 414 from 431 may read up to
 * twice max_header bytes of head (see the feed loop), and http-parser
 * counts those against its own limit (80 KiB as Debian builds it), which
 * is process-wide: rather than change it under an embedder who also uses
 * http-parser, stay below it. */
#define HS_API_MAX_HEADER 32768u

/* Room for a typical request head in the parser itself. */
#define HS_INLINE_ARENA   704
#define HS_INLINE_HEADERS 16

typedef struct hs_header {
  uint32_t name;  /* arena offsets */
  uint32_t value; /* valid once the header is complete */
} hs_header;

/* What the parser reported last, so that the next piece of data can be
 * told apart: a continuation, or the start of a new string. http-parser
 * gives strings in arbitrarily many pieces. */
enum hs_in { HS_IN_NOTHING, HS_IN_URL, HS_IN_FIELD, HS_IN_VALUE, HS_IN_DONE };

struct wschat__handshake {
  wschat__allocator alloc;
  wschat__hs_config cfg;
  http_parser parser;
  wschat__hs_state state;
  int status;
  const char *error;
  const char *method;
  const char *path;
  const char *query;
  const char *key;
  const char *subprotocol;
  /* Where the feed in progress started, where the current parser call
   * ends, and (when a callback decided) the offset just past the byte
   * that decided; all relative to the feed's data. */
  const char *feed_base;
  size_t chunk_end;
  size_t stop;
  size_t head_len;      /* request-head bytes fed to the parser so far */
  size_t url_len;       /* target bytes seen, stored or only counted */
  bool is_over_limit;   /* the bytes being parsed lie past max_header */
  bool is_url_overflow; /* the limit was passed inside the target */
  unsigned since_eol;   /* bytes parsed since a CR or LF, up to 2 */
  enum hs_in in;
  unsigned n_headers;  /* header lines started */
  unsigned n_complete; /* header lines whose value is terminated */
  bool is_oom;         /* growing the arena or the header slots failed */
  hs_header *headers;  /* inline_headers, or a block of its own */
  unsigned headers_cap;
  char *arena; /* inline_arena, or a block of its own */
  size_t used;
  size_t cap;
  hs_header inline_headers[HS_INLINE_HEADERS];
  char inline_arena[HS_INLINE_ARENA];
};

/* ------------------------------------------------------------------------
 * Small string helpers. ASCII only, on purpose: HTTP tokens are ASCII and
 * the C library's case folding depends on the locale.
 * ---------------------------------------------------------------------- */

static int hs_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool hs_name_eq(const char *a, const char *b) {
  while (*a != '\0' &&
         hs_lower((unsigned char)*a) == hs_lower((unsigned char)*b)) {
    a++;
    b++;
  }
  return *a == *b;
}

static bool hs_token_ieq(const char *tok, size_t len, const char *want) {
  size_t i;
  if (strlen(want) != len)
    return false;
  for (i = 0; i < len; i++)
    if (hs_lower((unsigned char)tok[i]) != hs_lower((unsigned char)want[i]))
      return false;
  return true;
}

static bool hs_is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Next element of an RFC 7230 #list (comma-separated, OWS around each,
 * empty elements allowed and skipped). NULL at the end. */
static const char *hs_list_next(const char **cursor, size_t *len) {
  const char *s = *cursor;
  const char *end;
  while (hs_is_ows(*s) || *s == ',')
    s++;
  if (*s == '\0') {
    *cursor = s;
    return NULL;
  }
  end = s + strcspn(s, ",");
  *cursor = end;
  while (end > s && hs_is_ows(end[-1]))
    end--;
  *len = (size_t)(end - s);
  return s;
}

/* ------------------------------------------------------------------------
 * The arena and the parse callbacks
 * ---------------------------------------------------------------------- */

static wschat__hs_state hs_reject(wschat__handshake *hs, int status,
                                  const char *why) {
  hs->state = WSCHAT__HS_REJECT;
  hs->status = status;
  hs->error = why;
  return hs->state;
}

/* Reject from inside a data callback. `stop` is the feed offset just past
 * the deciding byte, so that *consumed is the same for every split of the
 * input. The nonzero return makes http-parser stop. */
static int hs_reject_at(wschat__handshake *hs, int status, const char *why,
                        size_t stop) {
  hs_reject(hs, status, why);
  hs->stop = stop;
  return 1;
}

/* Storing failed: the head is over the limit or, rarely, memory ran out
 * while growing the arena (503: the request was fine, the server could not
 * take it). */
static int hs_reject_over_limit(wschat__handshake *hs) {
  if (hs->is_oom)
    return hs_reject_at(hs, 503, "out of memory", hs->chunk_end);
  return hs_reject_at(hs, 431, "request head too large", hs->chunk_end);
}

/* Move a string pointer from the old arena to the new one, if it is in
 * the old one (path may also point to a literal). */
static const char *hs_rebase(const char *p, const char *from, size_t used,
                             char *to) {
  if (p >= from && p < from + used)
    return to + (p - from);
  return p;
}

static bool hs_arena_grow(wschat__handshake *hs, size_t need) {
  size_t limit = hs->cfg.max_header + 1;
  size_t cap = hs->cap * 2;
  char *arena;
  if (need > limit)
    return false;
  if (cap < need)
    cap = need;
  if (cap > limit)
    cap = limit;
  if ((arena = hs->alloc.realloc_fn(NULL, cap)) == NULL) {
    hs->is_oom = true;
    return false;
  }
  memcpy(arena, hs->arena, hs->used);
  hs->path = hs_rebase(hs->path, hs->arena, hs->used, arena);
  hs->query = hs_rebase(hs->query, hs->arena, hs->used, arena);
  if (hs->arena != hs->inline_arena)
    hs->alloc.free_fn(hs->arena);
  hs->arena = arena;
  hs->cap = cap;
  return true;
}

static bool hs_put(wschat__handshake *hs, const char *s, size_t n) {
  if (n > hs->cap - hs->used && !hs_arena_grow(hs, hs->used + n))
    return false;
  memcpy(hs->arena + hs->used, s, n);
  hs->used += n;
  return true;
}

/* One more header slot; false when memory ran out. */
static bool hs_headers_reserve(wschat__handshake *hs) {
  unsigned cap = hs->headers_cap * 2;
  hs_header *h;
  if (hs->n_headers < hs->headers_cap)
    return true;
  if (cap > hs->cfg.max_header_count)
    cap = hs->cfg.max_header_count;
  if ((h = hs->alloc.realloc_fn(NULL, cap * sizeof(*h))) == NULL) {
    hs->is_oom = true;
    return false;
  }
  memcpy(h, hs->headers, hs->n_headers * sizeof(*h));
  if (hs->headers != hs->inline_headers)
    hs->alloc.free_fn(hs->headers);
  hs->headers = h;
  hs->headers_cap = cap;
  return true;
}

/* Split the stored target into path and query. Absolute-form targets
 * ("http://host/chat?x", RFC 7230 section 5.3.2) must be accepted by a
 * server, and their path is what the endpoint is matched against. */
static void hs_split_target(wschat__handshake *hs) {
  char *path = hs->arena;
  char *scheme_end = strstr(path, "://");
  char *q;
  bool is_absolute = false;

  if (path[0] != '/' && scheme_end != NULL &&
      memchr(path, '/', (size_t)(scheme_end - path)) == NULL) {
    is_absolute = true;
    path = scheme_end + 3;
    path += strcspn(path, "/?#");
  }
  /* A fragment never belongs in a request; drop it rather than let it
   * leak into the path or the query. */
  q = path + strcspn(path, "?#");
  if (*q == '?') {
    *q = '\0';
    hs->query = q + 1;
    q[1 + strcspn(q + 1, "#")] = '\0';
  } else {
    *q = '\0';
  }
  hs->path = (is_absolute && path[0] == '\0') ? "/" : path;
}

/* Terminate the string in progress. Cannot run out of arena (see the top
 * of the file), but says so if it ever does. */
static bool hs_end_string(wschat__handshake *hs) {
  hs_header *h;
  switch (hs->in) {
  case HS_IN_URL:
    if (!hs_put(hs, "", 1))
      return false;
    hs_split_target(hs);
    break;
  case HS_IN_FIELD:
    h = &hs->headers[hs->n_headers - 1];
    if (!hs_put(hs, "", 1))
      return false;
    h->value = (uint32_t)hs->used;
    if (!hs_put(hs, "", 1))
      return false;
    hs->n_complete++;
    break;
  case HS_IN_VALUE:
    h = &hs->headers[hs->n_headers - 1];
    while (hs->used > h->value && hs_is_ows(hs->arena[hs->used - 1]))
      hs->used--;
    if (!hs_put(hs, "", 1))
      return false;
    hs->n_complete++;
    break;
  default:
    break;
  }
  return true;
}

static int hs_on_url(http_parser *p, const char *at, size_t len) {
  wschat__handshake *hs = p->data;
  if (len == 0)
    return 0;
  if (hs->in == HS_IN_NOTHING) {
    hs->method = http_method_str((enum http_method)p->method);
    hs->in = HS_IN_URL;
  }
  hs->url_len += len;
  /* Past the limit the target is only counted: the feed loop decides
   * between 414 and 431 from the count. */
  if (hs->is_over_limit)
    return 0;
  if (!hs_put(hs, at, len))
    return hs_reject_over_limit(hs);
  return 0;
}

static int hs_on_header_field(http_parser *p, const char *at, size_t len) {
  wschat__handshake *hs = p->data;
  if (len == 0)
    return 0;
  if (hs->is_over_limit)
    return hs_reject_over_limit(hs);
  if (hs->in != HS_IN_FIELD) {
    if (!hs_end_string(hs))
      return hs_reject_over_limit(hs);
    /* The first piece of a name starts at its first byte, which is where
     * the line over the count begins. */
    if (hs->n_headers >= hs->cfg.max_header_count)
      return hs_reject_at(hs, 431, "too many header lines",
                          (size_t)(at - hs->feed_base) + 1);
    if (!hs_headers_reserve(hs))
      return hs_reject_over_limit(hs);
    hs->headers[hs->n_headers].name = (uint32_t)hs->used;
    hs->headers[hs->n_headers].value = (uint32_t)hs->used;
    hs->n_headers++;
    hs->in = HS_IN_FIELD;
  }
  if (!hs_put(hs, at, len))
    return hs_reject_over_limit(hs);
  return 0;
}

static int hs_on_header_value(http_parser *p, const char *at, size_t len) {
  wschat__handshake *hs = p->data;
  hs_header *h;
  if (hs->is_over_limit)
    return hs_reject_over_limit(hs);
  if (hs->in != HS_IN_FIELD && hs->in != HS_IN_VALUE)
    return 0;
  h = &hs->headers[hs->n_headers - 1];
  if (hs->in == HS_IN_FIELD) {
    if (!hs_put(hs, "", 1))
      return hs_reject_over_limit(hs);
    h->value = (uint32_t)hs->used;
    hs->in = HS_IN_VALUE;
  }
  /* http-parser already skips leading OWS; doing it here too keeps the
   * values right should the parser be swapped. */
  while (hs->used == h->value && len > 0 && hs_is_ows(*at)) {
    at++;
    len--;
  }
  if (!hs_put(hs, at, len))
    return hs_reject_over_limit(hs);
  return 0;
}

/* ------------------------------------------------------------------------
 * Validation (RFC 6455 section 4.2.1)
 * ---------------------------------------------------------------------- */

static bool hs_has_token(const wschat__handshake *hs, const char *name,
                         const char *token) {
  unsigned i;
  for (i = 0; i < hs->n_complete; i++) {
    const char *cursor = hs->arena + hs->headers[i].value;
    const char *tok;
    size_t len;
    if (!hs_name_eq(hs->arena + hs->headers[i].name, name))
      continue;
    while ((tok = hs_list_next(&cursor, &len)) != NULL)
      if (hs_token_ieq(tok, len, token))
        return true;
  }
  return false;
}

/* The client lists its subprotocols in order of preference (RFC 6455
 * section 4.1), so its order decides, not the server's. */
static const char *hs_pick_subprotocol(const wschat__handshake *hs) {
  unsigned i;
  size_t j;
  if (hs->cfg.subprotocols == NULL)
    return NULL;
  for (i = 0; i < hs->n_complete; i++) {
    const char *cursor = hs->arena + hs->headers[i].value;
    const char *tok;
    size_t len;
    if (!hs_name_eq(hs->arena + hs->headers[i].name, "Sec-WebSocket-Protocol"))
      continue;
    while ((tok = hs_list_next(&cursor, &len)) != NULL) {
      for (j = 0; j < hs->cfg.n_subprotocols; j++) {
        const char *mine = hs->cfg.subprotocols[j];
        if (mine != NULL && strlen(mine) == len && memcmp(mine, tok, len) == 0)
          return mine;
      }
    }
  }
  return NULL;
}

static bool hs_is_base64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* 16 bytes in base64 are 22 significant characters and "==". */
static bool hs_is_valid_key(const char *key) {
  size_t i;
  if (strlen(key) != 24)
    return false;
  for (i = 0; i < 22; i++)
    if (!hs_is_base64(key[i]))
      return false;
  return key[22] == '=' && key[23] == '=';
}

/* Header lines with this name. RFC 9112 allows one Host, RFC 6455 one
 * Sec-WebSocket-Key and one Sec-WebSocket-Version: a second one leaves it
 * unclear which the client meant, so it is a bad request. */
static unsigned hs_count_header(const wschat__handshake *hs, const char *name) {
  unsigned i, n = 0;
  for (i = 0; i < hs->n_complete; i++)
    n += hs_name_eq(hs->arena + hs->headers[i].name, name);
  return n;
}

static void hs_decide(wschat__handshake *hs) {
  const http_parser *p = &hs->parser;
  const char *version;

  if (!hs_has_token(hs, "Upgrade", "websocket")) {
    hs->state = WSCHAT__HS_HTTP;
    return;
  }
  if (p->method != HTTP_GET) {
    hs_reject(hs, 405, "WebSocket upgrade with a method other than GET");
    return;
  }
  if (p->http_major < 1 || (p->http_major == 1 && p->http_minor < 1)) {
    hs_reject(hs, 400, "WebSocket upgrade needs HTTP/1.1");
    return;
  }
  if (hs->cfg.path != NULL && strcmp(hs->path, hs->cfg.path) != 0) {
    hs_reject(hs, 404, "no WebSocket endpoint at this path");
    return;
  }
  if (wschat__handshake_header(hs, "Host") == NULL) {
    hs_reject(hs, 400, "missing Host header");
    return;
  }
  if (hs_count_header(hs, "Host") > 1) {
    hs_reject(hs, 400, "more than one Host header");
    return;
  }
  if (!hs_has_token(hs, "Connection", "upgrade")) {
    hs_reject(hs, 400, "Connection header without the upgrade token");
    return;
  }
  version = wschat__handshake_header(hs, "Sec-WebSocket-Version");
  if (version == NULL) {
    hs_reject(hs, 426, "missing Sec-WebSocket-Version header");
    return;
  }
  if (hs_count_header(hs, "Sec-WebSocket-Version") > 1) {
    hs_reject(hs, 400, "more than one Sec-WebSocket-Version header");
    return;
  }
  if (strcmp(version, "13") != 0) {
    hs_reject(hs, 426, "unsupported Sec-WebSocket-Version");
    return;
  }
  hs->key = wschat__handshake_header(hs, "Sec-WebSocket-Key");
  if (hs->key == NULL) {
    hs_reject(hs, 400, "missing Sec-WebSocket-Key header");
    return;
  }
  if (hs_count_header(hs, "Sec-WebSocket-Key") > 1) {
    hs_reject(hs, 400, "more than one Sec-WebSocket-Key header");
    return;
  }
  if (!hs_is_valid_key(hs->key)) {
    hs_reject(hs, 400, "Sec-WebSocket-Key is not 16 bytes of base64");
    return;
  }
  hs->subprotocol = hs_pick_subprotocol(hs);
  hs->state = WSCHAT__HS_UPGRADE;
}

static int hs_on_headers_complete(http_parser *p) {
  wschat__handshake *hs = p->data;
  if (hs->is_over_limit)
    hs_reject(hs, 431, "request head too large");
  else if (!hs_end_string(hs))
    hs_reject(hs, 431, "request head too large");
  else
    hs_decide(hs);
  hs->in = HS_IN_DONE;
  /* 2 = no body, and the connection leaves HTTP: http-parser then stops
   * right after the head even when it would not have flagged an upgrade
   * (no "Connection: upgrade"), instead of reading what follows as a body
   * or as the next request. */
  return 2;
}

static const http_parser_settings hs_settings = {
    .on_url = hs_on_url,
    .on_header_field = hs_on_header_field,
    .on_header_value = hs_on_header_value,
    .on_headers_complete = hs_on_headers_complete,
};

/* ------------------------------------------------------------------------
 * Life cycle and feeding
 * ---------------------------------------------------------------------- */

/* Give back the blocks the arena and the header slots grew into. */
static void hs_release_blocks(wschat__handshake *hs) {
  if (hs->arena != hs->inline_arena)
    hs->alloc.free_fn(hs->arena);
  if (hs->headers != hs->inline_headers)
    hs->alloc.free_fn(hs->headers);
}

static bool hs_config_ok(const wschat__hs_config *cfg) {
  return cfg != NULL && cfg->max_header <= HS_API_MAX_HEADER &&
         cfg->max_header_count <= UINT32_MAX / 2;
}

/* A fresh parse; the allocator is kept. */
static void hs_init(wschat__handshake *hs, const wschat__hs_config *cfg) {
  wschat__allocator alloc = hs->alloc;
  memset(hs, 0, offsetof(wschat__handshake, inline_headers));
  hs->alloc = alloc;
  hs->cfg = *cfg;
  if (hs->cfg.subprotocols == NULL)
    hs->cfg.n_subprotocols = 0;
  http_parser_init(&hs->parser, HTTP_REQUEST);
  hs->parser.data = hs;
  hs->state = WSCHAT__HS_MORE;
  hs->since_eol = 2;
  hs->method = "";
  hs->path = "";
  hs->query = "";
  hs->headers = hs->inline_headers;
  hs->headers_cap = HS_INLINE_HEADERS;
  if (hs->headers_cap > cfg->max_header_count)
    hs->headers_cap = cfg->max_header_count;
  hs->arena = hs->inline_arena;
  hs->cap = HS_INLINE_ARENA;
  if (hs->cap > cfg->max_header + 1)
    hs->cap = cfg->max_header + 1;
}

wschat__handshake *wschat__handshake_new(const wschat__hs_config *cfg,
                                         const wschat__allocator *alloc) {
  wschat__handshake *hs;
  if (!hs_config_ok(cfg) || alloc == NULL || alloc->realloc_fn == NULL ||
      alloc->free_fn == NULL)
    return NULL;
  hs = alloc->realloc_fn(NULL, sizeof(*hs));
  if (hs == NULL)
    return NULL;
  hs->alloc = *alloc;
  hs_init(hs, cfg);
  return hs;
}

int wschat__handshake_reset(wschat__handshake *hs,
                            const wschat__hs_config *cfg) {
  if (hs == NULL || !hs_config_ok(cfg))
    return WSCHAT_EINVAL;
  hs_release_blocks(hs);
  hs_init(hs, cfg);
  return 0;
}

void wschat__handshake_free(wschat__handshake *hs) {
  if (hs != NULL) {
    hs_release_blocks(hs);
    hs->alloc.free_fn(hs);
  }
}

/* After a parser call that ran over the limit without a callback
 * deciding: one more byte of target keeps the question open (is the
 * target itself over max_header?); anything else settles it as 431. */
static void hs_judge_over_limit(wschat__handshake *hs, size_t url_before) {
  if (hs->url_len == url_before)
    hs_reject(hs, 431, "request head too large");
  else if (hs->url_len > hs->cfg.max_header)
    hs_reject(hs, 414, "request target too long");
  else
    hs->is_url_overflow = true;
}

/*
 * http-parser reports a header name only where the name or the chunk
 * ends, so within one chunk it could read past the first byte of the line
 * that breaks max_header_count (and hit a syntax error further on) before
 * we hear of that line. A name can only start within two bytes after a CR
 * or LF (a lenient build takes any byte after CR as the LF), so chunks end
 * at each CR or LF and go one byte at a time for the two bytes after it:
 * every name is then reported on its first byte, whatever the split.
 */
static size_t hs_cut_near_line_start(const wschat__handshake *hs, const char *p,
                                     size_t n) {
  size_t i;
  if (hs->since_eol < 2)
    return 1;
  for (i = 0; i < n; i++)
    if (p[i] == '\r' || p[i] == '\n')
      return i + 1;
  return n;
}

static void hs_parser_error(wschat__handshake *hs) {
  enum http_errno err = HTTP_PARSER_ERRNO(&hs->parser);
  if (err == HPE_HEADER_OVERFLOW && hs->is_url_overflow)
    hs_reject(hs, 414, "request target too long");
  else if (err == HPE_HEADER_OVERFLOW)
    hs_reject(hs, 431, "request head too large");
  else
    hs_reject(hs, 400, http_errno_description(err));
}

wschat__hs_state wschat__handshake_feed(wschat__handshake *hs, const char *data,
                                        size_t len, size_t *consumed) {
  size_t off = 0;

  if (consumed != NULL)
    *consumed = 0;
  if (hs == NULL || hs->state != WSCHAT__HS_MORE)
    return hs != NULL ? hs->state : WSCHAT__HS_REJECT;
  hs->feed_base = data;
  while (off < len && hs->state == WSCHAT__HS_MORE) {
    size_t url_before = hs->url_len;
    size_t room, n, got;

    /* Cut the input at the limit so that the byte that passes it is parsed
     * on its own, whatever the split: its callbacks then tell whether it
     * is still target (maybe 414) or anything else (431). */
    hs->is_over_limit =
        hs->is_url_overflow || hs->head_len >= hs->cfg.max_header;
    room = hs->is_over_limit ? 1 : hs->cfg.max_header - hs->head_len;
    n = len - off < room ? len - off : room;
    n = hs_cut_near_line_start(hs, data + off, n);
    hs->chunk_end = off + n;
    hs->stop = 0;
    got = http_parser_execute(&hs->parser, &hs_settings, data + off, n);

    if (hs->state != WSCHAT__HS_MORE) {
      off = hs->stop != 0 ? hs->stop : off + got;
      break;
    }
    if (HTTP_PARSER_ERRNO(&hs->parser) != HPE_OK) {
      hs_parser_error(hs);
      /* http-parser stops on the offending byte; count it as read. */
      off += got < n ? got + 1 : got;
      break;
    }
    off += got;
    hs->head_len += got;
    if (data[off - 1] == '\r' || data[off - 1] == '\n')
      hs->since_eol = 0;
    else if (hs->since_eol < 2)
      hs->since_eol++;
    if (hs->is_over_limit)
      hs_judge_over_limit(hs, url_before);
  }
  /* A head cut short shows nothing of itself: what the parser had
   * reported by then depends on how the input was split. */
  if (hs->state == WSCHAT__HS_REJECT && hs->in != HS_IN_DONE) {
    hs->method = "";
    hs->path = "";
    hs->query = "";
    hs->n_complete = 0;
  }
  if (consumed != NULL)
    *consumed = off;
  return hs->state;
}

/* ------------------------------------------------------------------------
 * Accessors
 * ---------------------------------------------------------------------- */

wschat__hs_state wschat__handshake_state(const wschat__handshake *hs) {
  return hs->state;
}

int wschat__handshake_status(const wschat__handshake *hs) {
  return hs->state == WSCHAT__HS_REJECT ? hs->status : 0;
}

const char *wschat__handshake_error(const wschat__handshake *hs) {
  return hs->state == WSCHAT__HS_REJECT ? hs->error : "";
}

const char *wschat__handshake_method(const wschat__handshake *hs) {
  return hs->method;
}

const char *wschat__handshake_path(const wschat__handshake *hs) {
  return hs->path;
}

const char *wschat__handshake_query(const wschat__handshake *hs) {
  return hs->query;
}

const char *wschat__handshake_header(const wschat__handshake *hs,
                                     const char *name) {
  unsigned i;
  if (name == NULL)
    return NULL;
  for (i = 0; i < hs->n_complete; i++)
    if (hs_name_eq(hs->arena + hs->headers[i].name, name))
      return hs->arena + hs->headers[i].value;
  return NULL;
}

const char *wschat__handshake_subprotocol(const wschat__handshake *hs) {
  return hs->state == WSCHAT__HS_UPGRADE ? hs->subprotocol : NULL;
}

/* ------------------------------------------------------------------------
 * Replies
 * ---------------------------------------------------------------------- */

int wschat__accept_key(const char *key, size_t key_len, char out[29]) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA_CTX ctx;

  if (key == NULL || out == NULL || key_len > HS_MAX_KEY)
    return WSCHAT_EINVAL;
  if (SHA1_Init(&ctx) != 1 || SHA1_Update(&ctx, key, key_len) != 1 ||
      SHA1_Update(&ctx, HS_GUID, HS_GUID_LEN) != 1 || SHA1_Final(md, &ctx) != 1)
    return WSCHAT_EINVAL;
  /* 20 bytes encode to 28 characters, and EVP_EncodeBlock adds the NUL. */
  EVP_EncodeBlock((unsigned char *)out, md, 20);
  return 0;
}

/* An output buffer that records overflow instead of truncating quietly;
 * it keeps the text NUL-terminated, so cap must leave room for one. */
typedef struct hs_out {
  char *buf;
  size_t cap;
  size_t len;
  bool is_full;
} hs_out;

static void hs_out_put(hs_out *o, const char *s, size_t n) {
  if (o->is_full || o->cap == 0 || n >= o->cap - o->len) {
    o->is_full = true;
    return;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void hs_out_str(hs_out *o, const char *s) {
  hs_out_put(o, s, strlen(s));
}

static void hs_out_num(hs_out *o, unsigned long long v) {
  char num[24];
  int n = snprintf(num, sizeof(num), "%llu", v);
  hs_out_put(o, num, (size_t)n);
}

static int hs_out_end(const hs_out *o) {
  if (o->is_full || o->len > (size_t)INT_MAX)
    return WSCHAT_EINVAL;
  return (int)o->len;
}

int wschat__handshake_build_101(const wschat__handshake *hs, char *out,
                                size_t cap) {
  hs_out o = {out, cap, 0, false};
  char accept[29];

  if (hs == NULL || out == NULL || hs->state != WSCHAT__HS_UPGRADE ||
      wschat__accept_key(hs->key, strlen(hs->key), accept) != 0)
    return WSCHAT_EINVAL;
  /* No Sec-WebSocket-Extensions: no extension is ever accepted here, and
   * RFC 6455 section 9.1 lets a server ignore every offer. */
  hs_out_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: ");
  hs_out_str(&o, accept);
  hs_out_str(&o, "\r\n");
  if (hs->subprotocol != NULL) {
    hs_out_str(&o, "Sec-WebSocket-Protocol: ");
    hs_out_str(&o, hs->subprotocol);
    hs_out_str(&o, "\r\n");
  }
  hs_out_str(&o, "\r\n");
  return hs_out_end(&o);
}

/* Whether the header lines in `lines` (or NULL) include one starting with
 * `name` (case-insensitive), so a caller's own line replaces a default. */
static bool hs_has_header_line(const char *lines, const char *name) {
  size_t n = strlen(name);
  const char *p = lines;
  while (p != NULL && *p != '\0') {
    if (strncasecmp(p, name, n) == 0)
      return true;
    p = strstr(p, "\r\n");
    if (p != NULL)
      p += 2;
  }
  return false;
}

int wschat__http_build_head(int status, const char *content_type,
                            const char *extra, size_t body_len, char *out,
                            size_t cap) {
  hs_out o = {out, cap, 0, false};

  if (out == NULL || status < 100 || status > 599)
    return WSCHAT_EINVAL;
  hs_out_str(&o, "HTTP/1.1 ");
  hs_out_num(&o, (unsigned long long)status);
  hs_out_str(&o, " ");
  hs_out_str(&o, wschat__http_status_text(status));
  hs_out_str(&o, "\r\n");
  if (content_type != NULL) {
    hs_out_str(&o, "Content-Type: ");
    hs_out_str(&o, content_type);
    hs_out_str(&o, "\r\n");
  }
  /* RFC 7230 section 3.3.2: never a Content-Length in a 1xx or 204. */
  if (status >= 200 && status != 204) {
    hs_out_str(&o, "Content-Length: ");
    hs_out_num(&o, (unsigned long long)body_len);
    hs_out_str(&o, "\r\n");
  }
  if (status == 405 && !hs_has_header_line(extra, "Allow:"))
    hs_out_str(&o, "Allow: GET\r\n");
  /* RFC 6455 section 4.4: tell the client which version we speak. */
  if (status == 426)
    hs_out_str(&o, "Sec-WebSocket-Version: 13\r\n");
  hs_out_str(&o, "Connection: close\r\n");
  if (extra != NULL)
    hs_out_str(&o, extra);
  hs_out_str(&o, "\r\n");
  return hs_out_end(&o);
}

const char *wschat__http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}
