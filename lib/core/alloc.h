/*
 * alloc.h - the library's allocator: the user's (wschat_replace_allocator)
 * or libc's, with a live-bytes count kept in a small header before each
 * block, since neither libc nor a user allocator reports sizes portably.
 */
#ifndef WSCHAT_CORE_ALLOC_H
#define WSCHAT_CORE_ALLOC_H

#include <stddef.h>

#include "proto/proto.h"

void *wschat__malloc(size_t size);
void *wschat__calloc(size_t count, size_t size);
void *wschat__realloc(void *ptr, size_t size);
void wschat__free(void *ptr);
char *wschat__strdup(const char *s);

/* The same allocator, in the form proto/ objects take. */
extern const wschat__allocator wschat__allocator_default;

#endif
