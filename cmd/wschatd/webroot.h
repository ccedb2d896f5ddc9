/*
 * webroot.h - the static files wschatd serves from its web root.
 *
 * Safety rests on two independent checks. wschatd_webroot_resolve() turns
 * a request path into a relative file name and refuses anything that is
 * not a plain, canonical path: "..", "." or empty segments, backslashes,
 * NUL and control bytes, percent-encoded slashes and backslashes, and any
 * decoding that produces "..". Then wschatd_webroot_read() opens that name
 * one segment at a time with openat(O_NOFOLLOW) below the web root's
 * directory descriptor, so that even a name that passed the first check
 * cannot leave the tree through a symbolic link. Only regular files are
 * served.
 */
#ifndef WSCHATD_WEBROOT_H
#define WSCHATD_WEBROOT_H

#include <stddef.h>

/* The largest file served; a larger one gets 500. */
#define WSCHATD_WEBROOT_MAX_FILE (16u * 1024u * 1024u)

/* The longest relative name resolve() produces, NUL included. */
#define WSCHATD_WEBROOT_MAX_NAME 1024

/*
 * Open `path` as a web root: a directory descriptor (O_DIRECTORY,
 * O_CLOEXEC) and, in `real` (PATH_MAX bytes), its canonical path for the
 * log. Returns the descriptor, or -errno.
 */
int wschatd_webroot_open(const char *path, char *real, size_t real_size);

/*
 * Turn the request path `raw` (as the request line had it, without the
 * query) into a file name relative to the web root in `name` (`size`
 * bytes): "/" gives "index.html", "/css/app.css" gives "css/app.css", and
 * a path ending in "/" names that directory's index.html. Percent-escapes
 * are decoded once.
 *
 * Returns 0, 400 for a malformed path or any attempt at traversal, 404 for
 * a hidden name (a segment starting with '.'), or 414 when the name does
 * not fit.
 */
int wschatd_webroot_resolve(const char *raw, char *name, size_t size);

/*
 * Read the regular file `name` (from resolve()) below the directory
 * descriptor `root_fd`, following no symbolic link on the way. On 0,
 * *data is a malloc'ed copy of the file (the caller frees it; NULL for an
 * empty file) and *len its length.
 *
 * Returns 0, 404 (missing, a directory, a symbolic link, not a regular
 * file), 403 (permission denied), or 500 (too large, I/O error, out of
 * memory; *why then says which).
 */
int wschatd_webroot_read(int root_fd, const char *name, char **data,
                         size_t *len, const char **why);

/* The Content-Type for a file name, by its extension (case-insensitive);
 * application/octet-stream when unknown. */
const char *wschatd_webroot_mime_type(const char *name);

#endif /* WSCHATD_WEBROOT_H */
