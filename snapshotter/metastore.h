// The snapshotter's metadata database: one SQLite file, opened in WAL mode
// with synchronous=FULL so every committed transaction is on disk before the
// RPC returns; the WAL is preallocated (kWalBytes) so that, after the
// first commit, its fsync is a data flush with no filesystem metadata
// commit. All access goes through Update()/View(), the transaction
// helper; callers never see the raw connection.
#ifndef SNAPSHOTTER_METASTORE_H_
#define SNAPSHOTTER_METASTORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

struct sqlite3;
struct sqlite3_stmt;

namespace snapshotter {

class StatementCache;

// A prepared SQL statement; bind parameters are 1-based. One taken from a
// StatementCache goes back to it (reset) when destroyed, else finalized.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, StatementCache* cache = nullptr)
      : db_(db), stmt_(stmt), cache_(cache) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  std::string ColumnText(int index) const;
  // The text without a copy: valid until the next Step.
  absl::string_view ColumnView(int index) const;
  int64_t ColumnInt64(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  StatementCache* cache_;
  absl::Status bind_status_;
};

// The prepared statements of one connection, by SQL text: each statement is
// prepared once and reused (reset) afterwards. Guarded by the lock of its
// connection. A statement already lent out (a nested use of the same SQL)
// is prepared afresh for the nested user and finalized after it.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache();

  absl::StatusOr<Statement> Take(absl::string_view sql);
  // Called by a Statement of this cache when it is destroyed.
  void Return(sqlite3_stmt* stmt);

 private:
  struct Entry {
    sqlite3_stmt* stmt = nullptr;
    bool lent = false;
  };
  sqlite3* db_;
  // Node-based: lent_ points at entries, which must not move when it grows.
  absl::node_hash_map<std::string, Entry> entries_;
  absl::flat_hash_map<sqlite3_stmt*, Entry*> lent_;
};

// A live transaction handed to the function given to Update()/View().
class Transaction {
 public:
  explicit Transaction(sqlite3* db, StatementCache* cache = nullptr)
      : db_(db), cache_(cache) {}
  // Cached when the transaction has a cache (those of a MetaStore do).
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  absl::Status Exec(absl::string_view sql);
  int64_t LastInsertId() const;
  int Changes() const;

 private:
  sqlite3* db_;
  StatementCache* cache_;
};

// True for the error of a commit in doubt, and of every Update after it
// (MetaStore::Update).
bool IsCommitInDoubt(const absl::Status& status);

// PRAGMA user_version: the schema version (0 for an empty database).
absl::StatusOr<int64_t> ReadSchemaVersion(Transaction& tx);

// Owns two connections: writes are serialized on one, reads (View) on a
// read-only other, so reads never wait behind a write (WAL mode).
class MetaStore {
 public:
  // Schema version this binary writes; newer databases are refused.
  // 1: snapshots, labels. 2: + store (identity), removals (journal).
  static constexpr int kSchemaVersion = 2;
  // Size the WAL is preallocated to (written zeros) and kept at: a little
  // more than SQLite's automatic checkpoint interval (1000 pages of 4 KiB
  // and their frame headers), so a commit's fdatasync writes data only.
  static constexpr int64_t kWalBytes = 5 << 20;

  enum class Mode {
    kCreate,    // read-write, created if missing, schema applied/migrated
    kExisting,  // read-write, must exist, schema applied/migrated
    kReadOnly,  // read-only, schema untouched (for inspection)
  };

  // Opens the database at `path`. For kCreate and kExisting, a schema newer
  // than kSchemaVersion is FailedPrecondition and leaves the file untouched;
  // kReadOnly does not check it.
  static absl::StatusOr<std::unique_ptr<MetaStore>> Open(
      const std::string& path, Mode mode = Mode::kCreate);
  // Open (kCreate or kExisting) that serves reads at once: the WAL's
  // preallocation and header commit (each waits for the disk, and for
  // every other writer's flush queued before it), then `after_wal`, run
  // at the first Update or FinishOpen, whichever comes first, under the
  // store's lock, so no write commits before they are done. Their error is
  // that call's and every later Update's: the store then writes nothing.
  static absl::StatusOr<std::unique_ptr<MetaStore>> OpenServingReads(
      const std::string& path, Mode mode,
      std::function<absl::Status()> after_wal);
  // Runs what OpenServingReads deferred, if it has not run; its status.
  absl::Status FinishOpen();
  ~MetaStore();

  // Runs `fn` in a write transaction; commits (durably) if it returns OK,
  // rolls back otherwise and returns its error. `on_rollback`, if given,
  // runs whenever the transaction did not commit (fn failed or COMMIT
  // failed), still under the store's lock: undo filesystem work there, since
  // ids of a rolled-back transaction are handed out again at once.
  // A COMMIT that failed with an I/O error or out of memory (SQLITE_IOERR*,
  // e.g. the WAL's fsync; SQLITE_NOMEM) is in doubt, since the next open
  // may replay it: neither callback runs, the store refuses every later
  // Update (Unavailable), its close neither checkpoints nor runs the
  // SetBeforeClose function, and the handler of SetOnCommitInDoubt runs,
  // under the store's lock. Its error and the later ones are
  // IsCommitInDoubt.
  // `on_commit`, if given, runs after a durable COMMIT, still under the
  // store's lock, so that what it records (the in-memory index) follows the
  // database in commit order; it must do no I/O.
  absl::Status Update(const std::function<absl::Status(Transaction&)>& fn,
                      const std::function<void()>& on_rollback = nullptr,
                      const std::function<void()>& on_commit = nullptr);
  // Runs `fn` in a read transaction.
  absl::Status View(const std::function<absl::Status(Transaction&)>& fn);

  // Frees the page caches of both connections (e.g. after the whole
  // database was read once into memory).
  void ReleaseMemory();

  // `fn` runs when an opened read-write store is destroyed, before the
  // connections close, e.g. to remove the marker of an open store
  // (store_recovery.h). The last close then folds the -wal into the
  // database and deletes it only if `fn` returned true; a store whose Open
  // failed or never finished (FinishOpen), or with a commit in doubt, never
  // does (nor runs `fn`).
  void SetBeforeClose(std::function<bool()> fn);

  // `write` runs when an opened read-write store is destroyed, as its last
  // write transaction, before the SetBeforeClose function, if the close
  // would fold the -wal as far as the store knows (its open finished, no
  // commit in doubt); `on_commit` runs once it committed (durably), still
  // under the store's lock. A failure is logged and the close goes on; a
  // commit in doubt there keeps the -wal as a crash would (the
  // SetOnCommitInDoubt handler does not run at close).
  void SetLastWrite(std::function<absl::Status(Transaction&)> write,
                    std::function<void()> on_commit);

  // `fn` runs when a commit turns out in doubt (Update), with its error;
  // the daemon exits there, so that the restart settles it.
  void SetOnCommitInDoubt(std::function<void(const absl::Status&)> fn);

 private:
  explicit MetaStore(sqlite3* db, std::string path)
      : path_(std::move(path)),
        db_(db),
        cache_(std::make_unique<StatementCache>(db)) {}
  static absl::StatusOr<std::unique_ptr<MetaStore>> OpenConnections(
      const std::string& path, Mode mode);
  absl::Status Migrate();
  // The deferred part of OpenServingReads (all of it, for Open): once.
  absl::Status FinishOpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Preallocates the WAL and gives a new one its header on disk.
  absl::Status PrepareWal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UpdateLocked(const std::function<absl::Status(Transaction&)>& fn,
                            const std::function<void()>& on_rollback,
                            const std::function<void()>& on_commit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checkpoints the whole WAL into the database file, fsynced; run by
  // Migrate at every read-write open. A start after a commit in doubt may
  // have read that commit's frames back from the page cache although they
  // never reached the disk (a failed fsync leaves them cached and clean):
  // folded and fsynced here, they are on disk before anything is served.
  // An I/O error fails the open; a full disk or a reader busy for 10 s
  // only logs, and the WAL stays as it is: then, after a commit in doubt,
  // a power cut can still lose its frames and every commit after them.
  absl::Status FoldWal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `fn` in a read transaction on `db` (the caller holds its lock).
  static absl::Status ReadIn(
      sqlite3* db, StatementCache* cache,
      const std::function<absl::Status(Transaction&)>& fn);

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<StatementCache> cache_ ABSL_GUARDED_BY(mu_);
  absl::Mutex read_mu_;
  sqlite3* reader_ ABSL_GUARDED_BY(read_mu_) = nullptr;
  std::unique_ptr<StatementCache> reader_cache_ ABSL_GUARDED_BY(read_mu_);
  std::function<bool()> before_close_ ABSL_GUARDED_BY(mu_);
  std::function<absl::Status(Transaction&)> last_write_ ABSL_GUARDED_BY(mu_);
  std::function<void()> last_commit_ ABSL_GUARDED_BY(mu_);
  // How far a read-write open got.
  enum class OpenState {
    // Read-only; or a read-write open whose connections failed (Migrate,
    // the reader), destroyed before it was returned.
    kNoWrites,
    kPending,   // connections open; FinishOpenLocked to run
    kFinished,  // FinishOpenLocked ran: open_status_ is its status
  };
  OpenState open_state_ ABSL_GUARDED_BY(mu_) = OpenState::kNoWrites;
  absl::Status open_status_ ABSL_GUARDED_BY(mu_);
  std::function<absl::Status()> after_wal_ ABSL_GUARDED_BY(mu_);
  bool in_doubt_ ABSL_GUARDED_BY(mu_) = false;  // a COMMIT is in doubt
  std::function<void(const absl::Status&)> on_in_doubt_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METASTORE_H_
