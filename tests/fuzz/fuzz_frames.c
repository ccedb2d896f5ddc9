/*
 * fuzz_frames - the receive path of a connection: frame headers
 * (lib/proto/frame.c), unmasking and fragment reassembly
 * (lib/proto/fragment.c) and incremental UTF-8 validation
 * (lib/proto/utf8.c), fed one stream of bytes.
 *
 * Input: byte 0 picks the split (fuzz_util.h, low 3 bits) and the
 * reader's configuration (high bits: a small message limit so that 1009
 * is reached, which mask bit frames must carry, whether RSV1 is allowed).
 * The stream is read twice, in one feed and in the chunks of the split;
 * both readers must deliver the same messages and control frames in the
 * same order and end with the same verdict. Every delivery is checked
 * against what fragment.h promises (text is UTF-8, control payloads are
 * at most 125 bytes, messages respect the limit), close payloads go
 * through the close parser, and the first frame header is decoded on
 * every prefix and re-encoded.
 */
#include <string.h>

#include "core/alloc.h"
#include "fuzz_util.h"
#include "proto/fragment.h"

#define MAX_EVENTS 256

typedef struct event {
  int is_control;
  int opcode;
  size_t len;
  uint64_t hash;
} event;

typedef struct run {
  uint64_t max_message;
  size_t n_events; /* all deliveries, even past MAX_EVENTS */
  event events[MAX_EVENTS];
} run;

static void record(run *r, int is_control, int opcode, const uint8_t *data,
                   size_t len) {
  if (r->n_events < MAX_EVENTS) {
    event *e = &r->events[r->n_events];
    e->is_control = is_control;
    e->opcode = opcode;
    e->len = len;
    e->hash = fuzz_hash(data, len);
  }
  r->n_events++;
}

static int on_message(void *ctx, int opcode, uint8_t *data, size_t len) {
  run *r = ctx;
  FUZZ_CHECK(opcode == WSCHAT__OP_TEXT || opcode == WSCHAT__OP_BINARY);
  FUZZ_CHECK(len <= r->max_message);
  FUZZ_CHECK(len == 0 || data != NULL);
  if (opcode == WSCHAT__OP_TEXT)
    FUZZ_CHECK(wschat__utf8_valid(data, len));
  record(r, 0, opcode, data, len);
  return 0;
}

static int on_control(void *ctx, int opcode, uint8_t *data, size_t len) {
  run *r = ctx;
  FUZZ_CHECK(opcode == WSCHAT__OP_CLOSE || opcode == WSCHAT__OP_PING ||
             opcode == WSCHAT__OP_PONG);
  FUZZ_CHECK(len <= WSCHAT__MAX_CONTROL_PAYLOAD);
  if (opcode == WSCHAT__OP_CLOSE) {
    int code = 0;
    const char *reason = NULL;
    size_t reason_len = 0;
    int rc = wschat__close_parse(data, len, &code, &reason, &reason_len);
    if (rc == 0) {
      FUZZ_CHECK(len == 0 ? code == WSCHAT_CLOSE_NO_STATUS
                          : wschat__close_code_is_valid(code));
      FUZZ_CHECK(reason_len == (len == 0 ? 0 : len - 2));
      FUZZ_CHECK(reason_len == 0 || reason == (const char *)data + 2);
    } else {
      FUZZ_CHECK(rc == WSCHAT_EBADCLOSE || rc == WSCHAT_EBADUTF8);
    }
  }
  record(r, 1, opcode, data, len);
  return 0;
}

static const wschat__reader_cbs cbs = {on_message, on_control};

static void setup(wschat__reader *rd, run *r, uint8_t cfg) {
  static const uint64_t limits[] = {0, 16, 130, 4096};
  static const unsigned flags[] = {WSCHAT__FRAME_REQUIRE_MASK,
                                   WSCHAT__FRAME_REQUIRE_UNMASKED, 0,
                                   WSCHAT__FRAME_REQUIRE_MASK};
  memset(r, 0, sizeof(*r));
  r->max_message = limits[(cfg >> 3) & 3];
  wschat__reader_init(rd, r->max_message, &wschat__allocator_default);
  rd->header_flags = flags[(cfg >> 5) & 3];
  rd->rsv_allowed = (cfg & 0x80) ? 0x4 : 0;
}

static void check_error(int64_t rc, const wschat__reader *rd) {
  FUZZ_CHECK(rc == WSCHAT_EPROTO || rc == WSCHAT_EUNMASKED ||
             rc == WSCHAT_EBADUTF8 || rc == WSCHAT_ETOOBIG);
  FUZZ_CHECK(rd->error != NULL);
  FUZZ_CHECK(rd->close_code == (rc == WSCHAT_EBADUTF8  ? 1007
                                : rc == WSCHAT_ETOOBIG ? 1009
                                                       : 1002));
}

/* The first frame header: every shorter prefix asks for more, and
 * re-encoding what was decoded decodes to the same header. */
static void check_header(const uint8_t *p, size_t n) {
  wschat__frame_header h, h2;
  uint8_t out[WSCHAT__MAX_FRAME_HEADER];
  size_t k, m;
  int hlen = wschat__frame_decode_header(p, n, 0, 7, &h);
  if (hlen <= 0)
    return;
  FUZZ_CHECK(hlen >= 2 && hlen <= WSCHAT__MAX_FRAME_HEADER &&
             (size_t)hlen <= n);
  for (k = 0; k < (size_t)hlen; k++)
    FUZZ_CHECK(wschat__frame_decode_header(p, k, 0, 7, &h2) == 0);
  m = wschat__frame_encode_header(out, h.fin, h.rsv, h.opcode, h.len,
                                  h.masked ? h.mask : NULL);
  FUZZ_CHECK(m >= 2 && m <= (size_t)hlen);
  FUZZ_CHECK(wschat__frame_decode_header(out, m, 0, 7, &h2) == (int)m);
  FUZZ_CHECK(h2.fin == h.fin && h2.rsv == h.rsv && h2.opcode == h.opcode &&
             h2.masked == h.masked && h2.len == h.len);
  if (h.masked)
    FUZZ_CHECK(memcmp(h2.mask, h.mask, 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static run whole_run, split_run;
  wschat__reader whole, split;
  fuzz_split sp;
  uint8_t *buf;
  int64_t whole_rc, split_rc = 0;
  size_t off, n, k;

  if (!fuzz_split_init(&sp, data, size))
    return 0;
  check_header(sp.payload, sp.payload_len);

  /* The reader unmasks in place: each run gets its own copy. */
  buf = malloc(sp.payload_len + 1);
  FUZZ_CHECK(buf != NULL);

  setup(&whole, &whole_run, data[0]);
  memcpy(buf, sp.payload, sp.payload_len);
  whole_rc = wschat__reader_feed(&whole, buf, sp.payload_len, &cbs, &whole_run);
  if (whole_rc >= 0)
    FUZZ_CHECK((size_t)whole_rc == sp.payload_len);
  else
    check_error(whole_rc, &whole);

  setup(&split, &split_run, data[0]);
  memcpy(buf, sp.payload, sp.payload_len);
  while (fuzz_split_next(&sp, &off, &n)) {
    split_rc = wschat__reader_feed(&split, buf + off, n, &cbs, &split_run);
    if (split_rc < 0) {
      check_error(split_rc, &split);
      break;
    }
    FUZZ_CHECK((size_t)split_rc == n);
  }

  /* The same verdict and the same deliveries, whatever the split. */
  FUZZ_CHECK((whole_rc < 0) == (split_rc < 0));
  if (whole_rc < 0) {
    FUZZ_CHECK(whole_rc == split_rc);
    FUZZ_CHECK(whole.close_code == split.close_code);
  } else {
    FUZZ_CHECK(wschat__reader_buffered(&whole) ==
               wschat__reader_buffered(&split));
  }
  FUZZ_CHECK(whole_run.n_events == split_run.n_events);
  for (k = 0; k < whole_run.n_events && k < MAX_EVENTS; k++) {
    const event *a = &whole_run.events[k], *b = &split_run.events[k];
    FUZZ_CHECK(a->is_control == b->is_control && a->opcode == b->opcode &&
               a->len == b->len && a->hash == b->hash);
  }

  wschat__reader_free(&whole);
  wschat__reader_free(&split);
  free(buf);
  return 0;
}
