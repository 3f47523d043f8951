// A test SQLite VFS whose fsyncs of chosen files fail on command.
#include "snapshotter/failing_sync_vfs.h"

#include <cstdlib>

namespace snapshotter {

FailingSyncVfs* FailingSyncVfs::instance_ = nullptr;

FailingSyncVfs::FailingSyncVfs(int open_flag) : open_flag_(open_flag) {
  if (instance_ != nullptr) std::abort();  // one at a time
  real_ = sqlite3_vfs_find(nullptr);
  vfs_ = *real_;
  vfs_.zName = "failing-sync";
  vfs_.pAppData = this;
  vfs_.xOpen = &Open;
  instance_ = this;
  sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
}

FailingSyncVfs::~FailingSyncVfs() {
  sqlite3_vfs_unregister(&vfs_);
  sqlite3_vfs_register(real_, /*makeDflt=*/1);
  instance_ = nullptr;
}

int FailingSyncVfs::Open(sqlite3_vfs* vfs, sqlite3_filename name,
                         sqlite3_file* file, int flags, int* out_flags) {
  auto* self = static_cast<FailingSyncVfs*>(vfs->pAppData);
  int rc = self->real_->xOpen(self->real_, name, file, flags, out_flags);
  if (rc != SQLITE_OK || (flags & self->open_flag_) == 0 ||
      file->pMethods == nullptr) {
    return rc;
  }
  // The file stays SQLite's own; only its method table is swapped.
  self->real_methods_ = file->pMethods;
  self->methods_ = *file->pMethods;
  self->methods_.xSync = &Sync;
  file->pMethods = &self->methods_;
  return rc;
}

int FailingSyncVfs::Sync(sqlite3_file* file, int flags) {
  FailingSyncVfs* self = instance_;
  if (self->armed_) {
    ++self->failed_;
    return SQLITE_IOERR_FSYNC;
  }
  return self->real_methods_->xSync(file, flags);
}

}  // namespace snapshotter
