// A test SQLite VFS whose fsyncs or writes of chosen files fail on command.
#ifndef SNAPSHOTTER_FAILING_IO_VFS_H_
#define SNAPSHOTTER_FAILING_IO_VFS_H_

#include <sqlite3.h>

#include <atomic>
#include <mutex>

namespace snapshotter {

// The default VFS while it lives (one at a time): SQLite's own, except for
// the files opened with `open_flag` (SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_WAL):
// while FailSyncs, their xSync returns SQLITE_IOERR_FSYNC (the writes
// before it still reach the file); while FailWrites, their xWrite returns
// SQLITE_FULL and writes nothing. In WAL mode a commit writes and syncs only
// the WAL, a checkpoint the main file too. Connections opened while it lives
// must be closed before it is destroyed.
class FailingIoVfs {
 public:
  explicit FailingIoVfs(int open_flag);
  ~FailingIoVfs();
  FailingIoVfs(const FailingIoVfs&) = delete;
  FailingIoVfs& operator=(const FailingIoVfs&) = delete;

  void FailSyncs(bool fail) { fail_syncs_ = fail; }
  void FailWrites(bool fail) { fail_writes_ = fail; }
  // Syncs and writes failed so far.
  int failed() const { return failed_; }

 private:
  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file,
                  int flags, int* out_flags);
  static int Sync(sqlite3_file* file, int flags);
  static int Write(sqlite3_file* file, const void* data, int amount,
                   sqlite3_int64 offset);

  static FailingIoVfs* instance_;
  const int open_flag_;
  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
  std::once_flag methods_once_;  // files open on several threads at once
  const sqlite3_io_methods* real_methods_ = nullptr;
  sqlite3_io_methods methods_;
  std::atomic<bool> fail_syncs_{false};
  std::atomic<bool> fail_writes_{false};
  std::atomic<int> failed_{0};
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_FAILING_IO_VFS_H_
