/*
 * fuzz_handshake - the opening-handshake parser (lib/proto/handshake.c).
 *
 * Input: byte 0 picks the split (fuzz_util.h, low 3 bits) and the parser's
 * configuration (high bits: max_header, max_header_count, whether a path
 * is required). The payload is parsed twice, once in a single feed and
 * once in the chunks the split gives, and both parsers must agree on
 * everything handshake.h promises is independent of the split: the state,
 * the status and reason, how many bytes belong to the head, the request
 * line and headers, and the selected subprotocol. The replies built from
 * the result must fit the sizes handshake.h gives. Then the first parser
 * is reset, as a server does to reuse it, and must parse the chunks as
 * the fresh one did.
 */
#define _GNU_SOURCE /* memmem */
#include <string.h>

#include "core/alloc.h"
#include "fuzz_util.h"
#include "proto/handshake.h"

static const char *const subprotocols[] = {"wschat.v1.json", "chat",
                                           "superchat"};
static const char *const header_names[] = {"Host",
                                           "Upgrade",
                                           "Connection",
                                           "Sec-WebSocket-Key",
                                           "Sec-WebSocket-Version",
                                           "Sec-WebSocket-Protocol",
                                           "Origin",
                                           "X-Missing"};

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static void check_same(const wschat__handshake *a, const wschat__handshake *b) {
  size_t i;
  FUZZ_CHECK(wschat__handshake_state(a) == wschat__handshake_state(b));
  FUZZ_CHECK(wschat__handshake_status(a) == wschat__handshake_status(b));
  FUZZ_CHECK(str_eq(wschat__handshake_error(a), wschat__handshake_error(b)));
  FUZZ_CHECK(str_eq(wschat__handshake_method(a), wschat__handshake_method(b)));
  FUZZ_CHECK(str_eq(wschat__handshake_path(a), wschat__handshake_path(b)));
  FUZZ_CHECK(str_eq(wschat__handshake_query(a), wschat__handshake_query(b)));
  for (i = 0; i < sizeof(header_names) / sizeof(header_names[0]); i++)
    FUZZ_CHECK(str_eq(wschat__handshake_header(a, header_names[i]),
                      wschat__handshake_header(b, header_names[i])));
  /* Both point into the same configured list, or are both NULL. */
  FUZZ_CHECK(wschat__handshake_subprotocol(a) ==
             wschat__handshake_subprotocol(b));
}

static void check_result(const wschat__handshake *hs, size_t max_header) {
  char out[1024];
  int n;
  wschat__hs_state st = wschat__handshake_state(hs);
  FUZZ_CHECK(wschat__handshake_method(hs) != NULL);
  FUZZ_CHECK(wschat__handshake_path(hs) != NULL);
  FUZZ_CHECK(wschat__handshake_query(hs) != NULL);
  FUZZ_CHECK(strlen(wschat__handshake_path(hs)) <= max_header);
  if (st == WSCHAT__HS_UPGRADE) {
    const char *sub = wschat__handshake_subprotocol(hs);
    size_t cap = 512 + (sub != NULL ? strlen(sub) : 0);
    const char *key = wschat__handshake_header(hs, "Sec-WebSocket-Key");
    char accept[29];
    FUZZ_CHECK(strcmp(wschat__handshake_method(hs), "GET") == 0);
    FUZZ_CHECK(key != NULL);
    FUZZ_CHECK(wschat__accept_key(key, strlen(key), accept) == 0);
    FUZZ_CHECK(strlen(accept) == 28);
    n = wschat__handshake_build_101(hs, out, cap);
    FUZZ_CHECK(n > 0 && (size_t)n <= cap);
    FUZZ_CHECK(memcmp(out, "HTTP/1.1 101 ", 13) == 0);
    FUZZ_CHECK(memmem(out, (size_t)n, accept, 28) != NULL);
  } else if (st == WSCHAT__HS_REJECT) {
    int status = wschat__handshake_status(hs);
    FUZZ_CHECK(status == 400 || status == 404 || status == 405 ||
               status == 414 || status == 426 || status == 431);
    FUZZ_CHECK(strcmp(wschat__http_status_text(status), "Unknown") != 0);
    FUZZ_CHECK(wschat__handshake_error(hs) != NULL &&
               wschat__handshake_error(hs)[0] != '\0');
    n = wschat__http_build_head(status, "text/plain", NULL, 0, out,
                                sizeof(out));
    FUZZ_CHECK(n > 0 && (size_t)n <= sizeof(out));
  } else {
    FUZZ_CHECK(wschat__handshake_status(hs) == 0);
    FUZZ_CHECK(wschat__handshake_subprotocol(hs) == NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t max_headers[] = {64, 256, 1024, 8192};
  static const unsigned max_counts[] = {2, 4, 16, 64};
  wschat__hs_config cfg;
  wschat__handshake *whole, *split;
  fuzz_split sp;
  size_t whole_used, split_used = 0, reused_used, off, n;
  const char *payload;

  if (!fuzz_split_init(&sp, data, size))
    return 0;
  payload = (const char *)sp.payload;
  memset(&cfg, 0, sizeof(cfg));
  cfg.max_header = max_headers[(data[0] >> 3) & 3];
  cfg.max_header_count = max_counts[(data[0] >> 5) & 3];
  cfg.path = (data[0] & 0x80) ? NULL : "/chat";
  cfg.subprotocols = subprotocols;
  cfg.n_subprotocols = sizeof(subprotocols) / sizeof(subprotocols[0]);

  whole = wschat__handshake_new(&cfg, &wschat__allocator_default);
  split = wschat__handshake_new(&cfg, &wschat__allocator_default);
  FUZZ_CHECK(whole != NULL && split != NULL);

  wschat__handshake_feed(whole, payload, sp.payload_len, &whole_used);
  FUZZ_CHECK(whole_used <= sp.payload_len);
  if (wschat__handshake_state(whole) == WSCHAT__HS_MORE)
    FUZZ_CHECK(whole_used == sp.payload_len);

  while (fuzz_split_next(&sp, &off, &n)) {
    size_t used = 12345;
    wschat__hs_state before = wschat__handshake_state(split);
    wschat__hs_state st =
        wschat__handshake_feed(split, payload + off, n, &used);
    FUZZ_CHECK(used <= n);
    FUZZ_CHECK(st == wschat__handshake_state(split));
    if (before != WSCHAT__HS_MORE) {
      /* Once decided, a feed changes nothing and reads nothing. */
      FUZZ_CHECK(st == before && used == 0);
      continue;
    }
    split_used += used;
    if (st == WSCHAT__HS_MORE)
      FUZZ_CHECK(used == n);
  }

  check_same(whole, split);
  FUZZ_CHECK(whole_used == split_used);
  check_result(whole, cfg.max_header);

  /* A parser reset for the next connection parses as a new one does,
   * whatever the last request left behind (a grown arena, say). */
  FUZZ_CHECK(wschat__handshake_reset(whole, &cfg) == 0);
  FUZZ_CHECK(wschat__handshake_state(whole) == WSCHAT__HS_MORE);
  fuzz_split_init(&sp, data, size);
  reused_used = 0;
  while (fuzz_split_next(&sp, &off, &n)) {
    size_t used;
    if (wschat__handshake_state(whole) != WSCHAT__HS_MORE)
      break;
    wschat__handshake_feed(whole, payload + off, n, &used);
    reused_used += used;
  }
  check_same(whole, split);
  FUZZ_CHECK(reused_used == split_used);

  wschat__handshake_free(whole);
  wschat__handshake_free(split);
  return 0;
}
