// The snapshotter's metadata database: one SQLite file, opened in WAL mode
// with synchronous=FULL so every committed transaction is on disk before the
// RPC returns. All access goes through Update()/View(), the transaction
// helper; callers never see the raw connection.
#ifndef SNAPSHOTTER_METASTORE_H_
#define SNAPSHOTTER_METASTORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

struct sqlite3;
struct sqlite3_stmt;

namespace snapshotter {

// A prepared SQL statement; bind parameters are 1-based.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
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
  int64_t ColumnInt64(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

// A live transaction handed to the function given to Update()/View().
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  absl::Status Exec(absl::string_view sql);
  int64_t LastInsertId() const;
  int Changes() const;

 private:
  sqlite3* db_;
};

// PRAGMA user_version: the schema version (0 for an empty database).
absl::StatusOr<int64_t> ReadSchemaVersion(Transaction& tx);

// Owns the connection. Transactions are serialized by a mutex.
// Owns two connections: writes are serialized on one, reads (View) on a
// read-only other, so reads never wait behind a write (WAL mode).
class MetaStore {
 public:
  // Schema version this binary writes; newer databases are refused.
  // 1: snapshots, labels. 2: + store (identity), removals (journal).
  static constexpr int kSchemaVersion = 2;

  enum class Mode {
    kCreate,    // read-write, created if missing, schema applied/migrated
    kExisting,  // read-write, must exist, schema applied/migrated
    kReadOnly,  // read-only, schema untouched (for inspection)
  };

  // Opens the database at `path`. A schema newer than kSchemaVersion is
  // FailedPrecondition and leaves the file untouched.
  static absl::StatusOr<std::unique_ptr<MetaStore>> Open(
      const std::string& path, Mode mode = Mode::kCreate);
  ~MetaStore();

  // Runs `fn` in a write transaction; commits (durably) if it returns OK,
  // rolls back otherwise and returns its error. `on_rollback`, if given,
  // runs whenever the transaction did not commit (fn failed or COMMIT
  // failed), still under the store's lock: undo filesystem work there, since
  // ids of a rolled-back transaction are handed out again at once.
  absl::Status Update(const std::function<absl::Status(Transaction&)>& fn,
                      const std::function<void()>& on_rollback = nullptr);
  // Runs `fn` in a read transaction.
  absl::Status View(const std::function<absl::Status(Transaction&)>& fn);

 private:
  explicit MetaStore(sqlite3* db) : db_(db) {}
  absl::Status Migrate();
  absl::Status RunInTransaction(
      absl::string_view begin,
      const std::function<absl::Status(Transaction&)>& fn,
      const std::function<void()>& on_rollback);
  // Runs `fn` in a read transaction on `db` (the caller holds its lock).
  static absl::Status ReadIn(
      sqlite3* db, const std::function<absl::Status(Transaction&)>& fn);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  absl::Mutex read_mu_;
  sqlite3* reader_ ABSL_GUARDED_BY(read_mu_) = nullptr;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METASTORE_H_
