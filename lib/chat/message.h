/*
 * message.h - the pure half of the built-in chat protocol (PROTOCOL.md):
 * parsing a JSON request or a text-dialect line, encoding every event,
 * and the name rules. Nothing here touches a server or a session, so
 * tests/unit/chat/message.c (and a fuzzer) can drive each function alone.
 *
 * Every encoder appends to a wschat__chat_buf. Its memory, like all the
 * chat layer's own, comes from the library's allocator, so that
 * wschat_live_bytes() and wschat_replace_allocator() cover it; jansson's
 * short-lived objects come from jansson's allocator, which is
 * process-wide and left to the application.
 */
#ifndef WSCHAT_CHAT_MESSAGE_H
#define WSCHAT_CHAT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

struct json_t; /* jansson's; only the parser's result holds one */

/* The subprotocol that selects the JSON dialect. */
#define WSCHAT__CHAT_SUBPROTOCOL "wschat.v1.json"

#define WSCHAT__CHAT_NAME_MAX      32
#define WSCHAT__CHAT_ROOM_MAX      64
#define WSCHAT__CHAT_REF_MAX       64
#define WSCHAT__CHAT_LIMIT_DEFAULT 50
#define WSCHAT__CHAT_LIMIT_MAX     200
#define WSCHAT__CHAT_TEXT_DEFAULT  4096
#define WSCHAT__CHAT_TEXT_MAX      1048576
#define WSCHAT__CHAT_PRESENCE_DEFAULT 1000

/* 1..32 bytes of [A-Za-z0-9_.-] (a user name); 1..64 (a room name). */
int wschat__chat_valid_name(const char *s, size_t len);
int wschat__chat_valid_room(const char *s, size_t len);

/* ------------------------------------------------------------------------
 * Error codes of PROTOCOL.md
 * ---------------------------------------------------------------------- */

typedef enum {
  WSCHAT__CHAT_OK = 0,
  WSCHAT__CHAT_BAD_JSON,
  WSCHAT__CHAT_BAD_REQUEST,
  WSCHAT__CHAT_UNKNOWN_TYPE,
  WSCHAT__CHAT_INVALID_NAME,
  WSCHAT__CHAT_NAME_TAKEN,
  WSCHAT__CHAT_INVALID_ROOM,
  WSCHAT__CHAT_NOT_IN_ROOM,
  WSCHAT__CHAT_NO_SUCH_USER,
  WSCHAT__CHAT_TOO_LONG,
  WSCHAT__CHAT_RATE_LIMITED
} wschat__chat_err;

/* "bad_json", ... for the JSON dialect's `code`. */
const char *wschat__chat_err_code(wschat__chat_err err);
/* "name taken", ... : the text dialect's "* error: ..." wording, also the
 * default `message` of a JSON error. */
const char *wschat__chat_err_text(wschat__chat_err err);

/* ------------------------------------------------------------------------
 * JSON requests
 * ---------------------------------------------------------------------- */

typedef enum {
  WSCHAT__CHAT_REQ_NONE = 0, /* parsing failed before the type was known */
  WSCHAT__CHAT_REQ_JOIN,
  WSCHAT__CHAT_REQ_LEAVE,
  WSCHAT__CHAT_REQ_SAY,
  WSCHAT__CHAT_REQ_WHISPER,
  WSCHAT__CHAT_REQ_NICK,
  WSCHAT__CHAT_REQ_HISTORY,
  WSCHAT__CHAT_REQ_WHO,
  WSCHAT__CHAT_REQ_ROOMS
} wschat__chat_req_type;

/*
 * A parsed request. The strings point into `root` (jansson's decoded
 * document) and live until wschat__chat_req_free(). room and name are
 * NUL-terminated and validated; text and ref may hold NUL bytes, so they
 * come with lengths.
 */
typedef struct wschat__chat_req {
  wschat__chat_req_type type;
  wschat__chat_err err; /* WSCHAT__CHAT_OK when the request is usable */
  const char *err_msg;  /* static, for the error's `message` */
  struct json_t *root;  /* owns the strings below */
  int has_ref;          /* ref is valid and must be echoed */
  const char *ref;
  size_t ref_len;
  const char *room; /* join, leave, say, history, who */
  size_t room_len;
  const char *name; /* nick: the new name; whisper: `to` */
  size_t name_len;
  const char *text; /* say, whisper */
  size_t text_len;
  int has_since; /* join */
  uint64_t since;
  int has_before; /* history */
  uint64_t before;
  unsigned limit; /* history; 50 when absent */
} wschat__chat_req;

/*
 * Parse one frame of the JSON dialect. Checks, in this order: JSON syntax
 * and top-level object (bad_json); `ref` (bad_request, and then the ref is
 * not echoed); `type` (bad_request when missing or not a string,
 * unknown_type); every field's presence and type (bad_request); then the
 * values: room names (invalid_room), nick names (invalid_name),
 * whisper's `to` (no_such_user when it cannot be anybody's name: the
 * caller looks up the others), text length 1..max_text (bad_request when
 * empty, too_long over).
 *
 * Returns req->err. req must be freed with wschat__chat_req_free() in
 * every case.
 */
wschat__chat_err wschat__chat_req_parse(const char *data, size_t len,
                                        size_t max_text, wschat__chat_req *req);
void wschat__chat_req_free(wschat__chat_req *req);

/* ------------------------------------------------------------------------
 * Text-dialect lines
 * ---------------------------------------------------------------------- */

typedef enum {
  WSCHAT__TEXT_IGNORE = 0, /* an empty line: nothing to say */
  WSCHAT__TEXT_SAY,        /* text: what to say ("//x" gives "/x") */
  WSCHAT__TEXT_NICK,       /* arg: the name */
  WSCHAT__TEXT_JOIN,       /* arg: the room */
  WSCHAT__TEXT_WHO,
  WSCHAT__TEXT_ROOMS,
  WSCHAT__TEXT_MSG, /* arg: the user, text: the whisper */
  WSCHAT__TEXT_HELP,
  WSCHAT__TEXT_UNKNOWN, /* arg: the command word, "/x" */
  WSCHAT__TEXT_USAGE    /* a known command with bad arguments; usage set */
} wschat__text_cmd_type;

/* Pointers into the parsed line; not NUL-terminated. */
typedef struct wschat__text_cmd {
  wschat__text_cmd_type type;
  const char *arg;
  size_t arg_len;
  const char *text;
  size_t text_len;
  const char *usage; /* "/nick NAME", ... for WSCHAT__TEXT_USAGE */
} wschat__text_cmd;

/*
 * Split a line into a command. Only a line whose first byte is '/' is a
 * command; "//..." says the rest literally. Command words are
 * case-sensitive. Arguments are separated by runs of spaces or tabs;
 * /nick and /join take exactly one word, /who, /rooms and /help none,
 * /msg a word and then the rest of the line (from its first non-blank
 * byte) as the text. Anything else is WSCHAT__TEXT_USAGE.
 */
void wschat__text_parse(const char *line, size_t len, wschat__text_cmd *cmd);

/* The /help answer: one frame, one "* " line per command. */
extern const char wschat__text_help[];

/* ------------------------------------------------------------------------
 * Output buffers and encoders
 * ---------------------------------------------------------------------- */

/* A growable byte string. A failed allocation is sticky: every later
 * append is a no-op and is_failed stays set, so a sequence of appends is
 * checked once at the end. data is NUL-terminated when not failed. */
typedef struct wschat__chat_buf {
  char *data;
  size_t len;
  size_t cap;
  int is_failed;
} wschat__chat_buf;

void wschat__chat_buf_init(wschat__chat_buf *b);
void wschat__chat_buf_free(wschat__chat_buf *b);
void wschat__chat_buf_add(wschat__chat_buf *b, const void *p, size_t n);
void wschat__chat_buf_adds(wschat__chat_buf *b, const char *s);

/* One member count of a `rooms` reply or a "/rooms" line. */
typedef struct wschat__chat_room_count {
  const char *room;
  unsigned members;
} wschat__chat_room_count;

/*
 * The JSON events, compact, keys in the order PROTOCOL.md lists them
 * after "type". Each returns 0, or -1 when out of memory or a string is
 * not UTF-8 (the buffer is then failed).
 */
int wschat__chat_json_welcome(wschat__chat_buf *b, const char *name,
                              const char *server, uint64_t max_text,
                              unsigned rate);
int wschat__chat_json_message(wschat__chat_buf *b, uint64_t id,
                              const char *room, const char *from,
                              const char *text, size_t text_len, uint64_t ts);
int wschat__chat_json_whisper(wschat__chat_buf *b, const char *from,
                              const char *to, const char *text, size_t text_len,
                              uint64_t ts);
/* type is "joined" or "left". */
int wschat__chat_json_presence(wschat__chat_buf *b, const char *type,
                               const char *room, const char *name, uint64_t ts);
int wschat__chat_json_renamed(wschat__chat_buf *b, const char *from,
                              const char *to, uint64_t ts);
/* names[0..count) of a room of `total` members; when total > count the
 * object also carries "count": total and "complete": false. */
int wschat__chat_json_members(wschat__chat_buf *b, const char *room,
                              const char *const *names, size_t count,
                              size_t total);
int wschat__chat_json_rooms(wschat__chat_buf *b,
                            const wschat__chat_room_count *rooms, size_t count);
/* ref may be NULL (no "ref" key); has_id adds "id". */
int wschat__chat_json_ack(wschat__chat_buf *b, const char *ref, size_t ref_len,
                          int has_id, uint64_t id);
/* message NULL: the code's default wording. */
int wschat__chat_json_error(wschat__chat_buf *b, wschat__chat_err err,
                            const char *message, const char *ref,
                            size_t ref_len);

/*
 * A `history` event is spliced from stored `message` texts, which are
 * already JSON: begin writes {"type":"history","room":ROOM,"messages":[,
 * add appends one stored object, end closes with "complete".
 */
int wschat__chat_json_history_begin(wschat__chat_buf *b, const char *room);
void wschat__chat_json_history_add(wschat__chat_buf *b, const char *message,
                                   size_t len);
int wschat__chat_json_history_end(wschat__chat_buf *b, int is_complete);

/* The text dialect's lines (no trailing newline). */
void wschat__text_said(wschat__chat_buf *b, const char *from, const char *text,
                       size_t text_len);
void wschat__text_whispers(wschat__chat_buf *b, const char *from,
                           const char *text, size_t text_len);
/* "* NAME joined ROOM" / "* NAME left ROOM" (verb "joined" or "left"). */
void wschat__text_presence(wschat__chat_buf *b, const char *verb,
                           const char *room, const char *name);
void wschat__text_renamed(wschat__chat_buf *b, const char *from,
                          const char *to);
/* "* in ROOM: a, b" and, when total > count, " (and N more)". */
void wschat__text_who(wschat__chat_buf *b, const char *room,
                      const char *const *names, size_t count, size_t total);
void wschat__text_rooms(wschat__chat_buf *b,
                        const wschat__chat_room_count *rooms, size_t count);
/* "* error: WHAT" followed by arg_len bytes of arg (arg may be NULL):
 * "* error: unknown command /x", "* error: usage: /nick NAME". */
void wschat__text_error(wschat__chat_buf *b, const char *what, const char *arg,
                        size_t arg_len);

/* Sort names in byte order (what `members` and "/who" show). */
void wschat__chat_sort_names(const char **names, size_t count);

#endif
