/*
 * fuzz_text - the text dialect's line parser (wschat__text_parse in
 * lib/chat/message.c) and the lines built from what it returns.
 *
 * The whole input is one line. Whatever it holds, the command's pointers
 * must lie within it, and each type must come with exactly the fields
 * message.h documents: a /nick, /join or /msg argument is one non-empty
 * word, /msg's text starts at a non-blank byte and runs to the end of the
 * line, a usage error names its usage, and "//x" says "/x".
 */
#include <string.h>

#include "chat/message.h"
#include "fuzz_util.h"

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

/* p[0..n) lies within line[0..len). */
static int within(const char *line, size_t len, const char *p, size_t n) {
  return p >= line && n <= len && (size_t)(p - line) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = (const char *)data;
  wschat__text_cmd cmd;
  wschat__chat_buf b;
  size_t i;

  wschat__text_parse(line, size, &cmd);
  if (cmd.arg != NULL)
    FUZZ_CHECK(within(line, size, cmd.arg, cmd.arg_len));
  if (cmd.text != NULL)
    FUZZ_CHECK(within(line, size, cmd.text, cmd.text_len));

  switch (cmd.type) {
  case WSCHAT__TEXT_IGNORE:
    FUZZ_CHECK(size == 0);
    break;
  case WSCHAT__TEXT_SAY:
    FUZZ_CHECK(size > 0);
    if (line[0] == '/') {
      FUZZ_CHECK(size >= 2 && line[1] == '/');
      FUZZ_CHECK(cmd.text == line + 1 && cmd.text_len == size - 1);
    } else {
      FUZZ_CHECK(cmd.text == line && cmd.text_len == size);
    }
    break;
  case WSCHAT__TEXT_NICK:
  case WSCHAT__TEXT_JOIN:
  case WSCHAT__TEXT_MSG:
    FUZZ_CHECK(cmd.arg != NULL && cmd.arg_len > 0);
    for (i = 0; i < cmd.arg_len; i++)
      FUZZ_CHECK(!is_blank(cmd.arg[i]));
    FUZZ_CHECK(is_blank(cmd.arg[-1]));
    if (cmd.type == WSCHAT__TEXT_MSG) {
      FUZZ_CHECK(cmd.text != NULL && cmd.text_len > 0);
      FUZZ_CHECK(!is_blank(cmd.text[0]) && is_blank(cmd.text[-1]));
      FUZZ_CHECK(cmd.text + cmd.text_len == line + size);
      FUZZ_CHECK(cmd.text > cmd.arg + cmd.arg_len);
    } else {
      FUZZ_CHECK(cmd.text == NULL);
      /* Only blanks may follow the one word. */
      for (i = (size_t)(cmd.arg - line) + cmd.arg_len; i < size; i++)
        FUZZ_CHECK(is_blank(line[i]));
    }
    break;
  case WSCHAT__TEXT_WHO:
  case WSCHAT__TEXT_ROOMS:
  case WSCHAT__TEXT_HELP:
    FUZZ_CHECK(cmd.arg == NULL && cmd.text == NULL);
    for (i = 1; i < size; i++)
      FUZZ_CHECK(!is_blank(line[i - 1]) || is_blank(line[i]));
    break;
  case WSCHAT__TEXT_UNKNOWN:
    FUZZ_CHECK(size > 0 && line[0] == '/');
    FUZZ_CHECK(cmd.arg == line && cmd.arg_len > 0);
    FUZZ_CHECK(cmd.arg_len == size || is_blank(line[cmd.arg_len]));
    break;
  case WSCHAT__TEXT_USAGE:
    FUZZ_CHECK(cmd.usage != NULL && cmd.usage[0] == '/');
    FUZZ_CHECK(size > 0 && line[0] == '/');
    /* The usage names the command the line started with. */
    FUZZ_CHECK(strncmp(cmd.usage, line, strcspn(cmd.usage, " ")) == 0);
    break;
  default:
    FUZZ_CHECK(!"unknown command type");
  }

  /* The lines the server builds from a parse: they must hold the text. */
  wschat__chat_buf_init(&b);
  if (cmd.type == WSCHAT__TEXT_SAY)
    wschat__text_said(&b, "user1", cmd.text, cmd.text_len);
  else if (cmd.type == WSCHAT__TEXT_MSG)
    wschat__text_whispers(&b, "user1", cmd.text, cmd.text_len);
  if (b.data != NULL && !b.is_failed && cmd.text != NULL) {
    FUZZ_CHECK(b.len >= cmd.text_len);
    FUZZ_CHECK(memcmp(b.data + b.len - cmd.text_len, cmd.text, cmd.text_len) ==
               0);
  }
  wschat__chat_buf_free(&b);
  return 0;
}
