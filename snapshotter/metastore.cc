// SQLite-backed metadata store and its transaction helper.
#include "snapshotter/metastore.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/wal_preallocation.h"

namespace snapshotter {
namespace {

// How long a statement waits for another connection's lock.
constexpr int kBusyTimeoutMs = 10000;

// Marks the error of a commit in doubt (IsCommitInDoubt).
constexpr absl::string_view kInDoubtPayload =
    "type.googleapis.com/guestpull.CommitInDoubt";

// The error of a commit in doubt, and of every Update after it.
absl::Status InDoubtError(absl::string_view message) {
  absl::Status s =
      absl::UnavailableError(absl::StrCat("metadata database: ", message));
  s.SetPayload(kInDoubtPayload, absl::Cord());
  return s;
}

// Whether SQLite's last error, of primary code `code`, is a full disk:
// SQLITE_FULL, or an I/O error of ENOSPC or EDQUOT (SQLite reports a
// failed size hint, e.g. the file growth a checkpoint asks for first, as
// SQLITE_IOERR_WRITE: "disk I/O error" would read as failing hardware).
bool IsFullDisk(sqlite3* db, int code) {
  const int err = sqlite3_system_errno(db);
  return code == SQLITE_FULL ||
         (code == SQLITE_IOERR && (err == ENOSPC || err == EDQUOT));
}

// For SQLITE_READONLY: which of the database's files cannot be opened for
// writing, and why. SQLite opens the connection read-only when one of them
// cannot be (a -wal or -shm made immutable, a directory in its place) and
// then only says "attempt to write a readonly database", naming no file
// and no errno; "" when each opens.
std::string ReadOnlyCause(const std::string& path) {
  if (path.empty()) return "";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string file = path + suffix;
    int fd = open(file.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      continue;
    }
    if (errno == ENOENT) continue;
    return absl::StrCat(" (", file, " cannot be opened for writing: ",
                        strerror(errno), ")");
  }
  return "";
}

// A full disk (IsFullDisk) is ResourceExhausted and names the database
// file, so the operator sees which filesystem filled up. A lock held by
// another process past the busy wait (SQLITE_BUSY: e.g. sqlite3 with
// locking_mode=EXCLUSIVE) is Unavailable, names the file and how to find
// that process: the database itself is fine. (SQLITE_LOCKED is a conflict
// inside this process, which has no shared cache: Internal as any other.)
absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  int code = sqlite3_extended_errcode(db) & 0xff;
  const char* file = sqlite3_db_filename(db, "main");
  std::string path = file == nullptr ? "" : file;
  if (IsFullDisk(db, code)) {
    // SQLite's text for an I/O error does not say why: the errno does.
    std::string cause =
        code == SQLITE_FULL
            ? ""
            : absl::StrCat(" (", strerror(sqlite3_system_errno(db)), ")");
    return absl::ResourceExhaustedError(
        absl::StrCat("metadata database ", path, ": ", what, ": ",
                     sqlite3_errmsg(db), cause));
  }
  if (code == SQLITE_BUSY) {
    return absl::UnavailableError(absl::StrCat(
        "metadata database ", path, ": ", what, ": ", sqlite3_errmsg(db),
        " by another process (waited ", kBusyTimeoutMs / 1000,
        " s): stop the process that has it open (`fuser -v ", path,
        "`); nothing is wrong with the database"));
  }
  return absl::InternalError(absl::StrCat(
      "metadata database: ", what, ": ", sqlite3_errmsg(db),
      code == SQLITE_READONLY ? ReadOnlyCause(path) : std::string()));
}

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE snapshots (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  key        TEXT NOT NULL UNIQUE,
  parent_id  INTEGER REFERENCES snapshots(id),
  kind       INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  size       INTEGER NOT NULL DEFAULT 0,
  inodes     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX snapshots_parent ON snapshots(parent_id);
CREATE TABLE labels (
  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  value       TEXT NOT NULL,
  PRIMARY KEY (snapshot_id, name)
);
)sql";

// Version 2: the store's identity (also in <root>/store-id) and the removal
// journal (ids whose records are gone and whose directories may be deleted).
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE store (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  store_id  TEXT NOT NULL
);
CREATE TABLE removals (
  id INTEGER PRIMARY KEY
);
)sql";

}  // namespace

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(other.stmt_),
      cache_(other.cache_),
      bind_status_(other.bind_status_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (cache_ != nullptr) {
    cache_->Return(stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
}

StatementCache::~StatementCache() {
  for (auto& [sql, entry] : entries_) sqlite3_finalize(entry.stmt);
}

absl::StatusOr<Statement> StatementCache::Take(absl::string_view sql) {
  auto [it, inserted] = entries_.try_emplace(sql);
  Entry& entry = it->second;
  if (!inserted && entry.lent) {
    // A nested use of the same statement: a private, finalized copy.
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()),
                           &stmt, nullptr) != SQLITE_OK) {
      return SqliteError(db_, absl::StrCat("prepare \"", sql, "\""));
    }
    return Statement(db_, stmt);
  }
  if (inserted) {
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &entry.stmt,
                           nullptr) != SQLITE_OK) {
      absl::Status s = SqliteError(db_, absl::StrCat("prepare \"", sql, "\""));
      sqlite3_finalize(entry.stmt);
      entries_.erase(it);
      return s;
    }
  }
  entry.lent = true;
  lent_[entry.stmt] = &entry;
  return Statement(db_, entry.stmt, this);
}

void StatementCache::Return(sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  auto it = lent_.find(stmt);
  if (it == lent_.end()) return;
  it->second->lent = false;
  lent_.erase(it);
}

Statement& Statement::Bind(int index, absl::string_view text) {
  if (sqlite3_bind_text(stmt_, index, text.data(),
                        static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    bind_status_ = SqliteError(db_, "bind");
  }
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) {
    bind_status_ = SqliteError(db_, "bind");
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) {
    bind_status_ = SqliteError(db_, "bind");
  }
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int extended = sqlite3_extended_errcode(db_);
  if (extended == SQLITE_CONSTRAINT_UNIQUE ||
      extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(
        absl::StrCat("metadata database: ", sqlite3_errmsg(db_)));
  }
  return SqliteError(db_, "step");
}

absl::Status Statement::Run() { return Step().status(); }

std::string Statement::ColumnText(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  int size = sqlite3_column_bytes(stmt_, index);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), size);
}

absl::string_view Statement::ColumnView(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return {};
  return absl::string_view(reinterpret_cast<const char*>(text),
                           sqlite3_column_bytes(stmt_, index));
}

int64_t Statement::ColumnInt64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

absl::StatusOr<Statement> Transaction::Prepare(absl::string_view sql) {
  if (cache_ != nullptr) return cache_->Take(sql);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt,
                         nullptr) != SQLITE_OK) {
    return SqliteError(db_, absl::StrCat("prepare \"", sql, "\""));
  }
  return Statement(db_, stmt);
}

absl::Status Transaction::Exec(absl::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db_, absl::StrCat("exec \"", text.substr(0, 32), "\""));
  }
  return absl::OkStatus();
}

int64_t Transaction::LastInsertId() const {
  return sqlite3_last_insert_rowid(db_);
}

int Transaction::Changes() const { return sqlite3_changes(db_); }

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::Open(
    const std::string& path, Mode mode) {
  ASSIGN_OR_RETURN(std::unique_ptr<MetaStore> store,
                   OpenConnections(path, mode));
  if (mode != Mode::kReadOnly) RETURN_IF_ERROR(store->FinishOpen());
  return store;
}

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::OpenServingReads(
    const std::string& path, Mode mode,
    std::function<absl::Status()> after_wal) {
  if (mode == Mode::kReadOnly) {
    return absl::InvalidArgumentError("OpenServingReads opens for writing");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<MetaStore> store,
                   OpenConnections(path, mode));
  absl::MutexLock lock(&store->mu_);
  store->after_wal_ = std::move(after_wal);
  return store;
}

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::OpenConnections(
    const std::string& path, Mode mode) {
  int flags = SQLITE_OPEN_FULLMUTEX;
  if (mode == Mode::kReadOnly) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (mode == Mode::kCreate) flags |= SQLITE_OPEN_CREATE;
  }
  if (mode == Mode::kReadOnly) {
    // SQLite deletes the -wal beside a database of 0 pages, even for a
    // read-only connection: a reader must not get that far.
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || st.st_size == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot open metadata database ", path,
          " for reading: missing or empty"));
    }
  }
  std::string name = path;
  if (mode == Mode::kReadOnly && !WalHasHeader(path)) {
    // Everything is in the main file (no -wal, or one without a header,
    // which holds no frame): read it as immutable, so SQLite creates no
    // -wal/-shm beside it.
    flags |= SQLITE_OPEN_URI;
    name = "file:";
    for (char c : path) {
      if (c == '%' || c == '?' || c == '#') {
        absl::StrAppend(&name, "%", absl::Hex(static_cast<unsigned char>(c),
                                              absl::kZeroPad2));
      } else {
        name.push_back(c);
      }
    }
    name += "?immutable=1";
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open metadata database ", path, ": ", msg));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  std::unique_ptr<MetaStore> store(new MetaStore(db, path));
  if (mode == Mode::kReadOnly) return store;
  // Until the store is open and its owner agrees (SetBeforeClose), closing
  // leaves the -wal as it is: a failed start must not delete it
  // (store_recovery.h: a -wal missing after a crash means lost writes;
  // FoldWal, in Migrate, keeps the file).
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  RETURN_IF_ERROR(store->Migrate());
  // Reads get their own connection: in WAL mode they see the last commit
  // and never wait for a writer (e.g. one stuck in fsync).
  sqlite3* reader = nullptr;
  rc = sqlite3_open_v2(path.c_str(), &reader,
                       SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = reader ? sqlite3_errmsg(reader) : sqlite3_errstr(rc);
    sqlite3_close(reader);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open metadata database ", path, " for reading: ", msg));
  }
  sqlite3_busy_timeout(reader, kBusyTimeoutMs);
  {
    absl::MutexLock lock(&store->read_mu_);
    store->reader_ = reader;
    store->reader_cache_ = std::make_unique<StatementCache>(reader);
  }
  absl::MutexLock lock(&store->mu_);
  store->open_state_ = OpenState::kPending;
  return store;
}

absl::Status MetaStore::FinishOpen() {
  absl::MutexLock lock(&mu_);
  return FinishOpenLocked();
}

absl::Status MetaStore::FinishOpenLocked() {
  if (open_state_ != OpenState::kPending) return open_status_;
  open_state_ = OpenState::kFinished;
  open_status_ = PrepareWal();
  if (open_status_.ok() && after_wal_) open_status_ = after_wal_();
  after_wal_ = nullptr;
  return open_status_;
}

absl::Status MetaStore::PrepareWal() {
  absl::Status s = PreallocateWal(path_, kWalBytes);
  if (absl::IsResourceExhausted(s)) {
    // A full disk must not leave the store refusing every write until a
    // restart (the Removes that free space go through it): the WAL grows
    // as its commits need, each failing SQLITE_FULL while the disk is full.
    LOG(WARNING) << s.message() << "; the -wal is not preallocated";
    s = absl::OkStatus();
  }
  if (s.ok() && !WalHasHeader(path_)) {
    // A -wal made by this open (the last close deleted the previous one)
    // gets its header on disk now, with a commit that changes nothing, so
    // that a -wal found without one was lost and made again
    // (store_recovery.h). A full disk only logs (a -wal preallocated by an
    // older release may hold zeros only): the store then opens without
    // that proof, as before.
    s = UpdateLocked(
        [](Transaction& tx) {
          return tx.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion));
        },
        nullptr, nullptr);
    if (absl::IsResourceExhausted(s)) {
      LOG(WARNING) << s.message() << "; the -wal has no header yet";
      s = absl::OkStatus();
    }
  }
  if (s.ok()) return s;
  absl::Status named(s.code(), absl::StrCat(path_, ": ", s.message()));
  if (IsCommitInDoubt(s)) named.SetPayload(kInDoubtPayload, absl::Cord());
  return named;
}

void MetaStore::SetBeforeClose(std::function<bool()> fn) {
  absl::MutexLock lock(&mu_);
  before_close_ = std::move(fn);
}

void MetaStore::SetLastWrite(std::function<absl::Status(Transaction&)> write,
                             std::function<void()> on_commit) {
  absl::MutexLock lock(&mu_);
  last_write_ = std::move(write);
  last_commit_ = std::move(on_commit);
}

void MetaStore::SetOnCommitInDoubt(
    std::function<void(const absl::Status&)> fn) {
  absl::MutexLock lock(&mu_);
  on_in_doubt_ = std::move(fn);
}

MetaStore::~MetaStore() {
  {
    absl::MutexLock lock(&mu_);
    bool writable =
        open_state_ == OpenState::kFinished && open_status_.ok() && !in_doubt_;
    if (writable && last_write_) {
      // In doubt, the -wal is kept (below) and the next start settles it:
      // no exit from a close.
      on_in_doubt_ = nullptr;
      absl::Status s = UpdateLocked(last_write_, nullptr, last_commit_);
      if (!s.ok()) LOG(WARNING) << "the store's last write at close: " << s;
    }
    bool checkpoint =
        writable && !in_doubt_ && (!before_close_ || before_close_());
    if (checkpoint) {
      sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
    }
  }
  {
    absl::MutexLock lock(&read_mu_);
    reader_cache_.reset();  // finalized before their connection closes
    if (reader_ != nullptr) sqlite3_close_v2(reader_);
  }
  absl::MutexLock lock(&mu_);
  cache_.reset();
  sqlite3_close_v2(db_);
}

absl::StatusOr<int64_t> ReadSchemaVersion(Transaction& tx) {
  ASSIGN_OR_RETURN(Statement st, tx.Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt64(0) : 0;
}

absl::Status MetaStore::Migrate() {
  absl::MutexLock lock(&mu_);
  // Uncached: the schema may change below, and these run once.
  Transaction tx(db_);
  // The version is checked before anything is written: a newer database is
  // left exactly as it is.
  ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(tx));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "metadata schema version ", version,
        " is newer than this daemon supports (", kSchemaVersion,
        "); run a newer containerd-guest-pull-grpc"));
  }
  // WAL + FULL: a commit returns only after the WAL is fsynced. The WAL
  // keeps its preallocated size (PreallocateWal): a checkpoint restarts it
  // from the beginning, and one grown past it by a long transaction is cut
  // back to it.
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON"}) {
    RETURN_IF_ERROR(tx.Exec(pragma));
  }
  RETURN_IF_ERROR(
      tx.Exec(absl::StrCat("PRAGMA journal_size_limit=", kWalBytes)));
  // Before anything is written: a reader started meanwhile (the index
  // preload) then reads the latest state, which the checkpoint never
  // waits for.
  RETURN_IF_ERROR(FoldWal());
  if (version == kSchemaVersion) return absl::OkStatus();
  RETURN_IF_ERROR(tx.Exec("BEGIN IMMEDIATE"));
  absl::Status s = version < 1 ? tx.Exec(kSchemaV1) : absl::OkStatus();
  if (s.ok()) s = tx.Exec(kSchemaV2);
  if (s.ok()) {
    s = tx.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion));
  }
  if (!s.ok()) {
    tx.Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return tx.Exec("COMMIT");
}

absl::Status MetaStore::FoldWal() {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_FULL,
                                     nullptr, nullptr);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status s = SqliteError(db_, "fold the WAL into the database");
  // A full disk (the frames may need the file to grow) or a busy reader
  // must not keep a daemon from starting (containerd could not free space
  // through it): the WAL stays as it is (metastore.h says what that risks).
  if (IsFullDisk(db_, rc & 0xff) || (rc & 0xff) == SQLITE_BUSY) {
    LOG(WARNING) << s.message() << "; starting with the WAL unfolded";
    return absl::OkStatus();
  }
  return s;
}

bool IsCommitInDoubt(const absl::Status& status) {
  return status.GetPayload(kInDoubtPayload).has_value();
}

absl::Status MetaStore::Update(
    const std::function<absl::Status(Transaction&)>& fn,
    const std::function<void()>& on_rollback,
    const std::function<void()>& on_commit) {
  absl::MutexLock lock(&mu_);
  if (in_doubt_) {
    return InDoubtError(
        "an earlier commit's outcome is unknown (an I/O error); no change is "
        "made until a restart reads the WAL");
  }
  if (absl::Status s = FinishOpenLocked(); !s.ok()) {
    absl::Status failed(s.code(),
                        absl::StrCat("the metadata store takes no writes: its "
                                     "start-up could not finish: ",
                                     s.message()));
    if (IsCommitInDoubt(s)) failed.SetPayload(kInDoubtPayload, absl::Cord());
    return failed;
  }
  return UpdateLocked(fn, on_rollback, on_commit);
}

absl::Status MetaStore::UpdateLocked(
    const std::function<absl::Status(Transaction&)>& fn,
    const std::function<void()>& on_rollback,
    const std::function<void()>& on_commit) {
  Transaction tx(db_, cache_.get());
  RETURN_IF_ERROR(tx.Exec("BEGIN IMMEDIATE"));
  absl::Status s = fn(tx);
  if (s.ok()) {
    s = tx.Exec("COMMIT");
    // An I/O error (e.g. the WAL's fsync; or, its frames synced, mapping
    // them into the -shm) may leave the frames of a commit SQLite reports
    // failed in the WAL, replayed at the next open. Undoing the filesystem
    // work now could leave a replayed record without its directory, and a
    // later commit would hand out its ids again: nothing more is changed,
    // as if the daemon had been killed at this instant. A full disk is not
    // in doubt: a frame that could not be written ends the commit before
    // its last frame. (Nothing calls SQLite between the COMMIT and here.)
    int code = sqlite3_extended_errcode(db_) & 0xff;
    if (!s.ok() && (code == SQLITE_IOERR || code == SQLITE_NOMEM)) {
      in_doubt_ = true;
      s = InDoubtError(absl::StrCat("the commit's outcome is unknown (",
                                    s.message(),
                                    "); the next start recovers it from the "
                                    "WAL"));
      if (on_in_doubt_) on_in_doubt_(s);
      return s;
    }
  }
  if (!s.ok()) {
    // After a failed COMMIT SQLite may have rolled back already; a second
    // ROLLBACK then fails harmlessly.
    tx.Exec("ROLLBACK").IgnoreError();
    if (on_rollback) on_rollback();
    return s;
  }
  if (on_commit) on_commit();
  return absl::OkStatus();
}

absl::Status MetaStore::View(
    const std::function<absl::Status(Transaction&)>& fn) {
  absl::MutexLock lock(&read_mu_);
  if (reader_ == nullptr) {
    // A store opened kReadOnly has one connection, the main one.
    absl::MutexLock main_lock(&mu_);
    return ReadIn(db_, cache_.get(), fn);
  }
  return ReadIn(reader_, reader_cache_.get(), fn);
}

void MetaStore::ReleaseMemory() {
  {
    absl::MutexLock lock(&read_mu_);
    if (reader_ != nullptr) sqlite3_db_release_memory(reader_);
  }
  absl::MutexLock lock(&mu_);
  sqlite3_db_release_memory(db_);
}

absl::Status MetaStore::ReadIn(
    sqlite3* db, StatementCache* cache,
    const std::function<absl::Status(Transaction&)>& fn) {
  Transaction tx(db, cache);
  RETURN_IF_ERROR(tx.Exec("BEGIN"));
  absl::Status s = fn(tx);
  tx.Exec(s.ok() ? "COMMIT" : "ROLLBACK").IgnoreError();
  return s;
}

}  // namespace snapshotter
