// A test SQLite VFS whose fsyncs of chosen files fail on command.
#ifndef SNAPSHOTTER_FAILING_SYNC_VFS_H_
#define SNAPSHOTTER_FAILING_SYNC_VFS_H_

#include <sqlite3.h>

namespace snapshotter {

// The default VFS while it lives (one at a time): SQLite's own, except that
// xSync of the files opened with `open_flag` (SQLITE_OPEN_MAIN_DB,
// SQLITE_OPEN_WAL) returns SQLITE_IOERR_FSYNC while armed; their writes
// still reach the file. In WAL mode a commit syncs only the WAL, a
// checkpoint the main file too. Connections opened while it lives must be
// closed before it is destroyed.
class FailingSyncVfs {
 public:
  explicit FailingSyncVfs(int open_flag);
  ~FailingSyncVfs();
  FailingSyncVfs(const FailingSyncVfs&) = delete;
  FailingSyncVfs& operator=(const FailingSyncVfs&) = delete;

  void Arm(bool armed) { armed_ = armed; }
  // Syncs failed so far.
  int failed() const { return failed_; }

 private:
  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file,
                  int flags, int* out_flags);
  static int Sync(sqlite3_file* file, int flags);

  static FailingSyncVfs* instance_;
  const int open_flag_;
  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
  const sqlite3_io_methods* real_methods_ = nullptr;
  sqlite3_io_methods methods_;
  bool armed_ = false;
  int failed_ = 0;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_FAILING_SYNC_VFS_H_
