/*
 * message.c - the built-in chat protocol of PROTOCOL.md: the text dialect
 * (the tutorial's "user3 said: hi") and the JSON dialect (subprotocol
 * wschat.v1.json), with jansson.
 *
 * It is a user of the public API like any application: it registers
 * on_open, on_message and on_close, keeps its per-server settings in the
 * server's user data, and keeps no per-session state at all. A session's
 * dialect is its subprotocol, and a text session's one room is the one
 * room it is a member of, so there is nothing to allocate or free per
 * connection. The only internal thing it touches is the pair of hook
 * fields in struct wschat_server that free its state with the server.
 *
 * The first half is pure (message.h: parse, encode, validate) so that it
 * can be unit-tested and fuzzed without a server; the second half turns
 * requests into calls of the room API.
 *
 * Broadcast rule: an event is encoded once per dialect, each encoding is
 * made into one shared wschat_frame only when the first member of that
 * dialect needs it, and every member gets a reference to it. Nothing is
 * encoded per recipient.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chat/message.h"
#include "core/alloc.h"
#include "wschat.h"

/* Only for srv->chat and srv->chat_free. */
#include "net/net.h"

/* ========================================================================
 * Pure part: names, errors, buffers, encoders, parsers
 * ====================================================================== */

static int is_name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Length-checked, so that a string with a NUL byte inside is refused
 * rather than silently cut. */
static int is_valid_token(const char *s, size_t len, size_t max) {
  size_t i;
  if (s == NULL || len == 0 || len > max)
    return 0;
  for (i = 0; i < len; i++)
    if (!is_name_byte((unsigned char)s[i]))
      return 0;
  return 1;
}

int wschat__chat_valid_name(const char *s, size_t len) {
  return is_valid_token(s, len, WSCHAT__CHAT_NAME_MAX);
}

int wschat__chat_valid_room(const char *s, size_t len) {
  return is_valid_token(s, len, WSCHAT__CHAT_ROOM_MAX);
}

static const struct {
  const char *code;
  const char *text;
} err_table[] = {
    [WSCHAT__CHAT_OK] = {"ok", "ok"},
    [WSCHAT__CHAT_BAD_JSON] = {"bad_json", "not a JSON object"},
    [WSCHAT__CHAT_BAD_REQUEST] = {"bad_request", "bad request"},
    [WSCHAT__CHAT_UNKNOWN_TYPE] = {"unknown_type", "unknown type"},
    [WSCHAT__CHAT_INVALID_NAME] = {"invalid_name", "invalid name"},
    [WSCHAT__CHAT_NAME_TAKEN] = {"name_taken", "name taken"},
    [WSCHAT__CHAT_INVALID_ROOM] = {"invalid_room", "invalid room"},
    [WSCHAT__CHAT_NOT_IN_ROOM] = {"not_in_room", "not in room"},
    [WSCHAT__CHAT_NO_SUCH_USER] = {"no_such_user", "no such user"},
    [WSCHAT__CHAT_TOO_LONG] = {"too_long", "too long"},
    [WSCHAT__CHAT_RATE_LIMITED] = {"rate_limited", "rate limited"},
};

const char *wschat__chat_err_code(wschat__chat_err err) {
  if ((unsigned)err >= sizeof(err_table) / sizeof(err_table[0]))
    return "bad_request";
  return err_table[err].code;
}

const char *wschat__chat_err_text(wschat__chat_err err) {
  if ((unsigned)err >= sizeof(err_table) / sizeof(err_table[0]))
    return "bad request";
  return err_table[err].text;
}

/* ------------------------------------------------------------------------
 * Buffers
 * ---------------------------------------------------------------------- */

void wschat__chat_buf_init(wschat__chat_buf *b) {
  memset(b, 0, sizeof(*b));
}

void wschat__chat_buf_free(wschat__chat_buf *b) {
  wschat__free(b->data);
  wschat__chat_buf_init(b);
}

/* Room for n more bytes and the NUL. */
static int buf_reserve(wschat__chat_buf *b, size_t n) {
  size_t need, cap;
  char *p;
  if (b->is_failed)
    return -1;
  if (n > SIZE_MAX - b->len - 1)
    goto fail;
  need = b->len + n + 1;
  if (need <= b->cap)
    return 0;
  for (cap = b->cap ? b->cap : 256; cap < need; cap *= 2)
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
  if ((p = wschat__realloc(b->data, cap)) == NULL)
    goto fail;
  b->data = p;
  b->cap = cap;
  return 0;
fail:
  b->is_failed = 1;
  return -1;
}

void wschat__chat_buf_add(wschat__chat_buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n) != 0)
    return;
  if (n > 0)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void wschat__chat_buf_adds(wschat__chat_buf *b, const char *s) {
  wschat__chat_buf_add(b, s, strlen(s));
}

/* ------------------------------------------------------------------------
 * JSON encoders
 *
 * Objects are built with jansson (which escapes and checks UTF-8) and
 * dumped straight into the buffer with JSON_COMPACT. jansson keeps keys
 * in insertion order (2.8 and later), so the output is byte-stable and
 * the unit tests compare exact strings.
 * ---------------------------------------------------------------------- */

static int dump_to_buf(const char *data, size_t size, void *arg) {
  wschat__chat_buf *b = arg;
  wschat__chat_buf_add(b, data, size);
  return b->is_failed ? -1 : 0;
}

/* Append obj (which is consumed; NULL means building it failed). */
static int json_append(wschat__chat_buf *b, json_t *obj) {
  if (obj == NULL) {
    b->is_failed = 1;
    return -1;
  }
  if (json_dump_callback(obj, dump_to_buf, b, JSON_COMPACT) != 0)
    b->is_failed = 1;
  json_decref(obj);
  return b->is_failed ? -1 : 0;
}

/* ids and timestamps stay far below 2^63; jansson's integers are
 * signed. */
static json_int_t json_uint(uint64_t v) {
  return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (json_int_t)v;
}

int wschat__chat_json_welcome(wschat__chat_buf *b, const char *name,
                              const char *server, uint64_t max_text,
                              unsigned rate) {
  return json_append(b, json_pack("{s:s, s:s, s:s, s:{s:I, s:I}}", "type",
                                  "welcome", "name", name, "server", server,
                                  "limits", "text", json_uint(max_text), "rate",
                                  (json_int_t)rate));
}

int wschat__chat_json_message(wschat__chat_buf *b, uint64_t id,
                              const char *room, const char *from,
                              const char *text, size_t text_len, uint64_t ts) {
  return json_append(b, json_pack("{s:s, s:I, s:s, s:s, s:s%, s:I}", "type",
                                  "message", "id", json_uint(id), "room", room,
                                  "from", from, "text", text, text_len, "ts",
                                  json_uint(ts)));
}

int wschat__chat_json_whisper(wschat__chat_buf *b, const char *from,
                              const char *to, const char *text, size_t text_len,
                              uint64_t ts) {
  return json_append(b, json_pack("{s:s, s:s, s:s, s:s%, s:I}", "type",
                                  "whisper", "from", from, "to", to, "text",
                                  text, text_len, "ts", json_uint(ts)));
}

int wschat__chat_json_presence(wschat__chat_buf *b, const char *type,
                               const char *room, const char *name,
                               uint64_t ts) {
  return json_append(b, json_pack("{s:s, s:s, s:s, s:I}", "type", type, "room",
                                  room, "name", name, "ts", json_uint(ts)));
}

int wschat__chat_json_renamed(wschat__chat_buf *b, const char *from,
                              const char *to, uint64_t ts) {
  return json_append(b, json_pack("{s:s, s:s, s:s, s:I}", "type", "renamed",
                                  "from", from, "to", to, "ts", json_uint(ts)));
}

int wschat__chat_json_members(wschat__chat_buf *b, const char *room,
                              const char *const *names, size_t count,
                              size_t total) {
  json_t *arr = json_array();
  size_t i;
  for (i = 0; arr != NULL && i < count; i++)
    if (json_array_append_new(arr, json_string(names[i])) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  if (arr == NULL)
    return json_append(b, NULL);
  /* "o" hands arr over to the object, also when packing fails. */
  if (total > count)
    return json_append(b, json_pack("{s:s, s:s, s:o, s:I, s:b}", "type",
                                    "members", "room", room, "names", arr,
                                    "count", json_uint(total), "complete", 0));
  return json_append(b, json_pack("{s:s, s:s, s:o}", "type", "members", "room",
                                  room, "names", arr));
}

int wschat__chat_json_rooms(wschat__chat_buf *b,
                            const wschat__chat_room_count *rooms,
                            size_t count) {
  json_t *arr = json_array();
  size_t i;
  for (i = 0; arr != NULL && i < count; i++)
    if (json_array_append_new(
            arr, json_pack("{s:s, s:I}", "room", rooms[i].room, "members",
                           (json_int_t)rooms[i].members)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  if (arr == NULL)
    return json_append(b, NULL);
  return json_append(b, json_pack("{s:s, s:o}", "type", "rooms", "rooms", arr));
}

int wschat__chat_json_ack(wschat__chat_buf *b, const char *ref, size_t ref_len,
                          int has_id, uint64_t id) {
  json_t *obj = json_pack("{s:s}", "type", "ack");
  if (obj != NULL && ref != NULL &&
      json_object_set_new(obj, "ref", json_stringn(ref, ref_len)) != 0) {
    json_decref(obj);
    obj = NULL;
  }
  if (obj != NULL && has_id &&
      json_object_set_new(obj, "id", json_integer(json_uint(id))) != 0) {
    json_decref(obj);
    obj = NULL;
  }
  return json_append(b, obj);
}

int wschat__chat_json_error(wschat__chat_buf *b, wschat__chat_err err,
                            const char *message, const char *ref,
                            size_t ref_len) {
  json_t *obj = json_pack(
      "{s:s, s:s, s:s}", "type", "error", "code", wschat__chat_err_code(err),
      "message", message != NULL ? message : wschat__chat_err_text(err));
  if (obj != NULL && ref != NULL &&
      json_object_set_new(obj, "ref", json_stringn(ref, ref_len)) != 0) {
    json_decref(obj);
    obj = NULL;
  }
  return json_append(b, obj);
}

/* The stored messages are JSON objects already: a history reply is the
 * head encoded by jansson with its closing brace replaced by the array,
 * so the room name is escaped by the same code as everything else and the
 * messages are never decoded or re-encoded. */
int wschat__chat_json_history_begin(wschat__chat_buf *b, const char *room) {
  if (json_append(
          b, json_pack("{s:s, s:s}", "type", "history", "room", room)) != 0)
    return -1;
  b->len--; /* the '}' */
  wschat__chat_buf_adds(b, ",\"messages\":[");
  return b->is_failed ? -1 : 0;
}

void wschat__chat_json_history_add(wschat__chat_buf *b, const char *message,
                                   size_t len) {
  if (b->is_failed)
    return;
  if (b->data[b->len - 1] != '[')
    wschat__chat_buf_add(b, ",", 1);
  wschat__chat_buf_add(b, message, len);
}

int wschat__chat_json_history_end(wschat__chat_buf *b, int is_complete) {
  wschat__chat_buf_adds(b, is_complete ? "],\"complete\":true}"
                                       : "],\"complete\":false}");
  return b->is_failed ? -1 : 0;
}

/* ------------------------------------------------------------------------
 * Text-dialect encoders
 * ---------------------------------------------------------------------- */

void wschat__text_said(wschat__chat_buf *b, const char *from, const char *text,
                       size_t text_len) {
  wschat__chat_buf_adds(b, from);
  wschat__chat_buf_adds(b, " said: ");
  wschat__chat_buf_add(b, text, text_len);
}

void wschat__text_whispers(wschat__chat_buf *b, const char *from,
                           const char *text, size_t text_len) {
  wschat__chat_buf_adds(b, from);
  wschat__chat_buf_adds(b, " whispers: ");
  wschat__chat_buf_add(b, text, text_len);
}

void wschat__text_presence(wschat__chat_buf *b, const char *verb,
                           const char *room, const char *name) {
  wschat__chat_buf_adds(b, "* ");
  wschat__chat_buf_adds(b, name);
  wschat__chat_buf_adds(b, " ");
  wschat__chat_buf_adds(b, verb);
  wschat__chat_buf_adds(b, " ");
  wschat__chat_buf_adds(b, room);
}

void wschat__text_renamed(wschat__chat_buf *b, const char *from,
                          const char *to) {
  wschat__chat_buf_adds(b, "* ");
  wschat__chat_buf_adds(b, from);
  wschat__chat_buf_adds(b, " is now ");
  wschat__chat_buf_adds(b, to);
}

void wschat__text_who(wschat__chat_buf *b, const char *room,
                      const char *const *names, size_t count, size_t total) {
  char more[48];
  size_t i;
  wschat__chat_buf_adds(b, "* in ");
  wschat__chat_buf_adds(b, room);
  wschat__chat_buf_adds(b, ":");
  for (i = 0; i < count; i++) {
    wschat__chat_buf_adds(b, i == 0 ? " " : ", ");
    wschat__chat_buf_adds(b, names[i]);
  }
  if (total > count) {
    snprintf(more, sizeof(more), " (and %zu more)", total - count);
    wschat__chat_buf_adds(b, more);
  }
}

void wschat__text_rooms(wschat__chat_buf *b,
                        const wschat__chat_room_count *rooms, size_t count) {
  char num[24];
  size_t i;
  wschat__chat_buf_adds(b, "* rooms:");
  if (count == 0)
    wschat__chat_buf_adds(b, " none");
  for (i = 0; i < count; i++) {
    wschat__chat_buf_adds(b, i == 0 ? " " : ", ");
    wschat__chat_buf_adds(b, rooms[i].room);
    snprintf(num, sizeof(num), " (%u)", rooms[i].members);
    wschat__chat_buf_adds(b, num);
  }
}

void wschat__text_error(wschat__chat_buf *b, const char *what, const char *arg,
                        size_t arg_len) {
  wschat__chat_buf_adds(b, "* error: ");
  wschat__chat_buf_adds(b, what);
  if (arg != NULL)
    wschat__chat_buf_add(b, arg, arg_len);
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Byte order, not case-insensitive: clients (and the tests) compare the
 * list with a plain sort, and names are ASCII. */
void wschat__chat_sort_names(const char **names, size_t count) {
  if (count > 1)
    qsort(names, count, sizeof(*names), compare_names);
}

/* ------------------------------------------------------------------------
 * Text-dialect line parser
 * ---------------------------------------------------------------------- */

const char wschat__text_help[] =
    "* commands:\n"
    "* /nick NAME - take the name NAME\n"
    "* /join ROOM - leave this room and enter ROOM (created on first use)\n"
    "* /who - who is in this room\n"
    "* /rooms - the rooms in use and how many are in each\n"
    "* /msg NAME TEXT - send TEXT to NAME alone\n"
    "* /help - this list\n"
    "* a line starting with // says it with one / less";

/* What follows a command word. */
typedef enum { ARGS_NONE, ARGS_WORD, ARGS_WORD_REST } args_kind;

static const struct {
  const char *word;
  wschat__text_cmd_type type;
  args_kind args;
  const char *usage;
} commands[] = {
    {"/nick", WSCHAT__TEXT_NICK, ARGS_WORD, "/nick NAME"},
    {"/join", WSCHAT__TEXT_JOIN, ARGS_WORD, "/join ROOM"},
    {"/who", WSCHAT__TEXT_WHO, ARGS_NONE, "/who"},
    {"/rooms", WSCHAT__TEXT_ROOMS, ARGS_NONE, "/rooms"},
    {"/msg", WSCHAT__TEXT_MSG, ARGS_WORD_REST, "/msg NAME TEXT"},
    {"/help", WSCHAT__TEXT_HELP, ARGS_NONE, "/help"},
};

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *p, size_t i, size_t len) {
  while (i < len && is_blank(p[i]))
    i++;
  return i;
}

static size_t word_end(const char *p, size_t i, size_t len) {
  while (i < len && !is_blank(p[i]))
    i++;
  return i;
}

/* Fill cmd's arguments from line[i..len) according to kind; 0 or -1 for
 * a usage error. */
static int parse_args(const char *line, size_t i, size_t len, args_kind kind,
                      wschat__text_cmd *cmd) {
  size_t end;
  i = skip_blanks(line, i, len);
  if (kind == ARGS_NONE)
    return i == len ? 0 : -1;
  if (i == len)
    return -1;
  end = word_end(line, i, len);
  cmd->arg = line + i;
  cmd->arg_len = end - i;
  i = skip_blanks(line, end, len);
  if (kind == ARGS_WORD)
    return i == len ? 0 : -1;
  if (i == len)
    return -1; /* /msg NAME without text */
  cmd->text = line + i;
  cmd->text_len = len - i;
  return 0;
}

void wschat__text_parse(const char *line, size_t len, wschat__text_cmd *cmd) {
  size_t wlen, k;
  memset(cmd, 0, sizeof(*cmd));
  if (len == 0)
    return; /* WSCHAT__TEXT_IGNORE */
  if (line[0] != '/' || (len >= 2 && line[1] == '/')) {
    cmd->type = WSCHAT__TEXT_SAY;
    cmd->text = line[0] == '/' ? line + 1 : line;
    cmd->text_len = line[0] == '/' ? len - 1 : len;
    return;
  }
  wlen = word_end(line, 0, len);
  for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
    if (strlen(commands[k].word) != wlen ||
        memcmp(commands[k].word, line, wlen) != 0)
      continue;
    cmd->type = commands[k].type;
    if (parse_args(line, wlen, len, commands[k].args, cmd) != 0) {
      memset(cmd, 0, sizeof(*cmd));
      cmd->type = WSCHAT__TEXT_USAGE;
      cmd->usage = commands[k].usage;
    }
    return;
  }
  cmd->type = WSCHAT__TEXT_UNKNOWN;
  cmd->arg = line;
  cmd->arg_len = wlen;
}

/* ------------------------------------------------------------------------
 * JSON request parser
 * ---------------------------------------------------------------------- */

static wschat__chat_err req_fail(wschat__chat_req *req, wschat__chat_err err,
                                 const char *msg) {
  req->err = err;
  req->err_msg = msg;
  return err;
}

/* 1 if key holds a string, 0 if it is absent, -1 if it holds another
 * type (null included). */
static int get_string(json_t *obj, const char *key, const char **s,
                      size_t *len) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_string(v))
    return -1;
  *s = json_string_value(v);
  *len = json_string_length(v);
  return 1;
}

/* An optional id: absent, or an integer >= 0. 0 or -1 (bad). */
static int get_id(json_t *obj, const char *key, int *has, uint64_t *out) {
  json_t *v = json_object_get(obj, key);
  *has = 0;
  if (v == NULL)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return -1;
  *has = 1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static const struct {
  const char *name;
  wschat__chat_req_type type;
} req_types[] = {
    {"join", WSCHAT__CHAT_REQ_JOIN}, {"leave", WSCHAT__CHAT_REQ_LEAVE},
    {"say", WSCHAT__CHAT_REQ_SAY},   {"whisper", WSCHAT__CHAT_REQ_WHISPER},
    {"nick", WSCHAT__CHAT_REQ_NICK}, {"history", WSCHAT__CHAT_REQ_HISTORY},
    {"who", WSCHAT__CHAT_REQ_WHO},   {"rooms", WSCHAT__CHAT_REQ_ROOMS},
};

/* The ref, which must be known first so that every later error can echo
 * it. An invalid ref is never echoed. */
static wschat__chat_err parse_ref(wschat__chat_req *req) {
  int got = get_string(req->root, "ref", &req->ref, &req->ref_len);
  if (got < 0 || (got > 0 && req->ref_len > WSCHAT__CHAT_REF_MAX))
    return req_fail(req, WSCHAT__CHAT_BAD_REQUEST,
                    "\"ref\" must be a string of at most 64 bytes");
  req->has_ref = got > 0;
  return WSCHAT__CHAT_OK;
}

static wschat__chat_err parse_type(wschat__chat_req *req) {
  const char *type;
  size_t len, k;
  if (get_string(req->root, "type", &type, &len) <= 0)
    return req_fail(req, WSCHAT__CHAT_BAD_REQUEST, "\"type\" must be a string");
  for (k = 0; k < sizeof(req_types) / sizeof(req_types[0]); k++)
    if (strlen(req_types[k].name) == len &&
        memcmp(req_types[k].name, type, len) == 0) {
      req->type = req_types[k].type;
      return WSCHAT__CHAT_OK;
    }
  return req_fail(req, WSCHAT__CHAT_UNKNOWN_TYPE, "unknown request type");
}

/* A required string field; msg is the error's message. */
static int need_string(wschat__chat_req *req, const char *key, const char **s,
                       size_t *len, const char *msg) {
  if (get_string(req->root, key, s, len) > 0)
    return 0;
  req_fail(req, WSCHAT__CHAT_BAD_REQUEST, msg);
  return -1;
}

static int parse_limit(wschat__chat_req *req) {
  json_t *v = json_object_get(req->root, "limit");
  json_int_t n;
  req->limit = WSCHAT__CHAT_LIMIT_DEFAULT;
  if (v == NULL)
    return 0;
  n = json_is_integer(v) ? json_integer_value(v) : 0;
  if (n < 1 || n > WSCHAT__CHAT_LIMIT_MAX) {
    req_fail(req, WSCHAT__CHAT_BAD_REQUEST,
             "\"limit\" must be an integer from 1 to 200");
    return -1;
  }
  req->limit = (unsigned)n;
  return 0;
}

/* Presence and type of every field the request's type needs. */
static wschat__chat_err parse_fields(wschat__chat_req *req) {
  static const char room_msg[] = "\"room\" must be a string";
  static const char text_msg[] = "\"text\" must be a string";
  size_t *room_len = &req->room_len;
  switch (req->type) {
  case WSCHAT__CHAT_REQ_JOIN:
    if (need_string(req, "room", &req->room, room_len, room_msg) != 0)
      break;
    if (get_id(req->root, "since", &req->has_since, &req->since) != 0)
      req_fail(req, WSCHAT__CHAT_BAD_REQUEST,
               "\"since\" must be a message id (an integer >= 0)");
    break;
  case WSCHAT__CHAT_REQ_LEAVE:
  case WSCHAT__CHAT_REQ_WHO:
    need_string(req, "room", &req->room, room_len, room_msg);
    break;
  case WSCHAT__CHAT_REQ_SAY:
    if (need_string(req, "room", &req->room, room_len, room_msg) == 0)
      need_string(req, "text", &req->text, &req->text_len, text_msg);
    break;
  case WSCHAT__CHAT_REQ_WHISPER:
    if (need_string(req, "to", &req->name, &req->name_len,
                    "\"to\" must be a string") == 0)
      need_string(req, "text", &req->text, &req->text_len, text_msg);
    break;
  case WSCHAT__CHAT_REQ_NICK:
    need_string(req, "name", &req->name, &req->name_len,
                "\"name\" must be a string");
    break;
  case WSCHAT__CHAT_REQ_HISTORY:
    if (need_string(req, "room", &req->room, room_len, room_msg) != 0)
      break;
    if (get_id(req->root, "before", &req->has_before, &req->before) != 0)
      req_fail(req, WSCHAT__CHAT_BAD_REQUEST,
               "\"before\" must be a message id (an integer >= 0)");
    else
      parse_limit(req);
    break;
  default:
    break;
  }
  return req->err;
}

/* The values, once every field has the right type. Lengths, not
 * strlen(): a string may hold a NUL byte, and must then be refused rather
 * than read as its first part. */
static wschat__chat_err check_values(wschat__chat_req *req, size_t max_text) {
  static const char room_msg[] = "a room is 1-64 bytes of A-Z a-z 0-9 _ . -";
  static const char name_msg[] = "a name is 1-32 bytes of A-Z a-z 0-9 _ . -";
  if (req->room != NULL && !wschat__chat_valid_room(req->room, req->room_len))
    return req_fail(req, WSCHAT__CHAT_INVALID_ROOM, room_msg);
  if (req->type == WSCHAT__CHAT_REQ_NICK &&
      !wschat__chat_valid_name(req->name, req->name_len))
    return req_fail(req, WSCHAT__CHAT_INVALID_NAME, name_msg);
  /* A `to` that cannot be a name is nobody's. */
  if (req->type == WSCHAT__CHAT_REQ_WHISPER &&
      !wschat__chat_valid_name(req->name, req->name_len))
    return req_fail(req, WSCHAT__CHAT_NO_SUCH_USER, "no such user");
  if (req->text != NULL && req->text_len == 0)
    return req_fail(req, WSCHAT__CHAT_BAD_REQUEST, "\"text\" is empty");
  if (req->text != NULL && req->text_len > max_text)
    return req_fail(req, WSCHAT__CHAT_TOO_LONG,
                    "\"text\" is longer than the server's limit");
  return WSCHAT__CHAT_OK;
}

wschat__chat_err wschat__chat_req_parse(const char *data, size_t len,
                                        size_t max_text,
                                        wschat__chat_req *req) {
  json_error_t jerr;
  memset(req, 0, sizeof(*req));
  req->root = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (req->root == NULL) {
    /* Valid JSON with a number jansson cannot hold is not a syntax
     * error: the request is refused as a bad field. */
    if (json_error_code(&jerr) == json_error_numeric_overflow)
      return req_fail(req, WSCHAT__CHAT_BAD_REQUEST, "number out of range");
    return req_fail(req, WSCHAT__CHAT_BAD_JSON, "not valid JSON");
  }
  if (!json_is_object(req->root))
    return req_fail(req, WSCHAT__CHAT_BAD_JSON, "not a JSON object");
  if (parse_ref(req) != WSCHAT__CHAT_OK || parse_type(req) != WSCHAT__CHAT_OK ||
      parse_fields(req) != WSCHAT__CHAT_OK)
    return req->err;
  return check_values(req, max_text);
}

void wschat__chat_req_free(wschat__chat_req *req) {
  json_decref(req->root);
  req->root = NULL;
}

/* ========================================================================
 * The protocol on a server
 * ====================================================================== */

typedef struct chat_state {
  size_t max_text;
  unsigned presence_limit; /* 0: announce presence in rooms of any size */
  char *server_name;
} chat_state;

static void chat_state_free(void *p) {
  chat_state *st = p;
  if (st != NULL)
    wschat__free(st->server_name);
  wschat__free(st);
}

/* The server's chat state, or NULL when chat is not enabled: the hook
 * function identifies the owner of srv->chat. */
static chat_state *chat_state_of(wschat_server *srv) {
  if (srv == NULL || srv->chat_free != chat_state_free)
    return NULL;
  return srv->chat;
}

static unsigned presence_limit_of(const wschat_session *s) {
  chat_state *st = chat_state_of(wschat_session_server(s));
  return st != NULL ? st->presence_limit : 0;
}

static int is_json_session(const wschat_session *s) {
  const char *p = wschat_session_subprotocol(s);
  return p != NULL && strcmp(p, WSCHAT__CHAT_SUBPROTOCOL) == 0;
}

/* Milliseconds since the epoch: clients compare ts with wall clocks, so
 * not the loop's monotonic time. */
static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Out of memory while serving s: end it the way DESIGN.md says (1011)
 * rather than leave it with half an answer. */
static void fail_internal(wschat_session *s) {
  wschat_session_close(s, WSCHAT_CLOSE_INTERNAL, "out of memory");
}

/* Send a reply built in b to s alone, and free b. */
static void send_buf(wschat_session *s, wschat__chat_buf *b) {
  if (b->is_failed ||
      wschat_session_send_text(s, b->data, b->len) == WSCHAT_ENOMEM)
    fail_internal(s);
  wschat__chat_buf_free(b);
}

static void send_literal(wschat_session *s, const char *line) {
  wschat_session_send_text(s, line, strlen(line));
}

/* ------------------------------------------------------------------------
 * Events for many recipients
 * ---------------------------------------------------------------------- */

/* One event in both dialects. Each encoding becomes a shared frame when
 * the first member of its dialect needs it, so a room of one dialect
 * never pays for the other's frame. */
typedef struct chat_event {
  wschat__chat_buf enc[2]; /* [0] text line, [1] JSON */
  wschat_frame *frame[2];  /* made on first use */
  const wschat_session *except;
  const char *json_proto; /* the JSON dialect's name as sessions hold it */
} chat_event;

static void event_init(chat_event *ev) {
  memset(ev, 0, sizeof(*ev));
  wschat__chat_buf_init(&ev->enc[0]);
  wschat__chat_buf_init(&ev->enc[1]);
}

static void event_free(chat_event *ev) {
  int i;
  for (i = 0; i < 2; i++) {
    wschat_frame_release(ev->frame[i]);
    wschat__chat_buf_free(&ev->enc[i]);
  }
}

static void event_send(chat_event *ev, wschat_session *s) {
  const char *p = wschat_session_subprotocol(s);
  int d;
  if (s == ev->except)
    return;
  /* Sessions of one server share the string their subprotocol points to:
   * compare its text once per event, then its address. */
  if (p == NULL)
    d = 0;
  else if (p == ev->json_proto)
    d = 1;
  else if ((d = strcmp(p, WSCHAT__CHAT_SUBPROTOCOL) == 0))
    ev->json_proto = p;
  if (ev->frame[d] == NULL &&
      (ev->enc[d].is_failed || ev->enc[d].data == NULL ||
       wschat_frame_new(WSCHAT_TEXT, ev->enc[d].data, ev->enc[d].len,
                        &ev->frame[d]) != 0)) {
    ev->frame[d] = NULL;
    fail_internal(s);
    return;
  }
  if (wschat_session_send_frame(s, ev->frame[d]) == WSCHAT_ENOMEM)
    fail_internal(s);
}

static void event_member_cb(wschat_session *s, void *arg) {
  event_send(arg, s);
}

static void event_to_room(chat_event *ev, wschat_room *r) {
  wschat_room_foreach_member(r, event_member_cb, ev);
}

/*
 * "joined" / "left" about `who` to the room's members (except one, or
 * NULL). In a room with more members than the presence limit, only `who`
 * itself hears it (when it is a member and not the exception): telling
 * every member of an n-member room about every arrival and departure is
 * n^2 deliveries when the room fills or empties, and at 10,000 members a
 * mass disconnect queued ~10^8 references in one loop turn.
 */
static void announce_presence(wschat_room *r, const char *verb,
                              wschat_session *who,
                              const wschat_session *except) {
  unsigned limit = presence_limit_of(who);
  int is_member = wschat_room_is_member(r, who);
  /* The room's size counting `who`, so that a member's arrival and its
   * departure are judged alike. */
  unsigned size = wschat_room_member_count(r) + (is_member ? 0 : 1);
  int is_large = limit > 0 && size > limit;
  chat_event ev;
  if (is_large && (who == except || !is_member))
    return;
  event_init(&ev);
  ev.except = except;
  wschat__chat_json_presence(&ev.enc[1], verb, wschat_room_name(r),
                             wschat_session_name(who), now_ms());
  wschat__text_presence(&ev.enc[0], verb, wschat_room_name(r),
                        wschat_session_name(who));
  if (is_large)
    event_send(&ev, who);
  else
    event_to_room(&ev, r);
  event_free(&ev);
}

/*
 * Store a message in r's history and send it to every member, the sender
 * included. The stored entry is the JSON `message` object itself, so
 * history replies splice it in unchanged; its id must be inside it, so it
 * is encoded with the id history_add will assign, the one after
 * wschat_room_last_id() (ids count up by one per room). Returns 0 with
 * *id set, or -1 (the sender has been closed for lack of memory).
 */
static int room_say(wschat_room *r, wschat_session *from, const char *text,
                    size_t len, uint64_t *id) {
  const char *name = wschat_session_name(from);
  chat_event ev;
  event_init(&ev);
  if (wschat__chat_json_message(&ev.enc[1], wschat_room_last_id(r) + 1,
                                wschat_room_name(r), name, text, len,
                                now_ms()) != 0 ||
      wschat_room_history_add(r, ev.enc[1].data, ev.enc[1].len, id) != 0) {
    event_free(&ev);
    fail_internal(from);
    return -1;
  }
  wschat__text_said(&ev.enc[0], name, text, len);
  event_to_room(&ev, r);
  event_free(&ev);
  return 0;
}

/* The same whisper to the target and the sender (once if they are the
 * same session), each in its own dialect. */
static void deliver_whisper(wschat_session *from, wschat_session *to,
                            const char *text, size_t len) {
  const char *from_name = wschat_session_name(from);
  chat_event ev;
  event_init(&ev);
  wschat__chat_json_whisper(&ev.enc[1], from_name, wschat_session_name(to),
                            text, len, now_ms());
  wschat__text_whispers(&ev.enc[0], from_name, text, len);
  event_send(&ev, to);
  if (from != to)
    event_send(&ev, from);
  event_free(&ev);
}

/* ------------------------------------------------------------------------
 * Renames: every member of every room the renamed session is in hears it
 * once, however many of those rooms it shares.
 * ---------------------------------------------------------------------- */

typedef struct room_list {
  wschat_room **rooms;
  size_t count;
  size_t cap;
  int is_failed;
} room_list;

static void room_list_add(wschat_room *r, void *arg) {
  room_list *l = arg;
  wschat_room **p;
  if (l->is_failed)
    return;
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    if ((p = wschat__realloc(l->rooms, cap * sizeof(*p))) == NULL) {
      l->is_failed = 1;
      return;
    }
    l->rooms = p;
    l->cap = cap;
  }
  l->rooms[l->count++] = r;
}

typedef struct rename_walk {
  chat_event ev;
  room_list rooms; /* the renamed session's */
  size_t current;  /* index of the room being walked */
} rename_walk;

static void rename_member_cb(wschat_session *s, void *arg) {
  rename_walk *w = arg;
  size_t j;
  /* Members of an earlier room of the list have heard it already. A
   * session is in few rooms, so this stays cheap. */
  for (j = 0; j < w->current; j++)
    if (wschat_room_is_member(w->rooms.rooms[j], s))
      return;
  event_send(&w->ev, s);
}

/* Tell everyone who shares a room with s (s itself excluded: it gets the
 * reply to its request instead) that old_name is now s's name. */
static void announce_rename(wschat_session *s, const char *old_name) {
  rename_walk w;
  const char *name = wschat_session_name(s);
  memset(&w, 0, sizeof(w));
  wschat_session_foreach_room(s, room_list_add, &w.rooms);
  if (w.rooms.is_failed) {
    wschat__free(w.rooms.rooms);
    fail_internal(s);
    return;
  }
  event_init(&w.ev);
  w.ev.except = s;
  wschat__chat_json_renamed(&w.ev.enc[1], old_name, name, now_ms());
  wschat__text_renamed(&w.ev.enc[0], old_name, name);
  for (w.current = 0; w.current < w.rooms.count; w.current++)
    wschat_room_foreach_member(w.rooms.rooms[w.current], rename_member_cb, &w);
  event_free(&w.ev);
  wschat__free(w.rooms.rooms);
}

/* Rename s; 0, or the protocol's error. old (33 bytes) gets the previous
 * name. Renaming to one's own name changes nothing and tells nobody. */
static wschat__chat_err rename_session(wschat_session *s, const char *name,
                                       char *old) {
  int rc;
  snprintf(old, WSCHAT__CHAT_NAME_MAX + 1, "%s", wschat_session_name(s));
  if (strcmp(old, name) == 0)
    return WSCHAT__CHAT_OK;
  rc = wschat_session_set_name(s, name);
  if (rc == WSCHAT_ENAMETAKEN)
    return WSCHAT__CHAT_NAME_TAKEN;
  if (rc != 0)
    return WSCHAT__CHAT_INVALID_NAME; /* EINVAL; ECLOSED is moot */
  announce_rename(s, old);
  return WSCHAT__CHAT_OK;
}

/* ------------------------------------------------------------------------
 * Listings: members of a room, rooms of the server
 * ---------------------------------------------------------------------- */

typedef struct name_list {
  const char **names; /* borrowed from the sessions */
  size_t count;
  size_t cap;
  size_t max; /* list at most this many (0: all) */
  size_t total;
  int is_failed;
} name_list;

static void name_list_add(wschat_session *s, void *arg) {
  name_list *l = arg;
  const char **p;
  l->total++;
  if (l->is_failed || (l->max > 0 && l->count == l->max))
    return;
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    if ((p = wschat__realloc(l->names, cap * sizeof(*p))) == NULL) {
      l->is_failed = 1;
      return;
    }
    l->names = p;
    l->cap = cap;
  }
  l->names[l->count++] = wschat_session_name(s);
}

/* The sorted member names of r (none when r is NULL); -1 out of memory.
 * With max > 0, only the first max members in join order are listed
 * (l->total still counts them all): a room over the presence limit would
 * otherwise cost every joiner a reply, and the server an encode, that
 * grows with the room. */
static int room_names(wschat_room *r, size_t max, name_list *l) {
  memset(l, 0, sizeof(*l));
  l->max = max;
  if (r != NULL)
    wschat_room_foreach_member(r, name_list_add, l);
  if (l->is_failed) {
    wschat__free(l->names);
    return -1;
  }
  wschat__chat_sort_names(l->names, l->count);
  return 0;
}

typedef struct count_list {
  wschat__chat_room_count *rooms;
  size_t count;
  size_t cap;
  int is_failed;
} count_list;

/* Only rooms with members: empty ones are history, not conversation. */
static void count_list_add(wschat_room *r, void *arg) {
  count_list *l = arg;
  wschat__chat_room_count *p;
  if (l->is_failed || wschat_room_member_count(r) == 0)
    return;
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    if ((p = wschat__realloc(l->rooms, cap * sizeof(*p))) == NULL) {
      l->is_failed = 1;
      return;
    }
    l->rooms = p;
    l->cap = cap;
  }
  l->rooms[l->count].room = wschat_room_name(r);
  l->rooms[l->count].members = wschat_room_member_count(r);
  l->count++;
}

/* Non-empty rooms in creation order; -1 out of memory. */
static int server_rooms(wschat_server *srv, count_list *l) {
  memset(l, 0, sizeof(*l));
  wschat_server_foreach_room(srv, count_list_add, l);
  if (l->is_failed) {
    wschat__free(l->rooms);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * JSON dialect
 * ---------------------------------------------------------------------- */

static void reply_error(wschat_session *s, const wschat__chat_req *req,
                        wschat__chat_err err, const char *msg) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  wschat__chat_json_error(&b, err, msg, req->has_ref ? req->ref : NULL,
                          req->ref_len);
  send_buf(s, &b);
}

static void reply_ack(wschat_session *s, const wschat__chat_req *req,
                      int has_id, uint64_t id) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  wschat__chat_json_ack(&b, req->has_ref ? req->ref : NULL, req->ref_len,
                        has_id, id);
  send_buf(s, &b);
}

static void send_members(wschat_session *s, wschat_room *r,
                         const char *room_name) {
  wschat__chat_buf b;
  name_list l;
  if (room_names(r, presence_limit_of(s), &l) != 0) {
    fail_internal(s);
    return;
  }
  wschat__chat_buf_init(&b);
  wschat__chat_json_members(&b, room_name, l.names, l.count, l.total);
  wschat__free(l.names);
  send_buf(s, &b);
}

static void history_entry_cb(wschat_room *r, uint64_t id, const char *data,
                             size_t len, void *arg) {
  (void)r;
  (void)id;
  wschat__chat_json_history_add(arg, data, len);
}

/* Whether messages after `since` were dropped from r's history before
 * they could be recovered: the oldest stored id is past since + 1, or
 * nothing is stored although newer ids were assigned. */
static int is_since_incomplete(const wschat_room *r, uint64_t since) {
  uint64_t first = wschat_room_first_id(r);
  if (since >= wschat_room_last_id(r))
    return 0;
  return first == 0 || first > since + 1;
}

/* Sizes of the entries a history query would return, oldest first. */
typedef struct history_sizes {
  uint64_t first_id;
  size_t count;
  size_t cap;
  size_t *len;
  int is_oom;
} history_sizes;

static void history_size_cb(wschat_room *r, uint64_t id, const char *data,
                            size_t len, void *arg) {
  history_sizes *hs = arg;
  (void)r;
  (void)data;
  if (hs->is_oom)
    return;
  if (hs->count == 0)
    hs->first_id = id;
  if (hs->count == hs->cap) {
    size_t cap = hs->cap ? hs->cap * 2 : 64;
    size_t *grown = wschat__realloc(hs->len, cap * sizeof(*grown));
    if (grown == NULL) {
      hs->is_oom = 1;
      return;
    }
    hs->len = grown;
    hs->cap = cap;
  }
  hs->len[hs->count++] = len;
}

/*
 * One reply must fit the session's output bound, or a client recovering a
 * long gap would be closed as a slow consumer by its own history. So a
 * reply holds at most half of max_queued of messages: the newest that fit.
 * Returns the `after` that selects them (ids are consecutive), and sets
 * *is_cut when older ones in the range were left out.
 */
static uint64_t history_fit(wschat_session *s, wschat_room *r, uint64_t after,
                            uint64_t before, unsigned limit, int *is_cut) {
  uint64_t budget = wschat_server_get_max_queued(wschat_session_server(s)) / 2;
  history_sizes hs = {0, 0, 0, NULL, 0};
  uint64_t total = 0;
  size_t keep = 0;
  *is_cut = 0;
  wschat_room_history(r, after, before, limit, history_size_cb, &hs, NULL);
  while (keep < hs.count && total + hs.len[hs.count - 1 - keep] + 1 <= budget)
    total += hs.len[hs.count - 1 - keep++] + 1;
  if (!hs.is_oom && keep < hs.count) {
    *is_cut = 1;
    after = hs.first_id + (hs.count - keep) - 1;
  }
  wschat__free(hs.len);
  return after;
}

/* A history event for s: the newest `limit` stored messages with
 * after < id < before (before 0: no bound), within the size budget of
 * history_fit(). With is_since, `complete` says whether anything after
 * `after` is missing from the reply; otherwise whether older stored ones
 * were left out. */
static void send_history(wschat_session *s, wschat_room *r, uint64_t after,
                         uint64_t before, unsigned limit, int is_since) {
  wschat__chat_buf b;
  uint64_t from = after;
  int more = 0;
  int is_cut = 0;
  wschat__chat_buf_init(&b);
  if (limit > 0)
    from = history_fit(s, r, after, before, limit, &is_cut);
  if (wschat__chat_json_history_begin(&b, wschat_room_name(r)) == 0 &&
      limit > 0)
    wschat_room_history(r, from, before, limit, history_entry_cb, &b, &more);
  wschat__chat_json_history_end(
      &b, !is_cut && (is_since ? !is_since_incomplete(r, after) : !more));
  send_buf(s, &b);
}

/* wschat_room_open() for a request; NULL after replying with the error. */
static wschat_room *open_room(wschat_session *s, const wschat__chat_req *req) {
  wschat_room *r;
  int rc = wschat_room_open(wschat_session_server(s), req->room, &r);
  if (rc == 0)
    return r;
  if (rc == WSCHAT_ETOOMANY)
    reply_error(s, req, WSCHAT__CHAT_INVALID_ROOM, "too many rooms");
  else
    fail_internal(s);
  return NULL;
}

/* join: `joined` to every member (the joiner too), then `members` and
 * `history` to the joiner. Joining a room one is in already announces
 * nothing and sends the members and history again. */
static void json_join(wschat_session *s, const wschat__chat_req *req) {
  wschat_room *r = open_room(s, req);
  int rc;
  if (r == NULL)
    return;
  if (!wschat_room_is_member(r, s)) {
    if ((rc = wschat_room_join(r, s)) != 0) {
      if (rc == WSCHAT_ENOMEM)
        fail_internal(s);
      return;
    }
    announce_presence(r, "joined", s, NULL);
  }
  send_members(s, r, req->room);
  if (req->has_since)
    send_history(s, r, req->since, 0, UINT_MAX, 1);
  else
    send_history(s, r, 0, 0, WSCHAT__CHAT_LIMIT_DEFAULT, 0);
}

static void json_leave(wschat_session *s, const wschat__chat_req *req) {
  wschat_room *r = wschat_room_find(wschat_session_server(s), req->room);
  if (r == NULL || wschat_room_leave(r, s) != 0) {
    reply_error(s, req, WSCHAT__CHAT_NOT_IN_ROOM, NULL);
    return;
  }
  announce_presence(r, "left", s, NULL);
  reply_ack(s, req, 0, 0);
}

static void json_say(wschat_session *s, const wschat__chat_req *req) {
  wschat_room *r = wschat_room_find(wschat_session_server(s), req->room);
  uint64_t id;
  if (r == NULL || !wschat_room_is_member(r, s)) {
    reply_error(s, req, WSCHAT__CHAT_NOT_IN_ROOM, NULL);
    return;
  }
  /* Only a message that would be delivered costs a token. */
  if (wschat_session_rate_take(s) != 0) {
    reply_error(s, req, WSCHAT__CHAT_RATE_LIMITED, NULL);
    return;
  }
  if (room_say(r, s, req->text, req->text_len, &id) == 0)
    reply_ack(s, req, 1, id);
}

/* No ack: the sender's copy of the whisper is its confirmation. */
static void json_whisper(wschat_session *s, const wschat__chat_req *req) {
  wschat_session *to =
      wschat_server_find_session(wschat_session_server(s), req->name);
  if (to == NULL) {
    reply_error(s, req, WSCHAT__CHAT_NO_SUCH_USER, NULL);
    return;
  }
  if (wschat_session_rate_take(s) != 0) {
    reply_error(s, req, WSCHAT__CHAT_RATE_LIMITED, NULL);
    return;
  }
  deliver_whisper(s, to, req->text, req->text_len);
}

static void json_nick(wschat_session *s, const wschat__chat_req *req) {
  char old[WSCHAT__CHAT_NAME_MAX + 1];
  wschat__chat_err err = rename_session(s, req->name, old);
  if (err != WSCHAT__CHAT_OK)
    reply_error(s, req, err, NULL);
  else
    reply_ack(s, req, 0, 0);
}

/* A room that does not exist has no messages; reading needs no
 * membership, as who and rooms need none. */
static void json_history(wschat_session *s, const wschat__chat_req *req) {
  wschat_room *r = wschat_room_find(wschat_session_server(s), req->room);
  wschat__chat_buf b;
  if (r != NULL) {
    /* before 0 asks for ids below 0: nothing. The room API reads 0 as
     * "no bound", so it is not asked. */
    send_history(s, r, 0, req->before,
                 req->has_before && req->before == 0 ? 0 : req->limit, 0);
    return;
  }
  wschat__chat_buf_init(&b);
  wschat__chat_json_history_begin(&b, req->room);
  wschat__chat_json_history_end(&b, 1);
  send_buf(s, &b);
}

static void json_who(wschat_session *s, const wschat__chat_req *req) {
  send_members(s, wschat_room_find(wschat_session_server(s), req->room),
               req->room);
}

static void json_rooms(wschat_session *s, const wschat__chat_req *req) {
  wschat__chat_buf b;
  count_list l;
  (void)req;
  if (server_rooms(wschat_session_server(s), &l) != 0) {
    fail_internal(s);
    return;
  }
  wschat__chat_buf_init(&b);
  wschat__chat_json_rooms(&b, l.rooms, l.count);
  wschat__free(l.rooms);
  send_buf(s, &b);
}

typedef void (*json_handler)(wschat_session *s, const wschat__chat_req *req);

static const json_handler json_handlers[] = {
    [WSCHAT__CHAT_REQ_JOIN] = json_join,
    [WSCHAT__CHAT_REQ_LEAVE] = json_leave,
    [WSCHAT__CHAT_REQ_SAY] = json_say,
    [WSCHAT__CHAT_REQ_WHISPER] = json_whisper,
    [WSCHAT__CHAT_REQ_NICK] = json_nick,
    [WSCHAT__CHAT_REQ_HISTORY] = json_history,
    [WSCHAT__CHAT_REQ_WHO] = json_who,
    [WSCHAT__CHAT_REQ_ROOMS] = json_rooms,
};

static void json_on_frame(chat_state *st, wschat_session *s, const char *data,
                          size_t len) {
  wschat__chat_req req;
  if (wschat__chat_req_parse(data, len, st->max_text, &req) != WSCHAT__CHAT_OK)
    reply_error(s, &req, req.err, req.err_msg);
  else
    json_handlers[req.type](s, &req);
  wschat__chat_req_free(&req);
}

/* The welcome's "rate": the server's per-second rate (0: unlimited). */
static unsigned server_rate(const wschat_server *srv) {
  unsigned per_second = 0;
  wschat_server_get_rate(srv, &per_second, NULL);
  return per_second;
}

static void send_welcome(chat_state *st, wschat_session *s) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  wschat__chat_json_welcome(&b, wschat_session_name(s), st->server_name,
                            st->max_text,
                            server_rate(wschat_session_server(s)));
  send_buf(s, &b);
}

/* ------------------------------------------------------------------------
 * Text dialect
 * ---------------------------------------------------------------------- */

static void text_reply(wschat_session *s, const char *what, const char *arg,
                       size_t arg_len) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  wschat__chat_buf_adds(&b, "* ");
  wschat__chat_buf_adds(&b, what);
  if (arg != NULL)
    wschat__chat_buf_add(&b, arg, arg_len);
  send_buf(s, &b);
}

static void text_error(wschat_session *s, const char *what, const char *arg,
                       size_t arg_len) {
  wschat__chat_buf b;
  wschat__chat_buf_init(&b);
  wschat__text_error(&b, what, arg, arg_len);
  send_buf(s, &b);
}

static void first_room_cb(wschat_room *r, void *arg) {
  wschat_room **out = arg;
  if (*out == NULL)
    *out = r;
}

/* A text session is in exactly one room, which this code alone picks. */
static wschat_room *text_room(wschat_session *s) {
  wschat_room *r = NULL;
  wschat_session_foreach_room(s, first_room_cb, &r);
  return r;
}

/* Move a text session into `name`: joined first, so that a failure
 * leaves it where it was; then `left` to the old room's remaining
 * members and `joined` to the new room's, the mover included. Returns 0,
 * WSCHAT_EEXIST (already there), or the room API's error. */
static int text_move(wschat_session *s, const char *name) {
  wschat_room *old = text_room(s), *r;
  int rc = wschat_room_open(wschat_session_server(s), name, &r);
  if (rc != 0)
    return rc;
  if (r == old)
    return WSCHAT_EEXIST;
  if ((rc = wschat_room_join(r, s)) != 0)
    return rc;
  if (old != NULL) {
    wschat_room_leave(old, s);
    announce_presence(old, "left", s, NULL);
  }
  announce_presence(r, "joined", s, NULL);
  return 0;
}

static void text_say(chat_state *st, wschat_session *s, const char *text,
                     size_t len) {
  wschat_room *r = text_room(s);
  uint64_t id;
  if (len > st->max_text) {
    text_error(s, "too long", NULL, 0);
    return;
  }
  if (r == NULL)
    return; /* cannot happen: a text session is always in a room */
  if (wschat_session_rate_take(s) != 0) {
    text_error(s, "rate limited", NULL, 0);
    return;
  }
  room_say(r, s, text, len, &id);
}

static void text_nick(wschat_session *s, const char *arg, size_t len) {
  char name[WSCHAT__CHAT_NAME_MAX + 1], old[WSCHAT__CHAT_NAME_MAX + 1];
  wschat__chat_err err;
  if (!wschat__chat_valid_name(arg, len)) {
    text_error(s, "invalid name", NULL, 0);
    return;
  }
  memcpy(name, arg, len);
  name[len] = '\0';
  err = rename_session(s, name, old);
  if (err != WSCHAT__CHAT_OK)
    text_error(s, wschat__chat_err_text(err), NULL, 0);
  else
    text_reply(s, "you are now ", name, len);
}

static void text_join(wschat_session *s, const char *arg, size_t len) {
  char room[WSCHAT__CHAT_ROOM_MAX + 1];
  int rc;
  if (!wschat__chat_valid_room(arg, len)) {
    text_error(s, "invalid room", NULL, 0);
    return;
  }
  memcpy(room, arg, len);
  room[len] = '\0';
  rc = text_move(s, room);
  if (rc == WSCHAT_EEXIST)
    text_reply(s, "you are already in ", room, len);
  else if (rc == WSCHAT_ETOOMANY)
    text_error(s, "too many rooms", NULL, 0);
  else if (rc != 0)
    fail_internal(s);
}

static void text_who(wschat_session *s) {
  wschat_room *r = text_room(s);
  wschat__chat_buf b;
  name_list l;
  if (r == NULL)
    return;
  if (room_names(r, presence_limit_of(s), &l) != 0) {
    fail_internal(s);
    return;
  }
  wschat__chat_buf_init(&b);
  wschat__text_who(&b, wschat_room_name(r), l.names, l.count, l.total);
  wschat__free(l.names);
  send_buf(s, &b);
}

static void text_rooms(wschat_session *s) {
  wschat__chat_buf b;
  count_list l;
  if (server_rooms(wschat_session_server(s), &l) != 0) {
    fail_internal(s);
    return;
  }
  wschat__chat_buf_init(&b);
  wschat__text_rooms(&b, l.rooms, l.count);
  wschat__free(l.rooms);
  send_buf(s, &b);
}

/* The same checks, in the same order, as a JSON whisper: the name's
 * form, the text's length, whether the user exists, the rate. */
static void text_msg(chat_state *st, wschat_session *s,
                     const wschat__text_cmd *cmd) {
  char name[WSCHAT__CHAT_NAME_MAX + 1];
  wschat_session *to;
  if (!wschat__chat_valid_name(cmd->arg, cmd->arg_len)) {
    text_error(s, "no such user", NULL, 0);
    return;
  }
  if (cmd->text_len > st->max_text) {
    text_error(s, "too long", NULL, 0);
    return;
  }
  memcpy(name, cmd->arg, cmd->arg_len);
  name[cmd->arg_len] = '\0';
  to = wschat_server_find_session(wschat_session_server(s), name);
  if (to == NULL)
    text_error(s, "no such user", NULL, 0);
  else if (wschat_session_rate_take(s) != 0)
    text_error(s, "rate limited", NULL, 0);
  else
    deliver_whisper(s, to, cmd->text, cmd->text_len);
}

static void text_on_line(chat_state *st, wschat_session *s, const char *data,
                         size_t len) {
  wschat__text_cmd cmd;
  wschat__text_parse(data, len, &cmd);
  switch (cmd.type) {
  case WSCHAT__TEXT_IGNORE:
    break;
  case WSCHAT__TEXT_SAY:
    text_say(st, s, cmd.text, cmd.text_len);
    break;
  case WSCHAT__TEXT_NICK:
    text_nick(s, cmd.arg, cmd.arg_len);
    break;
  case WSCHAT__TEXT_JOIN:
    text_join(s, cmd.arg, cmd.arg_len);
    break;
  case WSCHAT__TEXT_WHO:
    text_who(s);
    break;
  case WSCHAT__TEXT_ROOMS:
    text_rooms(s);
    break;
  case WSCHAT__TEXT_MSG:
    text_msg(st, s, &cmd);
    break;
  case WSCHAT__TEXT_HELP:
    send_literal(s, wschat__text_help);
    break;
  case WSCHAT__TEXT_UNKNOWN:
    text_error(s, "unknown command ", cmd.arg, cmd.arg_len);
    break;
  case WSCHAT__TEXT_USAGE:
    text_error(s, "usage: ", cmd.usage, strlen(cmd.usage));
    break;
  }
}

/* ------------------------------------------------------------------------
 * Server callbacks
 * ---------------------------------------------------------------------- */

/* JSON sessions get their welcome and enter rooms by asking; text
 * sessions start in lobby, as in the tutorial. A text session that cannot
 * be put in a room cannot chat at all, so it is closed: 1013 (try again
 * later) when the server is at max_rooms, 1011 otherwise. */
static void chat_on_open(wschat_session *s, void *userdata) {
  int rc;
  if (is_json_session(s)) {
    send_welcome(userdata, s);
    return;
  }
  rc = text_move(s, "lobby");
  if (rc == WSCHAT_ETOOMANY)
    wschat_session_close(s, 1013, "too many rooms");
  else if (rc != 0)
    fail_internal(s);
}

/* Binary frames are not part of either dialect; they are answered with an
 * error rather than a close, so a client that sends one by mistake keeps
 * its session. */
static void chat_on_message(wschat_session *s, wschat_msg_type type,
                            const char *data, size_t len, void *userdata) {
  chat_state *st = userdata;
  int is_json = is_json_session(s);
  if (type != WSCHAT_TEXT) {
    if (is_json)
      send_literal(s, "{\"type\":\"error\",\"code\":\"bad_json\","
                      "\"message\":\"binary frames are not accepted\"}");
    else
      send_literal(s, "* error: binary messages are not accepted");
    return;
  }
  if (is_json)
    json_on_frame(st, s, data, len);
  else
    text_on_line(st, s, data, len);
}

static void left_on_close_cb(wschat_room *r, void *arg) {
  wschat_session *s = arg;
  announce_presence(r, "left", s, s);
}

/* The library removes the session from its rooms just after this
 * returns; the remaining members hear about it now, while the session
 * still knows its rooms and its name. */
static void chat_on_close(wschat_session *s, int code, const char *reason,
                          size_t reason_len, void *userdata) {
  (void)code;
  (void)reason;
  (void)reason_len;
  (void)userdata;
  wschat_session_foreach_room(s, left_on_close_cb, s);
}

/* ------------------------------------------------------------------------
 * Public entry points
 * ---------------------------------------------------------------------- */

static char *default_server_name(void) {
  const char *v = wschat_version_string();
  size_t n = sizeof("libwschat/") + strlen(v);
  char *p = wschat__malloc(n);
  if (p != NULL)
    snprintf(p, n, "libwschat/%s", v);
  return p;
}

int wschat_chat_enable(wschat_server *srv) {
  static const char *const subprotocols[] = {WSCHAT__CHAT_SUBPROTOCOL};
  chat_state *st;
  int rc;
  if (srv == NULL)
    return WSCHAT_EINVAL;
  if (wschat_server_port(srv) != WSCHAT_ENOTLISTENING)
    return WSCHAT_EBUSY;
  if ((st = chat_state_of(srv)) == NULL) {
    if ((st = wschat__calloc(1, sizeof(*st))) == NULL ||
        (st->server_name = default_server_name()) == NULL) {
      wschat__free(st);
      return WSCHAT_ENOMEM;
    }
    st->max_text = WSCHAT__CHAT_TEXT_DEFAULT;
    st->presence_limit = WSCHAT__CHAT_PRESENCE_DEFAULT;
    if ((rc = wschat_server_set_subprotocols(srv, subprotocols, 1)) != 0) {
      chat_state_free(st);
      return rc;
    }
    srv->chat = st;
    srv->chat_free = chat_state_free;
  }
  wschat_server_set_userdata(srv, st);
  wschat_server_on_open(srv, chat_on_open);
  wschat_server_on_message(srv, chat_on_message);
  wschat_server_on_close(srv, chat_on_close);
  return 0;
}

int wschat_chat_set_max_text(wschat_server *srv, size_t bytes) {
  chat_state *st = chat_state_of(srv);
  if (st == NULL || bytes < 1 || bytes > WSCHAT__CHAT_TEXT_MAX)
    return WSCHAT_EINVAL;
  st->max_text = bytes;
  return 0;
}

int wschat_chat_set_presence_limit(wschat_server *srv, unsigned members) {
  chat_state *st = chat_state_of(srv);
  if (st == NULL)
    return WSCHAT_EINVAL;
  st->presence_limit = members;
  return 0;
}

/* The name goes into every welcome as a JSON string, so it must be
 * UTF-8; jansson is the judge. */
int wschat_chat_set_server_name(wschat_server *srv, const char *name) {
  chat_state *st = chat_state_of(srv);
  json_t *check;
  char *copy;
  if (st == NULL || name == NULL)
    return WSCHAT_EINVAL;
  if ((check = json_string(name)) == NULL)
    return WSCHAT_EINVAL;
  json_decref(check);
  if ((copy = wschat__strdup(name)) == NULL)
    return WSCHAT_ENOMEM;
  wschat__free(st->server_name);
  st->server_name = copy;
  return 0;
}
