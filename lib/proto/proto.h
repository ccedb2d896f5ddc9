/*
 * proto.h - what every sans-I/O protocol module shares. Nothing in proto/
 * includes uv.h or allocates except through an allocator it was given.
 */
#ifndef WSCHAT_PROTO_PROTO_H
#define WSCHAT_PROTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "wschat.h"

/* The allocator a proto/ object was created with. realloc_fn(NULL, n)
 * allocates; free_fn(NULL) is a no-op. */
typedef struct wschat__allocator {
  void *(*realloc_fn)(void *ptr, size_t size);
  void (*free_fn)(void *ptr);
} wschat__allocator;

/* RFC 6455 opcodes. */
enum {
  WSCHAT__OP_CONT = 0x0,
  WSCHAT__OP_TEXT = 0x1,
  WSCHAT__OP_BINARY = 0x2,
  WSCHAT__OP_CLOSE = 0x8,
  WSCHAT__OP_PING = 0x9,
  WSCHAT__OP_PONG = 0xA
};

#define WSCHAT__OP_IS_CONTROL(op) (((op) & 0x8) != 0)
#define WSCHAT__MAX_CONTROL_PAYLOAD 125
#define WSCHAT__MAX_FRAME_HEADER 14

#endif
