/*
 * Tests for cmd/wschat-bench/wire.c, the load generator's parsing of what
 * the server sends: the payload header it checks every delivery against,
 * the JSON walk and the fast way to a message event's text (which must
 * find the same text as the walk, or step aside), the HTTP head's end and
 * the base64 of its upgrade key. The file is compiled in here whole: it
 * depends on nothing else of the generator.
 */
#include "../../../cmd/wschat-bench/wire.c"

#include <criterion/criterion.h>
#include <stdio.h>

static void assert_slice(const char *p, size_t n, const char *want) {
  cr_assert_eq(n, strlen(want), "got %zu bytes \"%.*s\", want \"%s\"", n,
               (int)n, p, want);
  cr_assert_eq(memcmp(p, want, n), 0, "got \"%.*s\", want \"%s\"", (int)n, p,
               want);
}

/* ------------------------------------------------------------------------
 * Payload header
 * ---------------------------------------------------------------------- */

Test(wire, payload_header_round_trips) {
  static const uint64_t vals[] = {
      0, 9, 10, 99, 100, 12345678901234567ULL, UINT64_MAX};
  char buf[BENCH_PAYLOAD_HEADER_MAX + 8];
  unsigned i, j;
  for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    for (j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
      uint64_t seq, ts;
      uint32_t sender;
      size_t n = bench_payload_header(buf, vals[i], 4000000000u, vals[j]);
      char want[80];
      snprintf(want, sizeof(want),
               "%llu:4000000000:%llu:", (unsigned long long)vals[i],
               (unsigned long long)vals[j]);
      cr_assert_leq(n, BENCH_PAYLOAD_HEADER_MAX);
      assert_slice(buf, n, want);
      /* Parsed back, with payload bytes after it. */
      memcpy(buf + n, "xyz", 3);
      cr_assert_eq(bench_payload_parse(buf, n + 3, &seq, &sender, &ts), n);
      cr_assert_eq(seq, vals[i]);
      cr_assert_eq(sender, 4000000000u);
      cr_assert_eq(ts, vals[j]);
    }
  }
}

Test(wire, payload_header_refuses_what_is_not_one) {
  static const char *bad[] = {
      "",                           /* nothing */
      "12:3:",                      /* two fields */
      ":1:2:",                      /* an empty field */
      "1:2:3",                      /* the last colon missing */
      "1a:2:3:",                    /* not a digit */
      "1:4294967296:3:",            /* a sender over 32 bits */
      "18446744073709551616:1:2:",  /* 2^64 */
      "99999999999999999999:1:2:",  /* 20 digits, over 64 bits */
      "100000000000000000000:1:2:", /* 21 digits */
  };
  unsigned i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t seq, ts;
    uint32_t sender;
    cr_assert_eq(
        bench_payload_parse(bad[i], strlen(bad[i]), &seq, &sender, &ts), 0,
        "accepted \"%s\"", bad[i]);
  }
}

/* ------------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------- */

Test(wire, json_walk_finds_top_level_strings_only) {
  const char *v;
  size_t n;
  const char *doc =
      "{ \"a\" : [1, {\"text\": \"nested\"}], \"b\": {\"x\": \"}\"},"
      " \"n\": -1.5e3, \"t\":true, \"text\" : \"say \\\"hi\\\"\" }";
  cr_assert_eq(bench_json_string(doc, strlen(doc), "text", &v, &n), 1);
  assert_slice(v, n, "say \\\"hi\\\"");
  /* A key that is there with a value that is not a string. */
  cr_assert_eq(bench_json_string(doc, strlen(doc), "n", &v, &n), 0);
  /* A key that is not there (only nested). */
  cr_assert_eq(bench_json_string(doc, strlen(doc), "x", &v, &n), 0);
  /* Not an object, cut short, or no colon. */
  cr_assert_eq(bench_json_string("[1]", 3, "a", &v, &n), -1);
  cr_assert_eq(bench_json_string("{\"a\":\"b", 7, "a", &v, &n), -1);
  cr_assert_eq(bench_json_string("{\"a\" \"b\"}", 9, "a", &v, &n), -1);
  cr_assert_eq(bench_json_string("{}", 2, "a", &v, &n), 0);
}

/* The events as wschatd writes them (jansson, JSON_COMPACT, keys in the
 * order they were packed). */
Test(wire, message_text_fast_way_agrees_with_the_walk) {
  static const char *docs[] = {
      "{\"type\":\"message\",\"id\":7,\"room\":\"lobby\",\"from\":\"user1\","
      "\"text\":\"3:0:1234:padding\",\"ts\":1764150000000}",
      /* Names that hold the key's letters, escaped. */
      "{\"type\":\"message\",\"id\":8,\"room\":\"\\\"text\\\":\\\"\","
      "\"from\":\"context\",\"text\":\"real\",\"ts\":1}",
      /* A text that ends in an escaped backslash, and one with quotes. */
      "{\"type\":\"message\",\"id\":9,\"room\":\"r\",\"from\":\"f\","
      "\"text\":\"a\\\\\",\"ts\":1}",
      "{\"type\":\"message\",\"id\":9,\"room\":\"r\",\"from\":\"f\","
      "\"text\":\"\\\"q\\\" \\\"text\\\":\\\"\",\"ts\":1}",
      "{\"type\":\"message\",\"id\":1,\"room\":\"r\",\"from\":\"f\","
      "\"text\":\"\",\"ts\":1}",
  };
  unsigned i;
  for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    const char *a, *b;
    size_t na, nb;
    cr_assert_eq(bench_json_message_text(docs[i], strlen(docs[i]), &a, &na), 1,
                 "fast way missed %s", docs[i]);
    cr_assert_eq(bench_json_string(docs[i], strlen(docs[i]), "text", &b, &nb),
                 1);
    cr_assert_eq(a, b, "different text in %s", docs[i]);
    cr_assert_eq(na, nb, "different length in %s", docs[i]);
  }
}

Test(wire, message_text_fast_way_steps_aside) {
  static const char *docs[] = {
      /* Other events, another key order, spaces: the walk's to do. */
      "{\"type\":\"ack\",\"ref\":\"1\",\"id\":3}",
      "{\"type\":\"whisper\",\"from\":\"a\",\"to\":\"b\",\"text\":\"x\"}",
      "{\"id\":7,\"type\":\"message\",\"text\":\"x\"}",
      "{\"type\": \"message\", \"text\": \"x\"}",
      /* A message without a text, with a text that is not a string, and
       * one cut off inside its text. */
      "{\"type\":\"message\",\"id\":7,\"room\":\"r\"}",
      "{\"type\":\"message\",\"id\":7,\"text\":7}",
      "{\"type\":\"message\",\"id\":7,\"text\":\"abc",
      "{\"type\":\"message\"",
  };
  unsigned i;
  for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    const char *v = NULL;
    size_t n = 0;
    cr_assert_eq(bench_json_message_text(docs[i], strlen(docs[i]), &v, &n), 0,
                 "fast way took %s", docs[i]);
  }
}

/* ------------------------------------------------------------------------
 * Handshake
 * ---------------------------------------------------------------------- */

Test(wire, base64_of_the_rfc_6455_sample_key) {
  char out[25];
  bench_base64_16((const uint8_t *)"the sample nonce", out);
  cr_assert_str_eq(out, "dGhlIHNhbXBsZSBub25jZQ==");
}

Test(wire, http_head_ends_at_the_blank_line) {
  const char *h = "HTTP/1.1 101 Switching Protocols\r\nA: b\r\n\r\nframe";
  cr_assert_eq(bench_http_head_end(h, strlen(h)), strlen(h) - 5);
  cr_assert_eq(bench_http_head_end(h, strlen(h) - 7), 0);
  cr_assert_eq(bench_http_head_end("", 0), 0);
}
