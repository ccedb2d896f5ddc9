/*
 * wire.c - see wire.h.
 */
#define _GNU_SOURCE /* memmem */
#include "wire.h"

#include <string.h>

/* Two digits per division: the payload header is written for every
 * message sent, and its 16-digit timestamp showed in profiles. */
size_t bench_format_u64(char *out, uint64_t v) {
  static const char pairs[201] = "0001020304050607080910111213141516171819"
                                 "2021222324252627282930313233343536373839"
                                 "4041424344454647484950515253545556575859"
                                 "6061626364656667686970717273747576777879"
                                 "8081828384858687888990919293949596979899";
  char tmp[20];
  size_t i = sizeof(tmp), n;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    tmp[--i] = pairs[d + 1];
    tmp[--i] = pairs[d];
  }
  if (v >= 10) {
    tmp[--i] = pairs[v * 2 + 1];
    tmp[--i] = pairs[v * 2];
  } else {
    tmp[--i] = (char)('0' + v);
  }
  n = sizeof(tmp) - i;
  memcpy(out, tmp + i, n);
  return n;
}

size_t bench_payload_header(char *out, uint64_t seq, uint32_t sender,
                            uint64_t ts_ns) {
  size_t n = bench_format_u64(out, seq);
  out[n++] = ':';
  n += bench_format_u64(out + n, sender);
  out[n++] = ':';
  n += bench_format_u64(out + n, ts_ns);
  out[n++] = ':';
  return n;
}

/* One decimal field ended by ':'; returns the bytes used (':' included)
 * or 0. Anything bench_format_u64 writes is taken back, nothing larger. */
static size_t parse_field(const char *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  size_t i;
  for (i = 0; i < n && i < 20; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9)
      break;
    if (x > (UINT64_MAX - d) / 10)
      return 0;
    x = x * 10 + d;
  }
  if (i == 0 || i >= n || p[i] != ':')
    return 0;
  *v = x;
  return i + 1;
}

size_t bench_payload_parse(const char *p, size_t n, uint64_t *seq,
                           uint32_t *sender, uint64_t *ts_ns) {
  size_t a, b, c;
  uint64_t s;
  if ((a = parse_field(p, n, seq)) == 0 ||
      (b = parse_field(p + a, n - a, &s)) == 0 || s > UINT32_MAX ||
      (c = parse_field(p + a + b, n - a - b, ts_ns)) == 0)
    return 0;
  *sender = (uint32_t)s;
  return a + b + c;
}

/* ------------------------------------------------------------------------
 * JSON: just enough to walk one object's top level.
 * ---------------------------------------------------------------------- */

static size_t skip_ws(const char *p, size_t n, size_t i) {
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
    i++;
  return i;
}

/* p[i] is an opening quote: the index of the closing one, or n. A quote
 * preceded by an odd number of backslashes is escaped. */
static size_t string_end(const char *p, size_t n, size_t i) {
  for (i++; i < n;) {
    const char *q = memchr(p + i, '"', n - i);
    size_t j, bs = 0;
    if (q == NULL)
      return n;
    j = (size_t)(q - p);
    while (j - bs > i && p[j - bs - 1] == '\\')
      bs++;
    if (bs % 2 == 0)
      return j;
    i = j + 1;
  }
  return n;
}

/* Skip the value at p[i]; returns the index after it, or n if it does
 * not end. Nested values are skipped by counting brackets (strings by
 * their quotes), scalars up to the next delimiter; nothing is validated
 * beyond that. */
static size_t skip_value(const char *p, size_t n, size_t i) {
  int depth = 0;
  for (; i < n; i++) {
    char ch = p[i];
    if (ch == '"') {
      i = string_end(p, n, i);
      if (i >= n)
        return n;
      if (depth == 0)
        return i + 1;
    } else if (ch == '{' || ch == '[') {
      depth++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0)
        return i;
      if (--depth == 0)
        return i + 1;
    } else if (depth == 0 && (ch == ',' || ch == ' ' || ch == '\t' ||
                              ch == '\n' || ch == '\r')) {
      return i;
    }
  }
  return n;
}

int bench_json_string(const char *p, size_t n, const char *key,
                      const char **val, size_t *val_len) {
  size_t klen = strlen(key);
  size_t i = skip_ws(p, n, 0);

  if (i >= n || p[i] != '{')
    return -1;
  i = skip_ws(p, n, i + 1);
  if (i < n && p[i] == '}')
    return 0;
  while (i < n) {
    size_t kstart, kend;
    int is_key;
    if (p[i] != '"')
      return -1;
    kstart = i + 1;
    kend = string_end(p, n, i);
    if (kend >= n)
      return -1;
    is_key = kend - kstart == klen && memcmp(p + kstart, key, klen) == 0;
    i = skip_ws(p, n, kend + 1);
    if (i >= n || p[i] != ':')
      return -1;
    i = skip_ws(p, n, i + 1);
    if (i >= n)
      return -1;
    if (is_key) {
      size_t end;
      if (p[i] != '"')
        return 0;
      end = string_end(p, n, i);
      if (end >= n)
        return -1;
      *val = p + i + 1;
      *val_len = end - i - 1;
      return 1;
    }
    i = skip_ws(p, n, skip_value(p, n, i));
    if (i >= n)
      return -1;
    if (p[i] == '}')
      return 0;
    if (p[i] != ',')
      return -1;
    i = skip_ws(p, n, i + 1);
  }
  return -1;
}

int bench_json_message_text(const char *p, size_t n, const char **val,
                            size_t *val_len) {
  static const char prefix[] = "{\"type\":\"message\",";
  static const char key[] = "\"text\":\"";
  size_t i = sizeof(prefix) - 1, end;
  const char *q;

  if (n < i || memcmp(p, prefix, i) != 0)
    return 0;
  q = memmem(p + i, n - i, key, sizeof(key) - 1);
  if (q == NULL)
    return 0;
  i = (size_t)(q - p) + sizeof(key) - 2; /* the value's opening quote */
  end = string_end(p, n, i);
  if (end >= n)
    return 0;
  *val = p + i + 1;
  *val_len = end - i - 1;
  return 1;
}

/* ------------------------------------------------------------------------
 * Handshake, client side
 * ---------------------------------------------------------------------- */

void bench_base64_16(const uint8_t in[16], char out[25]) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i, o = 0;
  for (i = 0; i + 3 <= 15; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  /* 15 bytes gave 20 characters; the 16th gives two and "==". */
  out[o++] = tab[in[15] >> 2];
  out[o++] = tab[(in[15] & 3) << 4];
  out[o++] = '=';
  out[o++] = '=';
  out[o] = '\0';
}

size_t bench_http_head_end(const char *p, size_t n) {
  size_t i;
  for (i = 3; i < n; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
        p[i - 3] == '\r')
      return i + 1;
  return 0;
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Whether the header line `line` (no CRLF) has the name `name`; sets
 * *value to its trimmed value. */
static int header_is(const char *line, size_t len, const char *name,
                     const char **value, size_t *value_len) {
  size_t nlen = strlen(name), i;
  if (len <= nlen || line[nlen] != ':')
    return 0;
  for (i = 0; i < nlen; i++)
    if (lower((unsigned char)line[i]) != lower((unsigned char)name[i]))
      return 0;
  i = nlen + 1;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  *value = line + i;
  *value_len = len - i;
  return 1;
}

int bench_check_101(const char *head, size_t len, const char *accept,
                    const char *protocol, const char **why) {
  const char *line = head, *end = head + len, *v;
  size_t vlen;
  int is_accepted = 0, is_protocol_ok = protocol == NULL;
  int is_first = 1;

  while (line < end) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    size_t ll;
    if (nl == NULL)
      break;
    ll = (size_t)(nl - line);
    if (ll > 0 && line[ll - 1] == '\r')
      ll--;
    if (is_first) {
      if (ll < 12 || memcmp(line, "HTTP/1.1 101", 12) != 0 ||
          (ll > 12 && line[12] != ' ')) {
        *why = "status is not 101";
        return -1;
      }
      is_first = 0;
    } else if (header_is(line, ll, "Sec-WebSocket-Accept", &v, &vlen)) {
      if (vlen != strlen(accept) || memcmp(v, accept, vlen) != 0) {
        *why = "wrong Sec-WebSocket-Accept";
        return -1;
      }
      is_accepted = 1;
    } else if (header_is(line, ll, "Sec-WebSocket-Protocol", &v, &vlen)) {
      if (protocol == NULL || vlen != strlen(protocol) ||
          memcmp(v, protocol, vlen) != 0) {
        *why = "unexpected Sec-WebSocket-Protocol";
        return -1;
      }
      is_protocol_ok = 1;
    }
    line = nl + 1;
  }
  if (!is_accepted) {
    *why = "no Sec-WebSocket-Accept";
    return -1;
  }
  if (!is_protocol_ok) {
    *why = "subprotocol not selected";
    return -1;
  }
  return 0;
}
