/* Error names and messages for our codes and, delegated, libuv's. */
#include <uv.h>

#include "wschat.h"

const char *wschat_strerror(int err) {
  switch (err) {
#define WSCHAT_STRERROR_CASE_(name, value, msg)                               \
  case value:                                                                  \
    return msg;
    WSCHAT_ERRNO_MAP(WSCHAT_STRERROR_CASE_)
#undef WSCHAT_STRERROR_CASE_
  default:
    break;
  }
  /* Only libuv's known codes: for others, uv_strerror() allocates. */
  switch (err) {
#define WSCHAT_UV_STRERROR_CASE_(name, msg)                                   \
  case UV_##name:                                                              \
    return msg;
    UV_ERRNO_MAP(WSCHAT_UV_STRERROR_CASE_)
#undef WSCHAT_UV_STRERROR_CASE_
  default:
    break;
  }
  return "unknown error";
}

const char *wschat_err_name(int err) {
  switch (err) {
#define WSCHAT_ERR_NAME_CASE_(name, value, msg)                               \
  case value:                                                                  \
    return "WSCHAT_" #name;
    WSCHAT_ERRNO_MAP(WSCHAT_ERR_NAME_CASE_)
#undef WSCHAT_ERR_NAME_CASE_
  default:
    break;
  }
  switch (err) {
#define WSCHAT_UV_NAME_CASE_(name, msg)                                       \
  case UV_##name:                                                              \
    return #name;
    UV_ERRNO_MAP(WSCHAT_UV_NAME_CASE_)
#undef WSCHAT_UV_NAME_CASE_
  default:
    break;
  }
  return "UNKNOWN";
}

unsigned int wschat_version(void) { return WSCHAT_VERSION_HEX; }

const char *wschat_version_string(void) {
#define WSCHAT_STR_(x) #x
#define WSCHAT_XSTR_(x) WSCHAT_STR_(x)
  return WSCHAT_XSTR_(WSCHAT_VERSION_MAJOR) "." WSCHAT_XSTR_(
      WSCHAT_VERSION_MINOR) "." WSCHAT_XSTR_(WSCHAT_VERSION_PATCH);
}
