// A failed system call as an absl::Status.
#ifndef BASE_ERRNO_ERROR_H_
#define BASE_ERRNO_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace base {

// "<what> <path>: <strerror(err)>". ENOENT is NotFound, EACCES and EPERM are
// PermissionDenied, ENOSPC and EDQUOT (a full filesystem or quota) are
// ResourceExhausted, anything else is Internal.
absl::Status ErrnoError(absl::string_view what, absl::string_view path,
                        int err);

}  // namespace base

#endif  // BASE_ERRNO_ERROR_H_
