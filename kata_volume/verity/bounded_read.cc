// Whole reads of small regular files, with a size limit.
#include "kata_volume/verity/bounded_read.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"

namespace guest_pull::verity {

absl::StatusOr<BoundedText> ReadBounded(int fd, const std::string& path,
                                        size_t max_bytes) {
  BoundedText out;
  struct stat st;
  if (::fstat(fd, &st) != 0) return base::ErrnoError("fstat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    out.refused = BoundedText::Refused::kNotRegular;
    return out;
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    out.refused = BoundedText::Refused::kTooLarge;
    out.size = absl::StrCat(st.st_size);
    return out;
  }
  std::string& text = out.text;
  text.resize(static_cast<size_t>(st.st_size) + 1);
  size_t done = 0;
  while (done <= max_bytes) {
    if (done == text.size()) {
      text.resize(std::min(text.size() * 2 + 4096, max_bytes + 1));
    }
    ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoError("read", path, errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_bytes) {
    out.refused = BoundedText::Refused::kTooLarge;
    out.size = absl::StrCat("more than ", max_bytes);
    out.text.clear();
    return out;
  }
  text.resize(done);
  return out;
}

}  // namespace guest_pull::verity
