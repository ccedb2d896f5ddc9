/*
 * wire.h - the bench's pure text formats: the payload header
 * "SEQ:SENDER:TSNS:", a scanner for the top-level string fields of
 * wschatd's JSON events, the client half of the opening handshake. No I/O
 * and no allocation, so each can be tested alone.
 */
#ifndef WSCHAT_BENCH_WIRE_H
#define WSCHAT_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Longest payload header: three 20-digit numbers and three colons. */
#define BENCH_PAYLOAD_HEADER_MAX 63

/* Write v in decimal (no NUL); returns the number of digits (1..20). */
size_t bench_format_u64(char *out, uint64_t v);

/* Write "SEQ:SENDER:TSNS:" into out (BENCH_PAYLOAD_HEADER_MAX bytes);
 * returns its length. */
size_t bench_payload_header(char *out, uint64_t seq, uint32_t sender,
                            uint64_t ts_ns);

/* Parse the header at the start of p[0..n): returns its length, or 0 when
 * p does not start with one (a number missing, over 19 digits, or not
 * ended by a colon). */
size_t bench_payload_parse(const char *p, size_t n, uint64_t *seq,
                           uint32_t *sender, uint64_t *ts_ns);

/*
 * Find the top-level member `key` of the JSON object in p[0..n) and, when
 * its value is a string, point *val at the raw characters between its
 * quotes (escapes left as they are). Returns 1 when found, 0 when the
 * object has no such member or its value is not a string, -1 when p is
 * not a well-formed object as far as the scan went. Only what precedes
 * the member is looked at: wschatd's events put "type" first, so asking
 * for it costs a few bytes, not a parse of the whole event.
 */
int bench_json_string(const char *p, size_t n, const char *key,
                      const char **val, size_t *val_len);

/* The fast way to a message event's text, for wschatd's compact JSON
 * with "type" first: 1 when p[0..n) begins {"type":"message", and has a
 * "text" key with a string value, which is then set as in
 * bench_json_string; 0 otherwise (walk the object with
 * bench_json_string). Inside a JSON string every quote is escaped, so the
 * bytes "text":" can only be that key and the start of its value. */
int bench_json_message_text(const char *p, size_t n, const char **val,
                            size_t *val_len);

/* base64 of 16 bytes: 24 characters and a NUL (a Sec-WebSocket-Key). */
void bench_base64_16(const uint8_t in[16], char out[25]);

/* The length of the HTTP head at the start of p[0..n) up to and including
 * its blank line, or 0 when the blank line has not arrived yet. */
size_t bench_http_head_end(const char *p, size_t n);

/*
 * Check a server's reply to our upgrade request: status 101, an
 * Sec-WebSocket-Accept equal to `accept`, and when `protocol` is not NULL
 * a Sec-WebSocket-Protocol equal to it. Returns 0, or -1 with *why set to
 * a static description (the status line itself is the caller's to
 * quote).
 */
int bench_check_101(const char *head, size_t len, const char *accept,
                    const char *protocol, const char **why);

#endif
