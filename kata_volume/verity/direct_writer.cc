// DirectWriter: writes a new file front to back around the page cache.
#include "kata_volume/verity/direct_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "base/errno_error.h"
#include "kata_volume/verity/output_file.h"

namespace guest_pull::verity {

DirectWriter::DirectWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
  // Only a regular file: on a pipe O_DIRECT means packet mode.
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  direct_ = flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
}

absl::Status DirectWriter::StopDirect() {
  if (!direct_) return absl::OkStatus();
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
    return base::ErrnoError("cannot write (turning off direct I/O)", path_, errno);
  }
  direct_ = false;
  return absl::OkStatus();
}

absl::Status DirectWriter::Write(const char* data, size_t size) {
  while (direct_ && size >= kAlignment && offset_ % kAlignment == 0 &&
         reinterpret_cast<uintptr_t>(data) % kAlignment == 0) {
    ssize_t n = ::write(fd_, data, size - size % kAlignment);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL) break;  // alignment the device refuses
    if (n < 0) return base::ErrnoError("cannot write", path_, errno);
    if (n == 0) return base::ErrnoError("cannot write", path_, EIO);  // no progress
    data += n;
    size -= static_cast<size_t>(n);
    offset_ += static_cast<uint64_t>(n);
  }
  if (size == 0) return absl::OkStatus();
  // The rest, and everything after it, through the page cache (offset_ is
  // not needed any more).
  if (absl::Status s = StopDirect(); !s.ok()) return s;
  return WriteAllTo(fd_, data, size, path_);
}

}  // namespace guest_pull::verity
