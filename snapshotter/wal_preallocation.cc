// See wal_preallocation.h.
#include "snapshotter/wal_preallocation.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/errno_error.h"

namespace snapshotter {

absl::Status PreallocateWal(const std::string& db_path, int64_t size) {
  std::string path = db_path + "-wal";
  bool created = access(path.c_str(), F_OK) != 0;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  }
  struct stat st;
  int err = fstat(fd, &st) == 0 ? 0 : errno;
  bool wrote = false;
  static const char kZeros[64 << 10] = {};
  for (int64_t at = st.st_size; err == 0 && at < size;) {
    ssize_t n = pwrite(fd, kZeros, std::min<int64_t>(sizeof(kZeros), size - at),
                       at);
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    at += n;
    wrote = true;
  }
  // Not waited for: zeros a crash loses only make the WAL shorter. The
  // writeback starts now; the first commit's flush finds it done or waits
  // for its rest.
  if (err == 0 && wrote) {
    (void)sync_file_range(fd, 0, size, SYNC_FILE_RANGE_WRITE);
  }
  bool full = err == ENOSPC || err == EDQUOT;
  // The zeros a full disk let in are given back: kept, they would take the
  // last free bytes of the filesystem (the snapshots' too), and the fold
  // of the WAL into the database, store-open and store-generation would
  // find no room (a new store could not even be made with up to 5 MiB
  // free). SQLite grows the WAL as its commits need instead.
  if (full && ftruncate(fd, st.st_size) != 0) {
    // The zeros stay; the error returned below already says the disk is full.
  }
  close(fd);
  // A full disk leaves a WAL that SQLite may still use: its entry must be
  // durable all the same.
  if ((err == 0 || full) && created) {
    std::string dir = db_path.substr(0, db_path.rfind('/') + 1);
    int dfd = open(dir.empty() ? "." : dir.c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) err = errno;
    if (dfd >= 0) close(dfd);
  }
  if (err != 0) return base::ErrnoError("preallocate", path, err);
  return absl::OkStatus();
}

bool WalHasHeader(const std::string& db_path) {
  int fd = open((db_path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char magic[4] = {};
  bool read_all = pread(fd, magic, sizeof(magic), 0) == sizeof(magic);
  close(fd);
  // 0x377f0682 or 0x377f0683, big-endian (the last bit: checksum order).
  return read_all && magic[0] == 0x37 && magic[1] == 0x7f && magic[2] == 0x06 &&
         (magic[3] & 0xfe) == 0x82;
}

absl::Status SyncWal(const std::string& db_path) {
  std::string path = db_path + "-wal";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int err = fd < 0 || fdatasync(fd) != 0 ? errno : 0;
  if (fd >= 0) close(fd);
  if (err != 0) {
    return absl::InternalError(
        absl::StrCat("flush ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace snapshotter
