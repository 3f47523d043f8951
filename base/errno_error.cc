// errno to absl::Status.
#include "base/errno_error.h"

#include <errno.h>
#include <string.h>

#include "absl/strings/str_cat.h"

namespace base {

absl::Status ErrnoError(absl::string_view what, absl::string_view path,
                        int err) {
  std::string message = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

}  // namespace base
