// Whole reads of small regular files, with a size limit.
#ifndef KATA_VOLUME_VERITY_BOUNDED_READ_H_
#define KATA_VOLUME_VERITY_BOUNDED_READ_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace guest_pull::verity {

// What ReadBounded read, or why it read nothing: callers word the refusals
// for their own files.
struct BoundedText {
  enum class Refused { kNone, kNotRegular, kTooLarge };
  Refused refused = Refused::kNone;
  std::string text;  // the whole file, when not refused
  std::string size;  // kTooLarge: its size, or "more than N" if it grew
};

// Reads the open file `fd` (named `path` in errors) whole, reading at most
// one byte past `max_bytes` (it may grow while it is read). A file that is
// not regular (a FIFO is never waited on if `fd` is O_NONBLOCK) or is larger
// than `max_bytes` is refused; a failed fstat or read is an error.
absl::StatusOr<BoundedText> ReadBounded(int fd, const std::string& path,
                                        size_t max_bytes);

}  // namespace guest_pull::verity

#endif  // KATA_VOLUME_VERITY_BOUNDED_READ_H_
