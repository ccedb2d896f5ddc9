/* Static files below a web root, without ever leaving it; see webroot.h. */
#include "webroot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int wschatd_webroot_open(const char *path, char *real, size_t real_size) {
  char resolved[PATH_MAX];
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  /* The canonical path is only for the log; files are opened through the
   * descriptor, so a later rename of the tree cannot redirect them. */
  if (realpath(path, resolved) == NULL)
    snprintf(resolved, sizeof(resolved), "%s", path);
  snprintf(real, real_size, "%s", resolved);
  return fd;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode the percent-escapes of raw (after its leading '/') into name.
 * An escaped '/', '\' or NUL is refused outright rather than decoded:
 * it can only be there to make one path mean two things. */
static int decode_path(const char *raw, char *name, size_t size) {
  size_t n = 0;
  const char *p;
  for (p = raw + 1; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '%') {
      int hi = hex_value(p[1]);
      int lo = hi < 0 ? -1 : hex_value(p[2]);
      if (lo < 0)
        return 400;
      c = (unsigned char)(hi * 16 + lo);
      p += 2;
      if (c == '/' || c == '\\' || c == '\0')
        return 400;
    }
    if (c < 0x20 || c == 0x7f)
      return 400;
    if (n + 1 >= size)
      return 414;
    name[n++] = (char)c;
  }
  name[n] = '\0';
  return 0;
}

int wschatd_webroot_resolve(const char *raw, char *name, size_t size) {
  static const char index_name[] = "index.html";
  const char *segment;
  int is_hidden = 0;
  size_t n;
  int rc;

  /* The raw form first, so that traversal is refused however it would
   * have decoded; then the decoded form, for what escapes hid. */
  if (raw[0] != '/' || strstr(raw, "..") != NULL || strchr(raw, '\\') != NULL)
    return 400;
  rc = decode_path(raw, name, size);
  if (rc != 0)
    return rc;
  if (strstr(name, "..") != NULL)
    return 400;

  /* Segments: no empty one ("//") except a trailing one, no "."; one
   * that starts with '.' (.git, .env) is hidden. */
  segment = name;
  for (;;) {
    const char *slash = strchr(segment, '/');
    size_t len = slash != NULL ? (size_t)(slash - segment) : strlen(segment);
    if (len == 0 && slash != NULL)
      return 400;
    if (len == 1 && segment[0] == '.')
      return 400;
    if (len > 0 && segment[0] == '.')
      is_hidden = 1;
    if (slash == NULL)
      break;
    segment = slash + 1;
  }
  n = strlen(name);
  if (n == 0 || name[n - 1] == '/') {
    if (n + sizeof(index_name) > size)
      return 414;
    memcpy(name + n, index_name, sizeof(index_name));
  }
  return is_hidden ? 404 : 0;
}

static int status_for_errno(int err, const char **why) {
  switch (err) {
  case ENOENT:
  case ENOTDIR:
  case EISDIR:
  case ELOOP: /* a symbolic link, refused by O_NOFOLLOW */
  case ENAMETOOLONG:
    return 404;
  case EACCES:
  case EPERM:
    return 403;
  default:
    *why = strerror(err);
    return 500;
  }
}

/* Open the directory segments of name one at a time, each with
 * O_NOFOLLOW, and return a descriptor for the directory that holds the
 * last segment (root_fd itself, or one the caller closes) with *base set
 * to that segment; or a negative errno. */
static int open_parent(int root_fd, const char *name, const char **base) {
  char segment[NAME_MAX + 1];
  int dir = root_fd;
  const char *slash;

  while ((slash = strchr(name, '/')) != NULL) {
    size_t len = (size_t)(slash - name);
    int fd;
    if (len > NAME_MAX) {
      fd = -ENAMETOOLONG;
    } else {
      memcpy(segment, name, len);
      segment[len] = '\0';
      fd =
          openat(dir, segment, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        fd = -errno;
    }
    if (dir != root_fd)
      close(dir);
    if (fd < 0)
      return fd;
    dir = fd;
    name = slash + 1;
  }
  *base = name;
  return dir;
}

int wschatd_webroot_read(int root_fd, const char *name, char **data,
                         size_t *len, const char **why) {
  const char *base = name;
  struct stat st;
  char *buf = NULL;
  size_t have = 0;
  int dir = open_parent(root_fd, name, &base);
  int fd;
  int err;

  *data = NULL;
  *len = 0;
  *why = NULL;
  if (dir < 0)
    return status_for_errno(-dir, why);
  /* O_NONBLOCK: opening a FIFO someone left in the tree must not hang
   * the loop; it is then refused as not a regular file. */
  fd = openat(dir, base,
              O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  err = errno;
  if (dir != root_fd)
    close(dir);
  if (fd < 0)
    return status_for_errno(err, why);
  if (fstat(fd, &st) != 0) {
    err = errno;
    close(fd);
    return status_for_errno(err, why);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return 404;
  }
  if (st.st_size > (off_t)WSCHATD_WEBROOT_MAX_FILE) {
    close(fd);
    *why = "file larger than 16 MiB";
    return 500;
  }
  if (st.st_size > 0) {
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
      close(fd);
      *why = "out of memory";
      return 500;
    }
  }
  /* The file may shrink or grow while it is read: serve what was there
   * up to the size fstat() saw. */
  while (have < (size_t)st.st_size) {
    ssize_t got = read(fd, buf + have, (size_t)st.st_size - have);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      *why = strerror(errno);
      free(buf);
      close(fd);
      return 500;
    }
    if (got == 0)
      break;
    have += (size_t)got;
  }
  close(fd);
  if (have == 0) {
    free(buf);
    buf = NULL;
  }
  *data = buf;
  *len = have;
  return 0;
}

const char *wschatd_webroot_mime_type(const char *name) {
  static const struct {
    const char *extension;
    const char *type;
  } types[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"png", "image/png"},
      {"svg", "image/svg+xml"},
      {"ico", "image/x-icon"},
      {"txt", "text/plain; charset=utf-8"},
  };
  const char *slash = strrchr(name, '/');
  const char *dot = strrchr(slash != NULL ? slash + 1 : name, '.');
  size_t i;

  if (dot != NULL) {
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot + 1, types[i].extension) == 0)
        return types[i].type;
  }
  return "application/octet-stream";
}
