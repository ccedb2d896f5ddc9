/*
 * fuzz_json - the JSON dialect's request parser (wschat__chat_req_parse in
 * lib/chat/message.c) and the replies built from what it returns.
 *
 * The whole input is one frame. A request the parser accepts must carry
 * exactly the fields its type needs, with the values PROTOCOL.md allows
 * (valid room and user names, text of 1..max_text bytes, a history limit
 * of 1..200, a ref of at most 64 bytes); a refused one must have an error
 * code and message. The events and replies the server would send back are
 * then encoded and read again with jansson, and must hold the same text
 * and ref, NUL bytes included.
 */
#include <jansson.h>
#include <string.h>

#include "chat/message.h"
#include "fuzz_util.h"

/* A small limit, so that too_long is within reach of short inputs. */
#define MAX_TEXT 64

/* obj[key] is a string equal to p[0..n). */
static int has_string(json_t *obj, const char *key, const char *p, size_t n) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) && json_string_length(v) == n &&
         memcmp(json_string_value(v), p, n) == 0;
}

/* Encode with fn's result in b, read it back, return the document. */
static json_t *reread(wschat__chat_buf *b) {
  json_t *doc;
  FUZZ_CHECK(!b->is_failed && b->data != NULL);
  doc = json_loadb(b->data, b->len, JSON_ALLOW_NUL, NULL);
  FUZZ_CHECK(json_is_object(doc));
  return doc;
}

static void check_ok(const wschat__chat_req *req) {
  wschat__chat_buf b;
  json_t *doc;
  FUZZ_CHECK(req->type != WSCHAT__CHAT_REQ_NONE);
  FUZZ_CHECK(req->err_msg == NULL);
  if (req->room != NULL) {
    FUZZ_CHECK(req->room_len == strlen(req->room));
    FUZZ_CHECK(wschat__chat_valid_room(req->room, req->room_len));
  }
  if (req->type == WSCHAT__CHAT_REQ_NICK ||
      req->type == WSCHAT__CHAT_REQ_WHISPER) {
    FUZZ_CHECK(req->name != NULL && req->name_len == strlen(req->name));
    FUZZ_CHECK(wschat__chat_valid_name(req->name, req->name_len));
  }
  if (req->type == WSCHAT__CHAT_REQ_SAY ||
      req->type == WSCHAT__CHAT_REQ_WHISPER) {
    FUZZ_CHECK(req->text != NULL);
    FUZZ_CHECK(req->text_len >= 1 && req->text_len <= MAX_TEXT);
  } else {
    FUZZ_CHECK(req->text == NULL);
  }
  switch (req->type) {
  case WSCHAT__CHAT_REQ_JOIN:
  case WSCHAT__CHAT_REQ_LEAVE:
  case WSCHAT__CHAT_REQ_SAY:
  case WSCHAT__CHAT_REQ_HISTORY:
  case WSCHAT__CHAT_REQ_WHO:
    FUZZ_CHECK(req->room != NULL);
    break;
  default:
    FUZZ_CHECK(req->room == NULL);
  }
  if (req->type == WSCHAT__CHAT_REQ_HISTORY)
    FUZZ_CHECK(req->limit >= 1 && req->limit <= WSCHAT__CHAT_LIMIT_MAX);
  if (req->has_since || req->has_before)
    FUZZ_CHECK(req->type == WSCHAT__CHAT_REQ_JOIN ||
               req->type == WSCHAT__CHAT_REQ_HISTORY);

  /* What the server sends for it holds the same strings. */
  wschat__chat_buf_init(&b);
  if (req->type == WSCHAT__CHAT_REQ_SAY) {
    FUZZ_CHECK(wschat__chat_json_message(&b, 7, req->room, "user1", req->text,
                                         req->text_len, 1) == 0);
    doc = reread(&b);
    FUZZ_CHECK(has_string(doc, "text", req->text, req->text_len));
    FUZZ_CHECK(has_string(doc, "room", req->room, req->room_len));
    json_decref(doc);
  } else if (req->type == WSCHAT__CHAT_REQ_WHISPER) {
    FUZZ_CHECK(wschat__chat_json_whisper(&b, "user1", req->name, req->text,
                                         req->text_len, 1) == 0);
    doc = reread(&b);
    FUZZ_CHECK(has_string(doc, "text", req->text, req->text_len));
    FUZZ_CHECK(has_string(doc, "to", req->name, req->name_len));
    json_decref(doc);
  } else if (req->type == WSCHAT__CHAT_REQ_NICK) {
    FUZZ_CHECK(wschat__chat_json_renamed(&b, "user1", req->name, 1) == 0);
    doc = reread(&b);
    FUZZ_CHECK(has_string(doc, "to", req->name, req->name_len));
    json_decref(doc);
  }
  wschat__chat_buf_free(&b);
  if (req->has_ref) {
    wschat__chat_buf_init(&b);
    FUZZ_CHECK(wschat__chat_json_ack(&b, req->ref, req->ref_len, 1, 7) == 0);
    doc = reread(&b);
    FUZZ_CHECK(has_string(doc, "ref", req->ref, req->ref_len));
    json_decref(doc);
    wschat__chat_buf_free(&b);
  }
}

static void check_refused(const wschat__chat_req *req) {
  wschat__chat_buf b;
  json_t *doc;
  FUZZ_CHECK(req->err_msg != NULL && req->err_msg[0] != '\0');
  FUZZ_CHECK(wschat__chat_err_code(req->err) != NULL);
  /* The parser never decides what needs the server's state. */
  FUZZ_CHECK(req->err != WSCHAT__CHAT_NAME_TAKEN &&
             req->err != WSCHAT__CHAT_NOT_IN_ROOM &&
             req->err != WSCHAT__CHAT_RATE_LIMITED);
  if (req->err == WSCHAT__CHAT_BAD_JSON)
    FUZZ_CHECK(req->type == WSCHAT__CHAT_REQ_NONE && !req->has_ref);
  if (req->err == WSCHAT__CHAT_UNKNOWN_TYPE)
    FUZZ_CHECK(req->type == WSCHAT__CHAT_REQ_NONE);
  if (req->has_ref)
    FUZZ_CHECK(req->ref != NULL && req->ref_len <= WSCHAT__CHAT_REF_MAX);

  wschat__chat_buf_init(&b);
  FUZZ_CHECK(wschat__chat_json_error(&b, req->err, req->err_msg,
                                     req->has_ref ? req->ref : NULL,
                                     req->ref_len) == 0);
  doc = reread(&b);
  FUZZ_CHECK(has_string(doc, "code", wschat__chat_err_code(req->err),
                        strlen(wschat__chat_err_code(req->err))));
  if (req->has_ref)
    FUZZ_CHECK(has_string(doc, "ref", req->ref, req->ref_len));
  else
    FUZZ_CHECK(json_object_get(doc, "ref") == NULL);
  json_decref(doc);
  wschat__chat_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wschat__chat_req req;
  wschat__chat_err err =
      wschat__chat_req_parse((const char *)data, size, MAX_TEXT, &req);
  FUZZ_CHECK(err == req.err);
  if (req.has_ref)
    FUZZ_CHECK(req.ref_len <= WSCHAT__CHAT_REF_MAX);
  if (err == WSCHAT__CHAT_OK)
    check_ok(&req);
  else
    check_refused(&req);
  wschat__chat_req_free(&req);
  return 0;
}
