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

/*
 * Give the C library's free memory back to the system where it can: pages
 * wholly inside free heap space (glibc's malloc_trim). Only when the
 * library allocates with libc's malloc (a user allocator manages its own
 * memory) and libc is glibc; otherwise nothing. Returns whether it ran.
 */
int wschat__release_free_memory(void);

/* The same allocator, in the form proto/ objects take. */
extern const wschat__allocator wschat__allocator_default;

#endif
