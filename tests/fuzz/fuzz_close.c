/*
 * fuzz_close - the close-frame payload parser and builder
 * (wschat__close_parse, wschat__close_build in lib/proto/frame.c).
 *
 * The whole input is a close payload. An accepted one must give a code a
 * peer may send (or 1005 for an empty payload) and a UTF-8 reason lying
 * within the payload; rebuilding it must give back the same code and
 * reason, cut at a UTF-8 boundary to 123 bytes when longer. A refused one
 * must be refused with the documented error.
 */
#include <string.h>

#include "fuzz_util.h"
#include "proto/frame.h"
#include "proto/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int code = -1, code2 = -1;
  const char *reason = NULL, *reason2 = NULL;
  size_t reason_len = 99999, reason2_len = 99999, n;
  uint8_t out[WSCHAT__MAX_CONTROL_PAYLOAD];
  int rc = wschat__close_parse(data, size, &code, &reason, &reason_len);

  if (rc != 0) {
    FUZZ_CHECK(rc == WSCHAT_EBADCLOSE || rc == WSCHAT_EBADUTF8);
    if (size == 1)
      FUZZ_CHECK(rc == WSCHAT_EBADCLOSE);
    if (size >= 2) {
      int c = data[0] << 8 | data[1];
      FUZZ_CHECK((rc == WSCHAT_EBADCLOSE) == !wschat__close_code_is_valid(c));
      if (rc == WSCHAT_EBADUTF8)
        FUZZ_CHECK(!wschat__utf8_valid(data + 2, size - 2));
    }
    return 0;
  }

  if (size == 0) {
    FUZZ_CHECK(code == WSCHAT_CLOSE_NO_STATUS && reason_len == 0);
    return 0;
  }
  FUZZ_CHECK(size >= 2);
  FUZZ_CHECK(code == (data[0] << 8 | data[1]));
  FUZZ_CHECK(wschat__close_code_is_valid(code));
  FUZZ_CHECK(code >= 1000 && code <= 4999);
  FUZZ_CHECK(code != 1004 && code != 1005 && code != 1006 && code != 1015);
  FUZZ_CHECK(reason == (const char *)data + 2 && reason_len == size - 2);
  FUZZ_CHECK(wschat__utf8_valid((const uint8_t *)reason, reason_len));

  /* Round trip through the builder. */
  n = wschat__close_build(out, code, reason, reason_len);
  FUZZ_CHECK(n >= 2 && n <= WSCHAT__MAX_CONTROL_PAYLOAD);
  FUZZ_CHECK(wschat__close_parse(out, n, &code2, &reason2, &reason2_len) == 0);
  FUZZ_CHECK(code2 == code);
  FUZZ_CHECK(reason2_len <= reason_len);
  FUZZ_CHECK(memcmp(reason2, reason, reason2_len) == 0);
  if (reason_len <= WSCHAT__MAX_CONTROL_PAYLOAD - 2)
    FUZZ_CHECK(reason2_len == reason_len);
  else /* cut at most 3 bytes before the limit, before a lead byte */
    FUZZ_CHECK(reason2_len + 3 >= WSCHAT__MAX_CONTROL_PAYLOAD - 2 &&
               ((uint8_t)reason[reason2_len] & 0xC0) != 0x80);
  return 0;
}
