/*
 * Tests for lib/chat/message.c: the built-in chat protocol. The pure
 * parts (request parser, line parser, encoders, name rules) are driven
 * directly and their output compared byte for byte; the last section runs
 * a real server with wschat_chat_enable() and talks to it with raw
 * clients in both dialects.
 */
#include <stdlib.h>

#include "chat/message.h"
#include "wschat.h"

#include "../support.h"

/* ------------------------------------------------------------------------
 * Names and error codes
 * ---------------------------------------------------------------------- */

Test(names, user_names) {
  cr_assert(wschat__chat_valid_name("a", 1));
  cr_assert(wschat__chat_valid_name("Az09_.-x", 8));
  cr_assert(wschat__chat_valid_name("abcdefghijklmnopqrstuvwxyz012345", 32));
  cr_assert_not(
      wschat__chat_valid_name("abcdefghijklmnopqrstuvwxyz0123456", 33));
  cr_assert_not(wschat__chat_valid_name("", 0));
  cr_assert_not(wschat__chat_valid_name(NULL, 0));
  cr_assert_not(wschat__chat_valid_name("a b", 3));
  cr_assert_not(wschat__chat_valid_name("a/b", 3));
  cr_assert_not(wschat__chat_valid_name("x:y", 3));
  cr_assert_not(wschat__chat_valid_name("caf\xc3\xa9", 5));
  /* A NUL byte inside is refused, not read as the end. */
  cr_assert_not(wschat__chat_valid_name("ab\0cd", 5));
}

Test(names, room_names) {
  char room[66];
  memset(room, 'r', sizeof(room));
  cr_assert(wschat__chat_valid_room(room, 64));
  cr_assert_not(wschat__chat_valid_room(room, 65));
  cr_assert_not(wschat__chat_valid_room("", 0));
  cr_assert_not(wschat__chat_valid_room("#r", 2));
  cr_assert(wschat__chat_valid_room("a-b_c.9", 7));
}

Test(errors, codes_and_texts) {
  static const char *const codes[] = {
      "bad_json",   "bad_request",  "unknown_type", "invalid_name",
      "name_taken", "invalid_room", "not_in_room",  "no_such_user",
      "too_long",   "rate_limited"};
  static const char *const texts[] = {
      "not a JSON object", "bad request",  "unknown type", "invalid name",
      "name taken",        "invalid room", "not in room",  "no such user",
      "too long",          "rate limited"};
  int i;
  for (i = 0; i < 10; i++) {
    cr_assert_str_eq(wschat__chat_err_code((wschat__chat_err)(i + 1)),
                     codes[i]);
    cr_assert_str_eq(wschat__chat_err_text((wschat__chat_err)(i + 1)),
                     texts[i]);
  }
  cr_assert_str_eq(wschat__chat_err_code((wschat__chat_err)99), "bad_request");
}

/* ------------------------------------------------------------------------
 * JSON requests
 * ---------------------------------------------------------------------- */

static wschat__chat_err parse_max(const char *json, size_t max_text,
                                  wschat__chat_req *req) {
  return wschat__chat_req_parse(json, strlen(json), max_text, req);
}

static wschat__chat_err parse(const char *json, wschat__chat_req *req) {
  return parse_max(json, 4096, req);
}

Test(request, join) {
  wschat__chat_req r;
  cr_assert_eq(parse("{\"type\":\"join\",\"room\":\"dev\",\"ref\":\"j1\"}", &r),
               WSCHAT__CHAT_OK);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_JOIN);
  cr_assert_str_eq(r.room, "dev");
  cr_assert_eq(r.room_len, 3);
  cr_assert(r.has_ref);
  cr_assert_eq(r.ref_len, 2);
  cr_assert_eq(memcmp(r.ref, "j1", 2), 0);
  cr_assert_not(r.has_since);
  wschat__chat_req_free(&r);

  cr_assert_eq(parse("{\"room\":\"dev\",\"since\":0,\"type\":\"join\"}", &r),
               WSCHAT__CHAT_OK);
  cr_assert(r.has_since);
  cr_assert_eq(r.since, 0);
  cr_assert_not(r.has_ref);
  wschat__chat_req_free(&r);

  /* The largest integer jansson holds is a valid id. */
  cr_assert_eq(parse("{\"type\":\"join\",\"room\":\"d\","
                     "\"since\":9223372036854775807}",
                     &r),
               WSCHAT__CHAT_OK);
  cr_assert_eq(r.since, 9223372036854775807ULL);
  wschat__chat_req_free(&r);
}

Test(request, leave_who_rooms) {
  wschat__chat_req r;
  cr_assert_eq(parse("{\"type\":\"leave\",\"room\":\"a\"}", &r), 0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_LEAVE);
  cr_assert_str_eq(r.room, "a");
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"who\",\"room\":\"b\"}", &r), 0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_WHO);
  cr_assert_str_eq(r.room, "b");
  wschat__chat_req_free(&r);
  /* Unknown fields are ignored, whatever they hold. */
  cr_assert_eq(parse("{\"type\":\"rooms\",\"x\":{\"y\":[1,2,null]},"
                     "\"room\":5}",
                     &r),
               0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_ROOMS);
  wschat__chat_req_free(&r);
}

Test(request, say_and_whisper) {
  wschat__chat_req r;
  cr_assert_eq(parse("{\"type\":\"say\",\"room\":\"r\",\"text\":\"h\\u00e9 "
                     "\\\"q\\\"\"}",
                     &r),
               0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_SAY);
  cr_assert_str_eq(r.room, "r");
  cr_assert_eq(r.text_len, 7);
  cr_assert_eq(memcmp(r.text, "h\xc3\xa9 \"q\"", 7), 0);
  wschat__chat_req_free(&r);
  /* A NUL byte is valid text; the length says where it ends. */
  cr_assert_eq(
      parse("{\"type\":\"say\",\"room\":\"r\",\"text\":\"a\\u0000b\"}", &r), 0);
  cr_assert_eq(r.text_len, 3);
  cr_assert_eq(memcmp(r.text, "a\0b", 3), 0);
  wschat__chat_req_free(&r);
  cr_assert_eq(
      parse("{\"type\":\"whisper\",\"to\":\"Bob\",\"text\":\"psst\"}", &r), 0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_WHISPER);
  cr_assert_str_eq(r.name, "Bob");
  cr_assert_eq(r.text_len, 4);
  wschat__chat_req_free(&r);
}

Test(request, nick_and_history) {
  wschat__chat_req r;
  cr_assert_eq(parse("{\"type\":\"nick\",\"name\":\"alice\"}", &r), 0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_NICK);
  cr_assert_str_eq(r.name, "alice");
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"history\",\"room\":\"r\"}", &r), 0);
  cr_assert_eq(r.type, WSCHAT__CHAT_REQ_HISTORY);
  cr_assert_not(r.has_before);
  cr_assert_eq(r.limit, 50);
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"history\",\"room\":\"r\",\"before\":17,"
                     "\"limit\":200}",
                     &r),
               0);
  cr_assert(r.has_before);
  cr_assert_eq(r.before, 17);
  cr_assert_eq(r.limit, 200);
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"history\",\"room\":\"r\",\"limit\":1,"
                     "\"before\":0}",
                     &r),
               0);
  cr_assert(r.has_before);
  cr_assert_eq(r.before, 0);
  cr_assert_eq(r.limit, 1);
  wschat__chat_req_free(&r);
}

/* One refused request: its code, and whether the ref is to be echoed. */
typedef struct bad_case {
  const char *json;
  wschat__chat_err err;
  int has_ref;
} bad_case;

static void check_bad(const bad_case *cases, size_t n, size_t max_text) {
  size_t i;
  for (i = 0; i < n; i++) {
    wschat__chat_req r;
    wschat__chat_err err = parse_max(cases[i].json, max_text, &r);
    cr_expect_eq(err, cases[i].err, "%s: got %s, want %s", cases[i].json,
                 wschat__chat_err_code(err),
                 wschat__chat_err_code(cases[i].err));
    cr_expect_eq(r.err, err);
    cr_expect_not_null(r.err_msg, "%s: no message", cases[i].json);
    cr_expect_eq(r.has_ref, cases[i].has_ref, "%s: has_ref %d", cases[i].json,
                 r.has_ref);
    wschat__chat_req_free(&r);
  }
}

Test(request, bad_json) {
  static const bad_case cases[] = {
      {"not json", WSCHAT__CHAT_BAD_JSON, 0},
      {"{", WSCHAT__CHAT_BAD_JSON, 0},
      {"{\"type\": \"rooms\"", WSCHAT__CHAT_BAD_JSON, 0},
      {"", WSCHAT__CHAT_BAD_JSON, 0},
      {"[]", WSCHAT__CHAT_BAD_JSON, 0},
      {"[{\"type\":\"rooms\"}]", WSCHAT__CHAT_BAD_JSON, 0},
      {"5", WSCHAT__CHAT_BAD_JSON, 0},
      {"\"rooms\"", WSCHAT__CHAT_BAD_JSON, 0},
      {"null", WSCHAT__CHAT_BAD_JSON, 0},
      {"true", WSCHAT__CHAT_BAD_JSON, 0},
      {"\xef\xbb\xbf{\"type\":\"rooms\"}", WSCHAT__CHAT_BAD_JSON, 0},
      {"{\"type\":\"rooms\"} x", WSCHAT__CHAT_BAD_JSON, 0},
      {"{\"type\":\"rooms\"}{}", WSCHAT__CHAT_BAD_JSON, 0},
      {"{'type':'rooms'}", WSCHAT__CHAT_BAD_JSON, 0},
  };
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 4096);
}

Test(request, ref) {
  wschat__chat_req r;
  char json[256];
  static const bad_case cases[] = {
      {"{\"type\":\"rooms\",\"ref\":5}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"rooms\",\"ref\":null}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"rooms\",\"ref\":[\"x\"]}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"rooms\",\"ref\":{\"a\":1}}", WSCHAT__CHAT_BAD_REQUEST, 0},
      /* 65 bytes */
      {"{\"type\":\"rooms\",\"ref\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxx\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      /* 33 x 2 bytes */
      {"{\"type\":\"rooms\",\"ref\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
       "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
       "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
       "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
       "\\u00e9\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      /* An invalid ref wins over every later error. */
      {"{\"type\":\"dance\",\"ref\":7}", WSCHAT__CHAT_BAD_REQUEST, 0},
      /* A valid ref is echoed by every later error. */
      {"{\"type\":\"dance\",\"ref\":\"d\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 1},
      {"{\"ref\":\"d\"}", WSCHAT__CHAT_BAD_REQUEST, 1},
  };
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 4096);

  /* 64 bytes, empty, and escapes are fine. */
  snprintf(json, sizeof(json), "{\"type\":\"rooms\",\"ref\":\"%064d\"}", 0);
  cr_assert_eq(parse(json, &r), 0);
  cr_assert(r.has_ref);
  cr_assert_eq(r.ref_len, 64);
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"rooms\",\"ref\":\"\"}", &r), 0);
  cr_assert(r.has_ref);
  cr_assert_eq(r.ref_len, 0);
  wschat__chat_req_free(&r);
  cr_assert_eq(parse("{\"type\":\"rooms\",\"ref\":\"a\\u0000\\\"\"}", &r), 0);
  cr_assert_eq(r.ref_len, 3);
  cr_assert_eq(memcmp(r.ref, "a\0\"", 3), 0);
  wschat__chat_req_free(&r);
}

Test(request, type) {
  static const bad_case cases[] = {
      {"{}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"room\":\"r\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":5,\"ref\":\"m\"}", WSCHAT__CHAT_BAD_REQUEST, 1},
      {"{\"type\":null}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":[\"join\"]}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"dance\",\"ref\":\"u1\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 1},
      {"{\"type\":\"JOIN\",\"room\":\"r\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 0},
      {"{\"type\":\"welcome\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 0},
      {"{\"type\":\"message\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 0},
      {"{\"type\":\"\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 0},
      {"{\"type\":\"join\\u0000\",\"room\":\"r\"}", WSCHAT__CHAT_UNKNOWN_TYPE,
       0},
      {"{\"type\":\"join \",\"room\":\"r\"}", WSCHAT__CHAT_UNKNOWN_TYPE, 0},
  };
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 4096);
}

Test(request, missing_and_wrongly_typed_fields) {
  static const bad_case cases[] = {
      {"{\"type\":\"join\",\"ref\":\"a\"}", WSCHAT__CHAT_BAD_REQUEST, 1},
      {"{\"type\":\"leave\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"say\",\"text\":\"x\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"say\",\"room\":\"r\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"whisper\",\"text\":\"x\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"whisper\",\"to\":\"bob\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"nick\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"who\"}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":5}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":null}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"leave\",\"room\":[\"r\"]}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"say\",\"room\":\"r\",\"text\":5}", WSCHAT__CHAT_BAD_REQUEST,
       0},
      {"{\"type\":\"say\",\"room\":\"r\",\"text\":null}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"say\",\"room\":{\"r\":1},\"text\":\"x\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"whisper\",\"to\":5,\"text\":\"x\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"whisper\",\"to\":\"b\",\"text\":[\"x\"]}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"nick\",\"name\":5}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"nick\",\"name\":true}", WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"who\",\"room\":5}", WSCHAT__CHAT_BAD_REQUEST, 0},
      /* A type error is reported before a bad value in another field. */
      {"{\"type\":\"say\",\"room\":\"a b\",\"text\":5}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
  };
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 4096);
}

Test(request, ids_and_limits) {
  static const bad_case cases[] = {
      /* numbers as strings, reals, booleans */
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":\"5\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":5.0}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":true}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":null}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"before\":\"x\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":\"5\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":5.5}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      /* negative ids */
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":-1}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"before\":-5}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      /* huge numbers: valid JSON, but no id */
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":99999999999999999999}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"join\",\"room\":\"r\",\"since\":9223372036854775808}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"before\":1e400}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"before\":1e30}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"before\":-99999999999999999999}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      /* limit outside 1..200 */
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":0,\"ref\":\"l\"}",
       WSCHAT__CHAT_BAD_REQUEST, 1},
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":201}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":-1}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"history\",\"room\":\"r\",\"limit\":4294967297}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
  };
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 4096);
}

Test(request, values) {
  static const bad_case cases[] = {
      {"{\"type\":\"join\",\"room\":\"\",\"ref\":\"j\"}",
       WSCHAT__CHAT_INVALID_ROOM, 1},
      {"{\"type\":\"join\",\"room\":\"a b\"}", WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"join\",\"room\":\"#r\"}", WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"join\",\"room\":\"\\u00e9\"}", WSCHAT__CHAT_INVALID_ROOM,
       0},
      {"{\"type\":\"join\",\"room\":\"r\\u0000x\"}", WSCHAT__CHAT_INVALID_ROOM,
       0},
      {"{\"type\":\"join\",\"room\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxx\"}",
       WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"leave\",\"room\":\"a/b\"}", WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"say\",\"room\":\"a/b\",\"text\":\"x\"}",
       WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"history\",\"room\":\"\"}", WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"who\",\"room\":\" \"}", WSCHAT__CHAT_INVALID_ROOM, 0},
      {"{\"type\":\"nick\",\"name\":\"\",\"ref\":\"n\"}",
       WSCHAT__CHAT_INVALID_NAME, 1},
      {"{\"type\":\"nick\",\"name\":\"a b\"}", WSCHAT__CHAT_INVALID_NAME, 0},
      {"{\"type\":\"nick\",\"name\":\"a\\nb\"}", WSCHAT__CHAT_INVALID_NAME, 0},
      {"{\"type\":\"nick\",\"name\":\"a\\u0000\"}", WSCHAT__CHAT_INVALID_NAME,
       0},
      {"{\"type\":\"nick\",\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
       WSCHAT__CHAT_INVALID_NAME, 0},
      /* A `to` that no user can have. */
      {"{\"type\":\"whisper\",\"to\":\"\",\"text\":\"x\"}",
       WSCHAT__CHAT_NO_SUCH_USER, 0},
      {"{\"type\":\"whisper\",\"to\":\"a b\",\"text\":\"x\",\"ref\":\"w\"}",
       WSCHAT__CHAT_NO_SUCH_USER, 1},
      {"{\"type\":\"whisper\",\"to\":\"bob\\u0000\",\"text\":\"x\"}",
       WSCHAT__CHAT_NO_SUCH_USER, 0},
      /* text: 1..max bytes (10 here) */
      {"{\"type\":\"say\",\"room\":\"r\",\"text\":\"\",\"ref\":\"e\"}",
       WSCHAT__CHAT_BAD_REQUEST, 1},
      {"{\"type\":\"whisper\",\"to\":\"b\",\"text\":\"\"}",
       WSCHAT__CHAT_BAD_REQUEST, 0},
      {"{\"type\":\"say\",\"room\":\"r\",\"text\":\"aaaaaaaaaaa\"}",
       WSCHAT__CHAT_TOO_LONG, 0},
      {"{\"type\":\"say\",\"room\":\"r\",\"text\":\"aaaaaaaaa\\u00e9\"}",
       WSCHAT__CHAT_TOO_LONG, 0},
      {"{\"type\":\"whisper\",\"to\":\"b\",\"text\":\"wwwwwwwwwww\","
       "\"ref\":\"W\"}",
       WSCHAT__CHAT_TOO_LONG, 1},
      /* The name is judged before the text. */
      {"{\"type\":\"whisper\",\"to\":\"a b\",\"text\":\"wwwwwwwwwww\"}",
       WSCHAT__CHAT_NO_SUCH_USER, 0},
  };
  wschat__chat_req r;
  check_bad(cases, sizeof(cases) / sizeof(cases[0]), 10);
  /* Exactly the limit, counted in bytes. */
  cr_assert_eq(parse_max("{\"type\":\"say\",\"room\":\"r\",\"text\":"
                         "\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
                         10, &r),
               WSCHAT__CHAT_OK);
  cr_assert_eq(r.text_len, 10);
  wschat__chat_req_free(&r);
}

/* ------------------------------------------------------------------------
 * Text-dialect lines
 * ---------------------------------------------------------------------- */

static wschat__text_cmd line(const char *s) {
  wschat__text_cmd c;
  wschat__text_parse(s, strlen(s), &c);
  return c;
}

/* The n bytes at p equal the string want. */
static int is_span(const char *p, size_t n, const char *want) {
  return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

Test(text, say_and_escapes) {
  wschat__text_cmd c = line("hello there");
  cr_assert_eq(c.type, WSCHAT__TEXT_SAY);
  cr_assert(is_span(c.text, c.text_len, "hello there"));
  c = line("//text");
  cr_assert_eq(c.type, WSCHAT__TEXT_SAY);
  cr_assert(is_span(c.text, c.text_len, "/text"));
  c = line("//nick x");
  cr_assert(is_span(c.text, c.text_len, "/nick x"));
  c = line("//");
  cr_assert_eq(c.type, WSCHAT__TEXT_SAY);
  cr_assert(is_span(c.text, c.text_len, "/"));
  c = line(" /nick x"); /* not a command: it does not start with '/' */
  cr_assert_eq(c.type, WSCHAT__TEXT_SAY);
  cr_assert(is_span(c.text, c.text_len, " /nick x"));
  c = line("   ");
  cr_assert_eq(c.type, WSCHAT__TEXT_SAY);
  c = line("");
  cr_assert_eq(c.type, WSCHAT__TEXT_IGNORE);
}

Test(text, commands) {
  wschat__text_cmd c = line("/nick alice");
  cr_assert_eq(c.type, WSCHAT__TEXT_NICK);
  cr_assert(is_span(c.arg, c.arg_len, "alice"));
  c = line("/nick   alice  \t");
  cr_assert_eq(c.type, WSCHAT__TEXT_NICK);
  cr_assert(is_span(c.arg, c.arg_len, "alice"));
  c = line("/nick\talice");
  cr_assert_eq(c.type, WSCHAT__TEXT_NICK);
  cr_assert(is_span(c.arg, c.arg_len, "alice"));
  c = line("/join dev");
  cr_assert_eq(c.type, WSCHAT__TEXT_JOIN);
  cr_assert(is_span(c.arg, c.arg_len, "dev"));
  c = line("/who");
  cr_assert_eq(c.type, WSCHAT__TEXT_WHO);
  c = line("/who  ");
  cr_assert_eq(c.type, WSCHAT__TEXT_WHO);
  c = line("/rooms");
  cr_assert_eq(c.type, WSCHAT__TEXT_ROOMS);
  c = line("/help");
  cr_assert_eq(c.type, WSCHAT__TEXT_HELP);
  c = line("/msg bob secret stuff");
  cr_assert_eq(c.type, WSCHAT__TEXT_MSG);
  cr_assert(is_span(c.arg, c.arg_len, "bob"));
  cr_assert(is_span(c.text, c.text_len, "secret stuff"));
  /* Blanks before the text go; the text itself is kept as typed. */
  c = line("/msg  bob   two  spaces ");
  cr_assert_eq(c.type, WSCHAT__TEXT_MSG);
  cr_assert(is_span(c.arg, c.arg_len, "bob"));
  cr_assert(is_span(c.text, c.text_len, "two  spaces "));
}

Test(text, usage_errors) {
  static const struct {
    const char *line;
    const char *usage;
  } cases[] = {
      {"/nick", "/nick NAME"},          {"/nick ", "/nick NAME"},
      {"/nick a b", "/nick NAME"},      {"/join", "/join ROOM"},
      {"/join a b", "/join ROOM"},      {"/who lobby", "/who"},
      {"/rooms x", "/rooms"},           {"/help me", "/help"},
      {"/msg", "/msg NAME TEXT"},       {"/msg bob", "/msg NAME TEXT"},
      {"/msg bob  ", "/msg NAME TEXT"},
  };
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    wschat__text_cmd c = line(cases[i].line);
    cr_expect_eq(c.type, WSCHAT__TEXT_USAGE, "%s", cases[i].line);
    cr_expect_str_eq(c.usage, cases[i].usage, "%s", cases[i].line);
  }
}

Test(text, unknown_commands) {
  wschat__text_cmd c = line("/x");
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/x"));
  c = line("/dance with me");
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/dance"));
  c = line("/");
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/"));
  c = line("/NICK alice"); /* command words are case-sensitive */
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/NICK"));
  c = line("/nickname x");
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/nickname"));
  c = line("/ nick");
  cr_assert_eq(c.type, WSCHAT__TEXT_UNKNOWN);
  cr_assert(is_span(c.arg, c.arg_len, "/"));
}

Test(text, help_lists_every_command) {
  static const char *const words[] = {"/nick",  "/join", "/who",
                                      "/rooms", "/msg",  "/help"};
  const char *p;
  size_t i;
  for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    cr_assert_not_null(strstr(wschat__text_help, words[i]));
  /* Every line starts "* ". */
  for (p = wschat__text_help; p != NULL; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    cr_assert_eq(strncmp(p, "* ", 2), 0, "line: %s", p);
  }
}

/* ------------------------------------------------------------------------
 * Encoders: exact bytes
 * ---------------------------------------------------------------------- */

/* Run an encoder into a fresh buffer and compare. */
#define EXPECT_OUT(call, want)                                                 \
  do {                                                                         \
    wschat__chat_buf b_;                                                       \
    wschat__chat_buf_init(&b_);                                                \
    call;                                                                      \
    cr_assert_not(b_.is_failed);                                               \
    cr_assert_eq(b_.len, sizeof(want) - 1, "got %s", b_.data);                 \
    cr_assert_eq(memcmp(b_.data, want, b_.len), 0, "got %s", b_.data);         \
    wschat__chat_buf_free(&b_);                                                \
  } while (0)

Test(encode, welcome_and_message) {
  EXPECT_OUT(wschat__chat_json_welcome(&b_, "user1", "wschatd/0.1.0", 4096, 20),
             "{\"type\":\"welcome\",\"name\":\"user1\",\"server\":"
             "\"wschatd/0.1.0\",\"limits\":{\"text\":4096,\"rate\":20}}");
  EXPECT_OUT(wschat__chat_json_message(&b_, 7, "lobby", "user3", "hello", 5,
                                       1700000000123ULL),
             "{\"type\":\"message\",\"id\":7,\"room\":\"lobby\",\"from\":"
             "\"user3\",\"text\":\"hello\",\"ts\":1700000000123}");
  /* Escapes, non-ASCII kept as UTF-8, a NUL byte, no escaped slash. */
  EXPECT_OUT(
      wschat__chat_json_message(&b_, 1, "r", "a",
                                "\"q\" \\ \n\t\xc3\xa9</b>\0z", 16, 0),
      "{\"type\":\"message\",\"id\":1,\"room\":\"r\",\"from\":\"a\","
      "\"text\":\"\\\"q\\\" \\\\ \\n\\t\xc3\xa9</b>\\u0000z\",\"ts\":0}");
}

Test(encode, events) {
  EXPECT_OUT(wschat__chat_json_whisper(&b_, "user1", "user2", "psst", 4, 5),
             "{\"type\":\"whisper\",\"from\":\"user1\",\"to\":\"user2\","
             "\"text\":\"psst\",\"ts\":5}");
  EXPECT_OUT(wschat__chat_json_presence(&b_, "joined", "dev", "amy", 6),
             "{\"type\":\"joined\",\"room\":\"dev\",\"name\":\"amy\","
             "\"ts\":6}");
  EXPECT_OUT(wschat__chat_json_presence(&b_, "left", "dev", "amy", 6),
             "{\"type\":\"left\",\"room\":\"dev\",\"name\":\"amy\",\"ts\":6}");
  EXPECT_OUT(wschat__chat_json_renamed(&b_, "user3", "alice", 8),
             "{\"type\":\"renamed\",\"from\":\"user3\",\"to\":\"alice\","
             "\"ts\":8}");
}

Test(encode, members_and_rooms) {
  static const char *const names[] = {"alice", "bob", "user3"};
  static const wschat__chat_room_count rooms[] = {{"lobby", 3}, {"dev", 1}};
  EXPECT_OUT(wschat__chat_json_members(&b_, "lobby", names, 3, 3),
             "{\"type\":\"members\",\"room\":\"lobby\",\"names\":"
             "[\"alice\",\"bob\",\"user3\"]}");
  EXPECT_OUT(wschat__chat_json_members(&b_, "empty", NULL, 0, 0),
             "{\"type\":\"members\",\"room\":\"empty\",\"names\":[]}");
  EXPECT_OUT(wschat__chat_json_members(&b_, "big", names, 2, 5000),
             "{\"type\":\"members\",\"room\":\"big\",\"names\":"
             "[\"alice\",\"bob\"],\"count\":5000,\"complete\":false}");
  EXPECT_OUT(wschat__chat_json_rooms(&b_, rooms, 2),
             "{\"type\":\"rooms\",\"rooms\":[{\"room\":\"lobby\","
             "\"members\":3},{\"room\":\"dev\",\"members\":1}]}");
  EXPECT_OUT(wschat__chat_json_rooms(&b_, NULL, 0),
             "{\"type\":\"rooms\",\"rooms\":[]}");
}

Test(encode, ack_and_error) {
  EXPECT_OUT(wschat__chat_json_ack(&b_, "s1", 2, 1, 42),
             "{\"type\":\"ack\",\"ref\":\"s1\",\"id\":42}");
  EXPECT_OUT(wschat__chat_json_ack(&b_, NULL, 0, 1, 42),
             "{\"type\":\"ack\",\"id\":42}");
  EXPECT_OUT(wschat__chat_json_ack(&b_, "n", 1, 0, 0),
             "{\"type\":\"ack\",\"ref\":\"n\"}");
  EXPECT_OUT(wschat__chat_json_ack(&b_, NULL, 0, 0, 0), "{\"type\":\"ack\"}");
  EXPECT_OUT(wschat__chat_json_ack(&b_, "a\0\"", 3, 0, 0),
             "{\"type\":\"ack\",\"ref\":\"a\\u0000\\\"\"}");
  EXPECT_OUT(
      wschat__chat_json_error(&b_, WSCHAT__CHAT_NAME_TAKEN, NULL, "t1", 2),
      "{\"type\":\"error\",\"code\":\"name_taken\",\"message\":"
      "\"name taken\",\"ref\":\"t1\"}");
  EXPECT_OUT(wschat__chat_json_error(&b_, WSCHAT__CHAT_BAD_REQUEST,
                                     "\"room\" must be a string", NULL, 0),
             "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":"
             "\"\\\"room\\\" must be a string\"}");
}

Test(encode, invalid_utf8_fails) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  cr_assert_eq(wschat__chat_json_message(&b, 1, "r", "a", "\xc0\xaf", 2, 0),
               -1);
  cr_assert(b.is_failed);
  /* Sticky: later appends do nothing. */
  wschat__chat_buf_adds(&b, "x");
  cr_assert(b.is_failed);
  wschat__chat_buf_free(&b);
}

Test(encode, history_splice) {
  static const char m1[] = "{\"type\":\"message\",\"id\":1,\"room\":\"r\","
                           "\"from\":\"a\",\"text\":\"x\",\"ts\":1}";
  static const char m2[] = "{\"type\":\"message\",\"id\":2,\"room\":\"r\","
                           "\"from\":\"b\",\"text\":\"y\",\"ts\":2}";
  EXPECT_OUT((wschat__chat_json_history_begin(&b_, "r"),
              wschat__chat_json_history_end(&b_, 1)),
             "{\"type\":\"history\",\"room\":\"r\",\"messages\":[],"
             "\"complete\":true}");
  EXPECT_OUT((wschat__chat_json_history_begin(&b_, "r"),
              wschat__chat_json_history_add(&b_, m1, sizeof(m1) - 1),
              wschat__chat_json_history_add(&b_, m2, sizeof(m2) - 1),
              wschat__chat_json_history_end(&b_, 0)),
             "{\"type\":\"history\",\"room\":\"r\",\"messages\":[{\"type\":"
             "\"message\",\"id\":1,\"room\":\"r\",\"from\":\"a\",\"text\":"
             "\"x\",\"ts\":1},{\"type\":\"message\",\"id\":2,\"room\":\"r\","
             "\"from\":\"b\",\"text\":\"y\",\"ts\":2}],\"complete\":false}");
}

Test(encode, text_lines) {
  static const char *const names[] = {"alice", "bob", "user3"};
  static const wschat__chat_room_count rooms[] = {{"lobby", 3}, {"dev", 1}};
  EXPECT_OUT(wschat__text_said(&b_, "user3", "hello", 5), "user3 said: hello");
  EXPECT_OUT(wschat__text_said(&b_, "user3", "a\0b", 3), "user3 said: a\0b");
  EXPECT_OUT(wschat__text_whispers(&b_, "user3", "psst", 4),
             "user3 whispers: psst");
  EXPECT_OUT(wschat__text_presence(&b_, "joined", "lobby", "alice"),
             "* alice joined lobby");
  EXPECT_OUT(wschat__text_presence(&b_, "left", "dev", "alice"),
             "* alice left dev");
  EXPECT_OUT(wschat__text_renamed(&b_, "user3", "alice"),
             "* user3 is now alice");
  EXPECT_OUT(wschat__text_who(&b_, "lobby", names, 3, 3),
             "* in lobby: alice, bob, user3");
  EXPECT_OUT(wschat__text_who(&b_, "dev", names + 1, 1, 1), "* in dev: bob");
  EXPECT_OUT(wschat__text_who(&b_, "big", names, 2, 5000),
             "* in big: alice, bob (and 4998 more)");
  EXPECT_OUT(wschat__text_rooms(&b_, rooms, 2), "* rooms: lobby (3), dev (1)");
  EXPECT_OUT(wschat__text_rooms(&b_, NULL, 0), "* rooms: none");
  EXPECT_OUT(wschat__text_error(&b_, "name taken", NULL, 0),
             "* error: name taken");
  EXPECT_OUT(wschat__text_error(&b_, "unknown command ", "/x", 2),
             "* error: unknown command /x");
}

Test(encode, sort_names_bytewise) {
  const char *names[] = {"user3", "bob", "Zed", "alice", "_x"};
  wschat__chat_sort_names(names, 5);
  cr_assert_str_eq(names[0], "Zed");
  cr_assert_str_eq(names[1], "_x");
  cr_assert_str_eq(names[2], "alice");
  cr_assert_str_eq(names[3], "bob");
  cr_assert_str_eq(names[4], "user3");
}

Test(encode, buffer_grows) {
  wschat__chat_buf b;
  char *big = malloc(1 << 20);
  size_t i;
  memset(big, 'x', 1 << 20);
  wschat__chat_buf_init(&b);
  for (i = 0; i < 3; i++)
    wschat__chat_buf_add(&b, big, 1 << 20);
  cr_assert_not(b.is_failed);
  cr_assert_eq(b.len, 3u << 20);
  cr_assert_eq(b.data[b.len], '\0');
  wschat__chat_buf_free(&b);
  free(big);
}

/* ------------------------------------------------------------------------
 * Settings
 * ---------------------------------------------------------------------- */

Test(settings, enable_and_setters) {
  wschat_server *s = wschat_server_new(NULL);
  cr_assert_eq(wschat_chat_set_max_text(s, 10), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_server_name(s, "x"), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_presence_limit(s, 5), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_presence_limit(NULL, 5), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_enable(NULL), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_enable(s), 0);
  cr_assert_eq(wschat_chat_enable(s), 0); /* again: keeps its settings */
  cr_assert_not_null(wschat_server_get_userdata(s));
  cr_assert_eq(wschat_chat_set_max_text(s, 0), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_max_text(s, 1048577), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_max_text(s, 1), 0);
  cr_assert_eq(wschat_chat_set_max_text(s, 1048576), 0);
  cr_assert_eq(wschat_chat_set_presence_limit(s, 0), 0);
  cr_assert_eq(wschat_chat_set_presence_limit(s, 100000), 0);
  cr_assert_eq(wschat_chat_set_server_name(s, NULL), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_server_name(s, "bad\xc0"), WSCHAT_EINVAL);
  cr_assert_eq(wschat_chat_set_server_name(s, "mine/1.0"), 0);
  cr_assert_eq(wschat_chat_set_server_name(s, "mine/2.0"), 0);
  cr_assert_eq(wschat_server_listen(s, "127.0.0.1", 0), 0);
  cr_assert_eq(wschat_chat_enable(s), WSCHAT_EBUSY);
  cr_assert_eq(wschat_server_stop(s), 0);
  cr_assert_eq(wschat_server_run(s), 0);
  cr_assert_eq(wschat_server_free(s), 0);
}

/* ------------------------------------------------------------------------
 * On a running server
 * ---------------------------------------------------------------------- */

static wschat_server *server;
static pthread_t loop_thread;

static void *run_loop(void *arg) {
  (void)arg;
  cr_assert_eq(wschat_server_run(server), 0);
  return NULL;
}

static void start(unsigned history, unsigned rate) {
  server = wschat_server_new(NULL);
  cr_assert_eq(wschat_chat_enable(server), 0);
  cr_assert_eq(wschat_chat_set_server_name(server, "test/1"), 0);
  cr_assert_eq(wschat_chat_set_max_text(server, 100), 0);
  cr_assert_eq(wschat_server_set_history(server, history), 0);
  cr_assert_eq(wschat_server_set_rate(server, rate, rate ? 2 * rate : 1), 0);
  cr_assert_eq(wschat_server_listen(server, "127.0.0.1", 0), 0);
  port = wschat_server_port(server);
  pthread_create(&loop_thread, NULL, run_loop, NULL);
}

static void setup(void) {
  start(1000, 0);
}

static void setup_small(void) {
  start(3, 1);
}

static void teardown(void) {
  cr_assert_eq(wschat_server_stop(server), 0);
  pthread_join(loop_thread, NULL);
  cr_assert_eq(wschat_server_free(server), 0);
}

static int text_client(void) {
  return client_open(NULL);
}

static int json_client(void) {
  return client_open("Sec-WebSocket-Protocol: other, wschat.v1.json\r\n");
}

static void send_line(int fd, const char *s) {
  client_send(fd, 1, s, strlen(s));
}

/* The next text frame, with every "ts":<digits> replaced by "ts":T. */
static void expect_frame(int fd, const char *want) {
  static char buf[1 << 16];
  char *ts, *end;
  int op;
  size_t n = client_recv(fd, &op, (uint8_t *)buf, sizeof(buf) - 1);
  buf[n] = '\0';
  cr_assert_eq(op, 1);
  for (ts = strstr(buf, "\"ts\":"); ts != NULL;
       ts = strstr(ts + 6, "\"ts\":")) {
    end = ts + 5;
    while (*end >= '0' && *end <= '9')
      end++;
    cr_assert_gt(end, ts + 5, "ts without digits: %s", buf);
    memmove(ts + 6, end, strlen(end) + 1);
    ts[5] = 'T';
  }
  cr_assert_str_eq(buf, want);
}

static void skip_frames(int fd, int n) {
  static uint8_t buf[1 << 16];
  int op;
  while (n-- > 0)
    client_recv(fd, &op, buf, sizeof(buf));
}

/* Nothing arrives within 100 ms. */
static void expect_nothing(int fd) {
  struct timeval tv = {0, 100000}, back = {3, 0};
  char c;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  cr_assert_lt(recv(fd, &c, 1, MSG_PEEK), 0, "unexpected frame");
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &back, sizeof(back));
}

Test(live, text_dialect, .init = setup, .fini = teardown) {
  int a = text_client();
  expect_frame(a, "* user1 joined lobby");
  int b = text_client();
  expect_frame(a, "* user2 joined lobby");
  expect_frame(b, "* user2 joined lobby");
  send_line(a, "hello");
  expect_frame(a, "user1 said: hello");
  expect_frame(b, "user1 said: hello");
  send_line(a, "//nick x");
  expect_frame(a, "user1 said: /nick x");
  expect_frame(b, "user1 said: /nick x");
  send_line(a, "/nick alice");
  expect_frame(a, "* you are now alice");
  expect_frame(b, "* user1 is now alice");
  send_line(b, "/nick ALICE");
  expect_frame(b, "* error: name taken");
  send_line(b, "/nick a/b");
  expect_frame(b, "* error: invalid name");
  send_line(b, "/who");
  expect_frame(b, "* in lobby: alice, user2");
  send_line(b, "/rooms");
  expect_frame(b, "* rooms: lobby (2)");
  send_line(b, "/msg alice psst");
  expect_frame(a, "user2 whispers: psst");
  expect_frame(b, "user2 whispers: psst");
  send_line(b, "/msg ghost boo");
  expect_frame(b, "* error: no such user");
  send_line(b, "/dance");
  expect_frame(b, "* error: unknown command /dance");
  send_line(b, "/msg alice");
  expect_frame(b, "* error: usage: /msg NAME TEXT");
  send_line(b, "/join lobby");
  expect_frame(b, "* you are already in lobby");
  send_line(b, "/join #x");
  expect_frame(b, "* error: invalid room");
  send_line(b, "/join dev");
  expect_frame(a, "* user2 left lobby");
  expect_frame(b, "* user2 joined dev");
  send_line(a, "/rooms");
  expect_frame(a, "* rooms: lobby (1), dev (1)");
  send_line(a, "only lobby");
  expect_frame(a, "alice said: only lobby");
  send_line(b, "only dev");
  expect_frame(b, "user2 said: only dev");
  expect_nothing(a);
  client_send(b, 2, "\x01", 1);
  expect_frame(b, "* error: binary messages are not accepted");
  close(b);
  expect_nothing(a); /* b was alone in dev */
  close(a);
}

Test(live, text_too_long, .init = setup, .fini = teardown) {
  char text[102], want[128];
  int a = text_client();
  expect_frame(a, "* user1 joined lobby");
  memset(text, 'x', 101);
  text[101] = '\0';
  send_line(a, text);
  expect_frame(a, "* error: too long");
  text[100] = '\0'; /* exactly the limit */
  send_line(a, text);
  snprintf(want, sizeof(want), "user1 said: %s", text);
  expect_frame(a, want);
  expect_nothing(a);
  close(a);
}

Test(live, json_dialect, .init = setup, .fini = teardown) {
  int a = json_client(), b;
  expect_frame(a, "{\"type\":\"welcome\",\"name\":\"user1\",\"server\":"
                  "\"test/1\",\"limits\":{\"text\":100,\"rate\":0}}");
  b = json_client();
  expect_frame(b, "{\"type\":\"welcome\",\"name\":\"user2\",\"server\":"
                  "\"test/1\",\"limits\":{\"text\":100,\"rate\":0}}");
  send_line(a, "{\"type\":\"join\",\"room\":\"r\"}");
  expect_frame(a, "{\"type\":\"joined\",\"room\":\"r\",\"name\":\"user1\","
                  "\"ts\":T}");
  expect_frame(a, "{\"type\":\"members\",\"room\":\"r\",\"names\":"
                  "[\"user1\"]}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"r\",\"messages\":[],"
                  "\"complete\":true}");
  send_line(a, "{\"type\":\"say\",\"room\":\"r\",\"text\":\"one\","
               "\"ref\":\"s1\"}");
  expect_frame(a, "{\"type\":\"message\",\"id\":1,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"one\",\"ts\":T}");
  expect_frame(a, "{\"type\":\"ack\",\"ref\":\"s1\",\"id\":1}");
  send_line(b, "{\"type\":\"join\",\"room\":\"r\",\"since\":0}");
  expect_frame(a, "{\"type\":\"joined\",\"room\":\"r\",\"name\":\"user2\","
                  "\"ts\":T}");
  expect_frame(b, "{\"type\":\"joined\",\"room\":\"r\",\"name\":\"user2\","
                  "\"ts\":T}");
  expect_frame(b, "{\"type\":\"members\",\"room\":\"r\",\"names\":"
                  "[\"user1\",\"user2\"]}");
  expect_frame(b, "{\"type\":\"history\",\"room\":\"r\",\"messages\":["
                  "{\"type\":\"message\",\"id\":1,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"one\",\"ts\":T}],\"complete\":true}");
  send_line(b, "{\"type\":\"nick\",\"name\":\"bob\",\"ref\":\"n\"}");
  expect_frame(a, "{\"type\":\"renamed\",\"from\":\"user2\",\"to\":\"bob\","
                  "\"ts\":T}");
  expect_frame(b, "{\"type\":\"ack\",\"ref\":\"n\"}");
  send_line(a, "{\"type\":\"whisper\",\"to\":\"BOB\",\"text\":\"hi\"}");
  expect_frame(b, "{\"type\":\"whisper\",\"from\":\"user1\",\"to\":\"bob\","
                  "\"text\":\"hi\",\"ts\":T}");
  expect_frame(a, "{\"type\":\"whisper\",\"from\":\"user1\",\"to\":\"bob\","
                  "\"text\":\"hi\",\"ts\":T}");
  send_line(a, "{\"type\":\"rooms\"}");
  expect_frame(a, "{\"type\":\"rooms\",\"rooms\":[{\"room\":\"r\","
                  "\"members\":2}]}");
  send_line(a, "{\"type\":\"say\",\"room\":\"zz\",\"text\":\"x\","
               "\"ref\":\"q\"}");
  expect_frame(a, "{\"type\":\"error\",\"code\":\"not_in_room\",\"message\":"
                  "\"not in room\",\"ref\":\"q\"}");
  send_line(a, "[1]");
  expect_frame(a, "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":"
                  "\"not a JSON object\"}");
  send_line(b, "{\"type\":\"leave\",\"room\":\"r\",\"ref\":\"l\"}");
  expect_frame(a, "{\"type\":\"left\",\"room\":\"r\",\"name\":\"bob\","
                  "\"ts\":T}");
  expect_frame(b, "{\"type\":\"ack\",\"ref\":\"l\"}");
  send_line(b, "{\"type\":\"join\",\"room\":\"r\"}");
  expect_frame(a, "{\"type\":\"joined\",\"room\":\"r\",\"name\":\"bob\","
                  "\"ts\":T}");
  close(b);
  expect_frame(a, "{\"type\":\"left\",\"room\":\"r\",\"name\":\"bob\","
                  "\"ts\":T}");
  expect_nothing(a);
  close(a);
}

/* A member that shares two rooms with the renamed session hears of it
 * once; a text member reads it as a line. */
Test(live, rename_once_across_rooms, .init = setup, .fini = teardown) {
  int t = text_client(), a, b;
  expect_frame(t, "* user1 joined lobby");
  a = json_client();
  expect_frame(a, "{\"type\":\"welcome\",\"name\":\"user2\",\"server\":"
                  "\"test/1\",\"limits\":{\"text\":100,\"rate\":0}}");
  b = json_client();
  expect_frame(b, "{\"type\":\"welcome\",\"name\":\"user3\",\"server\":"
                  "\"test/1\",\"limits\":{\"text\":100,\"rate\":0}}");
  /* a then b join lobby and x; each join is complete (joined, members,
   * history) before the next client's starts, so the order is fixed. */
  send_line(a, "{\"type\":\"join\",\"room\":\"lobby\"}");
  send_line(a, "{\"type\":\"join\",\"room\":\"x\"}");
  skip_frames(a, 6);
  expect_frame(t, "* user2 joined lobby");
  send_line(b, "{\"type\":\"join\",\"room\":\"lobby\"}");
  send_line(b, "{\"type\":\"join\",\"room\":\"x\"}");
  skip_frames(b, 6);
  skip_frames(a, 2); /* joined user3, in lobby and in x */
  expect_frame(t, "* user3 joined lobby");
  send_line(b, "{\"type\":\"who\",\"room\":\"x\"}");
  expect_frame(b, "{\"type\":\"members\",\"room\":\"x\",\"names\":"
                  "[\"user2\",\"user3\"]}");
  send_line(a, "{\"type\":\"nick\",\"name\":\"neo\"}");
  expect_frame(a, "{\"type\":\"ack\"}");
  expect_frame(b, "{\"type\":\"renamed\",\"from\":\"user2\",\"to\":\"neo\","
                  "\"ts\":T}");
  expect_frame(t, "* user2 is now neo");
  expect_nothing(a);
  expect_nothing(b);
  expect_nothing(t);
  /* A text line reaches JSON members as a message, stored in history. */
  send_line(t, "from text");
  expect_frame(t, "user1 said: from text");
  expect_frame(a, "{\"type\":\"message\",\"id\":1,\"room\":\"lobby\","
                  "\"from\":\"user1\",\"text\":\"from text\",\"ts\":T}");
  send_line(a, "{\"type\":\"history\",\"room\":\"lobby\",\"limit\":1}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"lobby\",\"messages\":["
                  "{\"type\":\"message\",\"id\":1,\"room\":\"lobby\","
                  "\"from\":\"user1\",\"text\":\"from text\",\"ts\":T}],"
                  "\"complete\":true}");
  /* Closing: left to the others of every room, in each dialect. */
  close(a);
  expect_frame(t, "* neo left lobby");
  expect_frame(b, "{\"type\":\"message\",\"id\":1,\"room\":\"lobby\","
                  "\"from\":\"user1\",\"text\":\"from text\",\"ts\":T}");
  expect_frame(b, "{\"type\":\"left\",\"room\":\"lobby\",\"name\":\"neo\","
                  "\"ts\":T}");
  expect_frame(b, "{\"type\":\"left\",\"room\":\"x\",\"name\":\"neo\","
                  "\"ts\":T}");
  close(b);
  close(t);
}

/* History of 3, rate 1/s with a burst of 2. */
Test(live, history_window_and_rate, .init = setup_small, .fini = teardown) {
  int a = json_client(), i;
  uint8_t buf[1024];
  int op;
  expect_frame(a, "{\"type\":\"welcome\",\"name\":\"user1\",\"server\":"
                  "\"test/1\",\"limits\":{\"text\":100,\"rate\":1}}");
  send_line(a, "{\"type\":\"join\",\"room\":\"r\"}");
  for (i = 0; i < 3; i++)
    client_recv(a, &op, buf, sizeof(buf));
  send_line(a, "{\"type\":\"say\",\"room\":\"r\",\"text\":\"1\"}");
  send_line(a, "{\"type\":\"say\",\"room\":\"r\",\"text\":\"2\"}");
  send_line(a,
            "{\"type\":\"say\",\"room\":\"r\",\"text\":\"3\",\"ref\":\"x\"}");
  for (i = 0; i < 4; i++)
    client_recv(a, &op, buf, sizeof(buf)); /* 2 messages, 2 acks */
  expect_frame(a, "{\"type\":\"error\",\"code\":\"rate_limited\","
                  "\"message\":\"rate limited\",\"ref\":\"x\"}");
  send_line(a, "{\"type\":\"whisper\",\"to\":\"user1\",\"text\":\"me\"}");
  expect_frame(a, "{\"type\":\"error\",\"code\":\"rate_limited\","
                  "\"message\":\"rate limited\"}");
  usleep(2100000); /* two tokens back */
  send_line(a, "{\"type\":\"say\",\"room\":\"r\",\"text\":\"4\"}");
  send_line(a, "{\"type\":\"say\",\"room\":\"r\",\"text\":\"5\"}");
  for (i = 0; i < 4; i++)
    client_recv(a, &op, buf, sizeof(buf));
  /* The refused say got no id: ids 1-4 were given, 2-4 are kept, so a
   * recovery from 0 has lost id 1. */
  send_line(a, "{\"type\":\"join\",\"room\":\"r\",\"since\":0}");
  expect_frame(a, "{\"type\":\"members\",\"room\":\"r\",\"names\":"
                  "[\"user1\"]}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"r\",\"messages\":["
                  "{\"type\":\"message\",\"id\":2,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"2\",\"ts\":T},"
                  "{\"type\":\"message\",\"id\":3,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"4\",\"ts\":T},"
                  "{\"type\":\"message\",\"id\":4,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"5\",\"ts\":T}],\"complete\":false}");
  send_line(a, "{\"type\":\"join\",\"room\":\"r\",\"since\":1}");
  skip_frames(a, 1);
  expect_frame(a, "{\"type\":\"history\",\"room\":\"r\",\"messages\":["
                  "{\"type\":\"message\",\"id\":2,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"2\",\"ts\":T},"
                  "{\"type\":\"message\",\"id\":3,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"4\",\"ts\":T},"
                  "{\"type\":\"message\",\"id\":4,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"5\",\"ts\":T}],\"complete\":true}");
  send_line(a, "{\"type\":\"history\",\"room\":\"r\",\"before\":4,"
               "\"limit\":1}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"r\",\"messages\":["
                  "{\"type\":\"message\",\"id\":3,\"room\":\"r\",\"from\":"
                  "\"user1\",\"text\":\"4\",\"ts\":T}],\"complete\":false}");
  send_line(a, "{\"type\":\"history\",\"room\":\"r\",\"before\":0}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"r\",\"messages\":[],"
                  "\"complete\":true}");
  send_line(a, "{\"type\":\"history\",\"room\":\"nope\"}");
  expect_frame(a, "{\"type\":\"history\",\"room\":\"nope\",\"messages\":[],"
                  "\"complete\":true}");
  expect_nothing(a);
  close(a);
}
