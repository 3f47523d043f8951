// A test SQLite VFS whose fsyncs or writes of chosen files fail on command.
#include "snapshotter/failing_io_vfs.h"

#include <cstdlib>

namespace snapshotter {

FailingIoVfs* FailingIoVfs::instance_ = nullptr;

FailingIoVfs::FailingIoVfs(int open_flag) : open_flag_(open_flag) {
  if (instance_ != nullptr) std::abort();  // one at a time
  real_ = sqlite3_vfs_find(nullptr);
  vfs_ = *real_;
  vfs_.zName = "failing-io";
  vfs_.xOpen = &Open;
  instance_ = this;
  sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
}

FailingIoVfs::~FailingIoVfs() {
  sqlite3_vfs_unregister(&vfs_);
  sqlite3_vfs_register(real_, /*makeDflt=*/1);
  instance_ = nullptr;
}

int FailingIoVfs::Open(sqlite3_vfs* /*vfs*/, sqlite3_filename name,
                       sqlite3_file* file, int flags, int* out_flags) {
  FailingIoVfs* self = instance_;
  int rc = self->real_->xOpen(self->real_, name, file, flags, out_flags);
  if (rc != SQLITE_OK || (flags & self->open_flag_) == 0 ||
      file->pMethods == nullptr) {
    return rc;
  }
  // The file stays SQLite's own; only its method table is swapped (the
  // real VFS gives every such file the same one).
  std::call_once(self->methods_once_, [&] {
    self->real_methods_ = file->pMethods;
    self->methods_ = *file->pMethods;
    self->methods_.xSync = &Sync;
    self->methods_.xWrite = &Write;
  });
  if (file->pMethods != self->real_methods_) std::abort();
  file->pMethods = &self->methods_;
  return rc;
}

int FailingIoVfs::Sync(sqlite3_file* file, int flags) {
  FailingIoVfs* self = instance_;
  if (self->fail_syncs_) {
    ++self->failed_;
    return SQLITE_IOERR_FSYNC;
  }
  return self->real_methods_->xSync(file, flags);
}

int FailingIoVfs::Write(sqlite3_file* file, const void* data, int amount,
                        sqlite3_int64 offset) {
  FailingIoVfs* self = instance_;
  if (self->fail_writes_) {
    ++self->failed_;
    return SQLITE_FULL;
  }
  return self->real_methods_->xWrite(file, data, amount, offset);
}

}  // namespace snapshotter
