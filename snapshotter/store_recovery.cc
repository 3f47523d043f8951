// Startup recovery: inspect the root, refuse or open the store.
#include "snapshotter/store_recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/async_or_deferred.h"
#include "base/errno_error.h"
#include "base/file_type.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/group_commit.h"
#include "snapshotter/store_state.h"
#include "snapshotter/wal_damage.h"
#include "snapshotter/wal_preallocation.h"

namespace snapshotter {
namespace {

constexpr char kRefusalPayload[] = "guest-pull/store-refused";

// `word` as one shell word: as it is when the shell reads it unchanged,
// else in single quotes. A root may hold a space, a quote or a "$"
// (config.cc refuses only control characters, "," ":" and "\\"): copied
// unquoted, the reset command split it or expanded it into another path.
std::string ShellWord(absl::string_view word) {
  const bool plain =
      !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
               static_cast<unsigned char>(c) >= 0x80 ||
               absl::string_view("/._-+@%=").find(c) != absl::string_view::npos;
      });
  if (plain) return std::string(word);
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

// `remedy`, when given, replaces the advice to put the matching
// metadata.db back (for a refusal that another database would not fix).
absl::Status Refuse(const SnapshotDirs& dirs, absl::string_view found,
                    bool reset_helps = true, absl::string_view remedy = "") {
  std::string how =
      reset_helps
          ? absl::StrCat(
                " ", remedy.empty()
                         ? "To keep the snapshots, put the matching "
                           "metadata.db (with its -wal file) back and start "
                           "again."
                         : remedy,
                " Otherwise run `containerd-guest-pull-grpc --root=",
                ShellWord(dirs.root()),
                " --reset-store`: it moves metadata.db and every snapshot "
                "directory to ", dirs.QuarantineDir(),
                "/ (nothing is deleted) so the next start begins with an "
                "empty store; then remove the images pulled through this "
                "snapshotter in containerd (crictl rmi, ctr -n k8s.io images "
                "rm) and pull them again.")
          : "";
  absl::Status s = absl::FailedPreconditionError(absl::StrCat(
      "refusing to start on ", dirs.root(), ": ", found,
      ". Nothing was changed.", how,
      " See docs/operations.md, \"Metadata database lost or stale\"."));
  s.SetPayload(kRefusalPayload, absl::Cord("1"));
  return s;
}

std::string DescribeIds(const std::set<int64_t>& ids) {
  std::vector<int64_t> shown;
  for (int64_t id : ids) {
    if (shown.size() == 8) break;
    shown.push_back(id);
  }
  if (ids.size() == 1) return absl::StrCat("id ", *ids.begin());
  return absl::StrCat(ids.size(), " of them: ids ", absl::StrJoin(shown, ", "),
                      ids.size() > shown.size() ? ", ..." : "");
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// What the database file holds, read without changing it.
struct DbSurvey {
  enum class State { kAbsent, kEmpty, kCorrupt, kLocked, kNewer, kOk } state;
  std::string detail;
  int64_t version = 0;
  std::string store_id;
  int64_t counter = 0;
  std::set<int64_t> records;
  std::map<int64_t, ContentlessRecord> contentless;
  std::set<int64_t> journal;
  int64_t generation = 0;
};

absl::Status ReadSurvey(Transaction& tx, DbSurvey& survey) {
  ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(tx));
  survey.version = version;
  if (version > MetaStore::kSchemaVersion) return absl::OkStatus();
  ASSIGN_OR_RETURN(Statement check, tx.Prepare("PRAGMA quick_check"));
  RETURN_IF_ERROR(check.Step().status());
  if (check.ColumnText(0) != "ok") {
    return absl::DataLossError(check.ColumnText(0));
  }
  if (version == 0) {
    ASSIGN_OR_RETURN(Statement tables,
                     tx.Prepare("SELECT COUNT(*) FROM sqlite_master"));
    RETURN_IF_ERROR(tables.Step().status());
    if (tables.ColumnInt64(0) > 0) {
      return absl::DataLossError(
          "schema version 0 but it holds tables: not a metadata database of "
          "containerd-guest-pull-grpc");
    }
    return absl::OkStatus();
  }
  if (version >= 2) {
    ASSIGN_OR_RETURN(survey.store_id, ReadStoreId(tx));
    ASSIGN_OR_RETURN(survey.journal, JournalledIds(tx));
    ASSIGN_OR_RETURN(survey.generation, ReadGeneration(tx));
  }
  ASSIGN_OR_RETURN(survey.counter, IdCounter(tx));
  ASSIGN_OR_RETURN(survey.records, RecordIds(tx));
  ASSIGN_OR_RETURN(survey.contentless, ContentlessRecords(tx));
  return absl::OkStatus();
}

DbSurvey SurveyDatabase(const std::string& path) {
  DbSurvey survey{DbSurvey::State::kOk};
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    survey.state = DbSurvey::State::kAbsent;
    survey.detail = errno == ENOENT ? "is missing" : strerror(errno);
    return survey;
  }
  // SQLite reports a directory there as "disk I/O error", which sends
  // one to the disk (a link to a file is fine).
  struct stat target;
  if (stat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode)) {
    survey.state = DbSurvey::State::kCorrupt;
    survey.detail = absl::StrCat(
        "is not a regular file (", base::FileTypeName(target.st_mode), ")");
    return survey;
  }
  if (st.st_size == 0) {
    survey.state = DbSurvey::State::kEmpty;
    survey.detail = "is empty (0 bytes)";
    return survey;
  }
  auto store = MetaStore::Open(path, MetaStore::Mode::kReadOnly);
  absl::Status s = store.ok() ? (*store)->View([&](Transaction& tx) {
    return ReadSurvey(tx, survey);
  })
                              : store.status();
  if (absl::IsUnavailable(s)) {
    // Another process's lock (SqliteError): not a damaged database.
    survey.state = DbSurvey::State::kLocked;
    survey.detail = std::string(s.message());
  } else if (!s.ok()) {
    survey.state = DbSurvey::State::kCorrupt;
    survey.detail = absl::StrCat("cannot be read (", s.message(), ")");
  } else if (survey.version > MetaStore::kSchemaVersion) {
    survey.state = DbSurvey::State::kNewer;
  } else if (survey.version == 0) {
    survey.state = DbSurvey::State::kEmpty;
    survey.detail = "holds no tables";
  }
  return survey;
}

// The first `max` bytes of `path` if it is a regular file (a symlink to
// one only if `follow`), else an error that says why: anything else put
// there (a FIFO, a device) must not block or flood the start.
absl::StatusOr<std::string> ReadFileHead(const std::string& path, size_t max,
                                         bool follow) {
  int fd = open(path.c_str(),
                O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) return base::ErrnoError("open", path, errno);
  struct stat st;
  std::string head(max, '\0');
  absl::Status status;
  ssize_t n = 0;
  if (fstat(fd, &st) != 0) {
    status = base::ErrnoError("fstat", path, errno);
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file"));
  } else if ((n = pread(fd, head.data(), max, 0)) < 0) {
    status = base::ErrnoError("read", path, errno);
  }
  close(fd);
  if (!status.ok()) return status;
  head.resize(n);
  return head;
}

absl::StatusOr<std::optional<std::string>> ReadMarker(const std::string& path) {
  if (!Exists(path)) return std::nullopt;
  // An id is 32 hex digits.
  absl::StatusOr<std::string> text = ReadFileHead(path, 256, /*follow=*/true);
  if (!text.ok()) {
    return absl::InternalError(text.status().message());
  }
  std::string id(absl::StripAsciiWhitespace(*text));
  if (id.empty()) {
    return absl::DataLossError(absl::StrCat(path, " is empty"));
  }
  // Anything else (zeros a power cut left, a cut or edited file) is a
  // damaged file, not another store's id: that refusal would say the
  // database comes from another root, and print the bytes raw.
  if (id.size() != 32 || !std::all_of(id.begin(), id.end(), [](char c) {
        return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
      })) {
    return absl::DataLossError(absl::StrCat(
        path, " does not hold a store id (32 hex digits) but \"",
        absl::CHexEscape(text->substr(0, 80)), "\""));
  }
  return id;
}

// Writes `content` to `path` through a temp file (`path`.new), fsynced and
// renamed over it, and makes the rename durable (unless not `sync_root`:
// the caller then flushes the root): a crash, or a failure before the
// rename, leaves the old file (or none), never a torn one.
absl::Status WriteFileDurably(const SnapshotDirs& dirs, const std::string& path,
                              absl::string_view content,
                              bool sync_root = true) {
  std::string temp = path + ".new";
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", temp, ": ", strerror(errno)));
  }
  ssize_t n = write(fd, content.data(), content.size());
  int err = n < 0 ? errno : 0;
  if (err == 0 && n != static_cast<ssize_t>(content.size())) err = ENOSPC;
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err == 0 && rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(temp.c_str());
    return absl::InternalError(
        absl::StrCat("write ", path, ": ", strerror(err)));
  }
  return sync_root ? SyncDir(dirs.root()) : absl::OkStatus();
}

absl::Status WriteMarker(const SnapshotDirs& dirs, const std::string& id) {
  return WriteFileDurably(dirs, dirs.StoreIdPath(), id + "\n");
}

// The content of <root>/store-open when the -wal had its header on disk as
// the marker was made (an empty marker, from a release before it, proves
// nothing about the header).
constexpr absl::string_view kWalHeaderMarked = "wal-header\n";

// Makes <root>/store-open, durable; `wal_header`: the -wal has its header
// on disk.
absl::Status MarkStoreOpen(const SnapshotDirs& dirs, bool wal_header) {
  return WriteFileDurably(dirs, dirs.OpenMarkerPath(),
                          wal_header ? kWalHeaderMarked : "");
}

// True if <root>/store-open is a file saying the -wal had its header
// (MarkStoreOpen).
bool MarkedWithWalHeader(const SnapshotDirs& dirs) {
  absl::StatusOr<std::string> text =
      ReadFileHead(dirs.OpenMarkerPath(), 32, /*follow=*/false);
  return text.ok() && *text == kWalHeaderMarked;
}

// Removes <root>/store-open, durably.
absl::Status MarkStoreClosed(const SnapshotDirs& dirs) {
  std::string path = dirs.OpenMarkerPath();
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("unlink ", path, ": ", strerror(errno)));
  }
  return SyncDir(dirs.root());
}

// <root>/store-generation: "<store id> <generation>" on its first line
// (anything after it is left for a later release), written at each clean
// stop after the database recorded that generation.
struct GenerationFile {
  std::string store_id;
  int64_t generation = 0;
};

absl::StatusOr<std::optional<GenerationFile>> ReadGenerationFile(
    const SnapshotDirs& dirs) {
  std::string path = dirs.GenerationPath();
  if (!Exists(path)) return std::nullopt;
  absl::StatusOr<std::string> text = ReadFileHead(path, 256, /*follow=*/false);
  if (!text.ok()) {
    return absl::InternalError(text.status().message());
  }
  std::string line = text->substr(0, text->find('\n'));
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, ' ', absl::SkipWhitespace());
  GenerationFile file;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &file.generation) ||
      file.generation < 0) {
    return absl::DataLossError(absl::StrCat(
        path, " does not read \"<store id> <generation>\" (it holds \"",
        absl::CHexEscape(text->substr(0, 80)), "\")"));
  }
  file.store_id = std::string(fields[0]);
  return file;
}

absl::Status WriteGenerationFile(const SnapshotDirs& dirs,
                                 const std::string& store_id,
                                 int64_t generation) {
  return WriteFileDurably(dirs, dirs.GenerationPath(),
                          absl::StrCat(store_id, " ", generation, "\n"),
                          /*sync_root=*/false);
}

absl::StatusOr<std::string> NewStoreId() {
  unsigned char bytes[16];
  std::ifstream random("/dev/urandom", std::ios::binary);
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) {
    return absl::InternalError("cannot read /dev/urandom");
  }
  std::string id;
  for (unsigned char b : bytes) absl::StrAppend(&id, absl::Hex(b, absl::kZeroPad2));
  return id;
}

// Refusal for a readable database that does not match the directories.
absl::Status CheckConsistent(const SnapshotDirs& dirs, const DbSurvey& db,
                             const std::optional<std::string>& marker,
                             const std::set<int64_t>& dir_ids,
                             const std::set<int64_t>& dirs_without_fs) {
  std::string db_path = dirs.MetadataPath();
  if (marker && db.store_id.empty()) {
    return Refuse(dirs, absl::StrCat(
        db_path, " (schema ", db.version, ") carries no store id but ",
        dirs.StoreIdPath(), " names store ", *marker,
        ": an old copy of the database was restored"));
  }
  if (marker && db.store_id != *marker) {
    return Refuse(dirs, absl::StrCat(
        db_path, " belongs to store ", db.store_id, " but ",
        dirs.StoreIdPath(), " names store ", *marker,
        ": the database comes from another root"));
  }
  // The directory of a record without content (an active or view
  // snapshot, a remote layer) was not flushed when it was made, or never
  // made (a remote layer left empty): a power cut may have lost it, and it
  // is made again (RecreateEmptyDirs; a layer's when a snapshot on it
  // needs it). A missing directory of a layer a Commit flushed means a
  // stale database.
  // Such a layer's content is its fs/: a directory there without one (or
  // a file in its place) has lost it as surely, and a start that took it
  // would hand out mounts on a lower directory that is not there.
  std::set<int64_t> missing, without_fs;
  for (int64_t id : db.records) {
    if (db.contentless.count(id)) continue;
    if (!dir_ids.count(id)) {
      missing.insert(id);
    } else if (dirs_without_fs.count(id)) {
      without_fs.insert(id);
    }
  }
  if (!missing.empty()) {
    return Refuse(dirs, absl::StrCat(
        db_path, " has records whose snapshot directories are missing (",
        DescribeIds(missing), "): the database is stale (an old copy or a "
        "lost -wal) or directories were deleted by hand"));
  }
  if (!without_fs.empty()) {
    return Refuse(dirs, absl::StrCat(
        db_path, " has committed layers whose snapshot directories hold no "
        "fs/ directory, where their content was (", DescribeIds(without_fs),
        ", e.g. ", dirs.FsPath(*without_fs.begin()), "): it was deleted or "
        "replaced by hand"));
  }
  // Directories beyond the counter are creations a crash interrupted before
  // their batch committed (Sweep then moves the empty ones to trash and a
  // non-empty one to quarantine) only if they fit one batch: ids at most
  // kMaxBatch past the counter, at most one holding data (group_commit.h).
  // Anything else is data the database does not know.
  std::set<int64_t> beyond, with_data;
  for (int64_t id : dir_ids) {
    if (id <= db.counter || db.records.count(id)) continue;
    beyond.insert(id);
    if (!SnapshotDirs::HoldsNoData(dirs.SnapshotPath(id))) with_data.insert(id);
  }
  bool interrupted =
      beyond.empty() ||
      (*beyond.rbegin() <= db.counter + int64_t{GroupCommitter::kMaxBatch} &&
       with_data.size() <= 1);
  if (!interrupted) {
    return Refuse(dirs, absl::StrCat(
        dirs.SnapshotsDir(), " holds snapshot directories the database never "
        "handed out (", DescribeIds(beyond), "; ", with_data.size(),
        " holding data; its highest id is ", db.counter,
        "): the database is stale (an old copy or a lost -wal)"));
  }
  return absl::OkStatus();
}

// Refusal for a database older than the store's last clean stop: each
// clean stop records a new generation in the database, then in
// store-generation (store_recovery.h), so a database behind the file is a
// copy taken before that stop, missing what was done since (a layer
// committed from an active snapshot the copy still lists, which
// containerd's garbage collector would then remove with its data; a layer
// created since, which the start would take for an interrupted creation).
absl::Status CheckGeneration(const SnapshotDirs& dirs, const DbSurvey& db,
                             const std::optional<GenerationFile>& file) {
  if (!file) return absl::OkStatus();
  if (file->store_id != db.store_id) {
    // Left by a --reset-store of a release that does not know the file,
    // or the database is new (migrated from schema 1): rewritten at the
    // next clean stop.
    LOG(WARNING) << dirs.GenerationPath() << " names store " << file->store_id
                 << ", not this one (" << db.store_id
                 << "): ignored, rewritten at the next clean stop";
    return absl::OkStatus();
  }
  if (db.generation >= file->generation) return absl::OkStatus();
  return Refuse(dirs, absl::StrCat(
      dirs.MetadataPath(), " is at generation ", db.generation, " but ",
      dirs.GenerationPath(), " shows the store was stopped cleanly at "
      "generation ", file->generation, ": the database is an old copy, "
      "taken before the store's last clean stop, and misses what was done "
      "since (layers committed, created or removed); starting on it could "
      "delete layers containerd still uses"));
}

// Makes the lost directories of active and view snapshots (records without
// content, see CheckConsistent) again, empty, with a missing fs/ or work/.
// A remote layer without content needs none until a snapshot on it is
// created or mounted (Snapshotter::MakeLayerDirs): the many of them cost
// the start nothing.
absl::Status RecreateEmptyDirs(const SnapshotDirs& dirs, const DbSurvey& db) {
  for (const auto& [id, record] : db.contentless) {
    if (record.kind == Kind::kCommitted) continue;
    std::string parent_fs =
        record.parent_id == 0 ? "" : dirs.FsPath(record.parent_id);
    ASSIGN_OR_RETURN(bool made, dirs.Recreate(id, record.kind == Kind::kActive,
                                              parent_fs));
    if (made) {
      LOG(WARNING) << "made the lost empty directory of snapshot id " << id
                   << " (" << KindName(record.kind)
                   << ", no content) again in " << dirs.SnapshotPath(id);
    }
  }
  return absl::OkStatus();
}

// Makes the database of a new store whole or not at all: built as
// metadata.db.new (schema and the store's id, folded into the file, its
// -wal deleted at close), flushed, then renamed into place. A start cut
// before the rename leaves only .new files, removed by the next creation
// (nothing was served from them); never a -wal beside metadata.db, which a
// start could not tell from a stray one.
absl::Status RemoveNewDatabase(const std::string& temp) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string path = temp + suffix;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(
          absl::StrCat("remove ", path,
                       " (left by a creation cut short): ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status CreateDatabase(const SnapshotDirs& dirs,
                            const std::string& store_id) {
  const std::string temp = dirs.MetadataPath() + ".new";
  RETURN_IF_ERROR(RemoveNewDatabase(temp));
  absl::Status s;
  {
    // Not in doubt, whatever fails: the file is thrown away and made again.
    auto store = MetaStore::Open(temp, MetaStore::Mode::kCreate);
    s = store.ok() ? (*store)->Update([&](Transaction& tx) {
      return WriteStoreId(tx, store_id);
    })
                   : store.status();
    if (!s.ok()) {
      s = absl::Status(s.code(),
                       absl::StrCat("creating ", temp, ": ", s.message()));
    }
  }
  if (s.ok() && Exists(temp + "-wal")) {
    s = absl::InternalError(
        absl::StrCat("creating ", dirs.MetadataPath(), ": closing ", temp,
                     " did not fold its -wal into it (a full disk?)"));
  }
  if (s.ok()) {
    int fd = open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    int err = fd < 0 || fsync(fd) != 0 ? errno : 0;
    if (fd >= 0) close(fd);
    if (err == 0 && rename(temp.c_str(), dirs.MetadataPath().c_str()) != 0) {
      err = errno;
    }
    if (err != 0) {
      s = absl::InternalError(absl::StrCat(
          "creating ", dirs.MetadataPath(), " from ", temp, ": ", strerror(err)));
    }
  }
  if (!s.ok()) {
    // Not left to fill a full disk until the next start (which would
    // remove them too).
    (void)RemoveNewDatabase(temp);
    return s;
  }
  return SyncDir(dirs.root());
}

// Moves stray -wal/-shm files of a missing or empty database aside, so SQLite does
// not replay them into the fresh one.
absl::Status QuarantineStrayWal(const SnapshotDirs& dirs) {
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string path = dirs.MetadataPath() + suffix;
    if (!Exists(path)) continue;
    ASSIGN_OR_RETURN(std::string moved, dirs.Quarantine(path));
    LOG(WARNING) << "moved " << path << " of a missing database to " << moved;
  }
  return absl::OkStatus();
}

}  // namespace

bool IsRefusal(const absl::Status& status) {
  return status.GetPayload(kRefusalPayload).has_value();
}

absl::Status AsRefusal(absl::Status status) {
  status.SetPayload(kRefusalPayload, absl::Cord("1"));
  return status;
}

absl::StatusOr<OpenedStore> OpenStore(const SnapshotDirs& dirs) {
  // The daemon only ever makes a file there: anything else was put there by
  // hand, and taken as a marker it would be refused as a lost -wal, or (a
  // directory) be neither rewritten nor removed.
  struct stat marker_st;
  if (stat(dirs.OpenMarkerPath().c_str(), &marker_st) == 0 &&
      !S_ISREG(marker_st.st_mode)) {
    return Refuse(
        dirs,
        absl::StrCat(dirs.OpenMarkerPath(), " is not a regular file (",
                     base::FileTypeName(marker_st.st_mode),
                     "): the daemon makes a file there while its store is "
                     "open and removes it at a clean stop, so this one was "
                     "not made by it; remove it and start again"),
        /*reset_helps=*/false);
  }
  // Looked at before SQLite opens the database (which makes a -wal).
  bool left_open = Exists(dirs.OpenMarkerPath());
  bool wal_missing = !Exists(dirs.MetadataPath() + "-wal");
  // A -wal that had its header once and has none now was lost and made
  // again empty (e.g. by sqlite3 -readonly, which makes a missing one).
  bool wal_remade = left_open && !wal_missing && MarkedWithWalHeader(dirs) &&
                    !WalHasHeader(dirs.MetadataPath());
  // A file in the place of snapshots/ (a link to a directory is followed):
  // the snapshot directories are not where the database has them, and
  // listing it would fail every start alike (ENOTDIR, exit 1, restarted).
  struct stat snapshots_st;
  if (stat(dirs.SnapshotsDir().c_str(), &snapshots_st) == 0 &&
      !S_ISDIR(snapshots_st.st_mode)) {
    return Refuse(
        dirs,
        absl::StrCat(dirs.SnapshotsDir(), " is not a directory, so the "
                     "store's snapshot directories are not there"),
        true,
        absl::StrCat("If this store's snapshots/ directory was moved, put "
                     "it back in the place of ", dirs.SnapshotsDir(),
                     " and start again."));
  }
  // Both only read: the directory scan and the stat of each directory's
  // fs/ run beside the database survey (whose quick_check reads every
  // page). A root without snapshots/ (made once the store is accepted)
  // lists none.
  struct Scan {
    SnapshotDirs::Listing listing;
    std::set<int64_t> without_fs;
  };
  std::future<absl::StatusOr<Scan>> scanned =
      base::AsyncOrDeferred([&dirs]() -> absl::StatusOr<Scan> {
        Scan scan;
        if (!Exists(dirs.SnapshotsDir())) return scan;
        ASSIGN_OR_RETURN(scan.listing, dirs.List());
        ASSIGN_OR_RETURN(scan.without_fs, dirs.WithoutFs(scan.listing.ids));
        return scan;
      });
  DbSurvey db = SurveyDatabase(dirs.MetadataPath());
  ASSIGN_OR_RETURN(Scan scan, scanned.get());
  SnapshotDirs::Listing& listing = scan.listing;
  auto marker = ReadMarker(dirs.StoreIdPath());
  // Neither file is fixed by another database: removed, store-id is
  // written again from the database, store-generation at the next clean
  // stop (docs/operations.md).
  if (!marker.ok()) {
    return Refuse(dirs, marker.status().message(), true,
                  absl::StrCat("If ", dirs.MetadataPath(),
                               " is this root's database, remove ",
                               dirs.StoreIdPath(),
                               " and start again: it is written again from "
                               "the database."));
  }
  auto generation_file = ReadGenerationFile(dirs);
  if (!generation_file.ok()) {
    return Refuse(dirs, generation_file.status().message(), true,
                  absl::StrCat("If ", dirs.MetadataPath(),
                               " is the store's latest database (not a copy "
                               "put back), remove ", dirs.GenerationPath(),
                               " and start again: the next clean stop writes "
                               "it again."));
  }
  std::string db_path = dirs.MetadataPath();
  OpenedStore opened;
  std::string store_id = db.store_id;
  switch (db.state) {
    case DbSurvey::State::kNewer:
      return Refuse(dirs, absl::StrCat(
          db_path, " has schema version ", db.version,
          ", newer than this daemon's (", MetaStore::kSchemaVersion,
          "): it was written by a newer containerd-guest-pull-grpc; run that "
          "release or a later one"), /*reset_helps=*/false);
    case DbSurvey::State::kCorrupt:
      return Refuse(dirs, absl::StrCat(db_path, " ", db.detail));
    case DbSurvey::State::kLocked:
      // Not a refusal: the next start (systemd restarts it) may find the
      // lock gone, and --reset-store would only lose a good store.
      return absl::UnavailableError(absl::StrCat(
          "cannot start on ", dirs.root(), ": ", db.detail,
          ". Nothing was changed."));
    case DbSurvey::State::kAbsent:
    case DbSurvey::State::kEmpty: {
      if (!listing.ids.empty()) {
        return Refuse(dirs, absl::StrCat(
            db_path, " ", db.detail, " but ", dirs.SnapshotsDir(),
            " holds snapshot directories (", DescribeIds(listing.ids), ")"));
      }
      // The marker is written once the database holds the store's id, so
      // the store existed: its records are lost, and the directories cannot
      // tell how many (a guest-pulled layer has none).
      if (*marker) {
        return Refuse(
            dirs, absl::StrCat(db_path, " ", db.detail, " but ",
                               dirs.StoreIdPath(), " names store ", **marker,
                               ": the store's records are lost (its "
                               "guest-pulled layers have no directory in ",
                               dirs.SnapshotsDir(),
                               ", so it may have held snapshots)"));
      }
      break;
    }
    case DbSurvey::State::kOk: {
      // SQLite deletes the -wal only when the last connection closes, and
      // the daemon removes its marker just before that: a store left open
      // by a crash still has its -wal, which holds what was acknowledged
      // since the last checkpoint.
      if (left_open && (wal_missing || wal_remade)) {
        return Refuse(
            dirs,
            absl::StrCat(
                dirs.OpenMarkerPath(), " shows the store was not closed ",
                "cleanly but ", db_path, "-wal is ",
                wal_missing ? "missing"
                            : "without a WAL header (it had one: it was lost "
                              "and made again, e.g. by sqlite3 opening the "
                              "database)",
                ": the database is ",
                "stale (an old copy or a lost -wal), so the snapshots ",
                "created or changed since its last checkpoint are lost ",
                "(guest-pulled layers leave no directory that could show ",
                "them). If another program opened ", db_path,
                " for writing after the crash (e.g. sqlite3 without ",
                "-readonly), it moved the -wal into the database: then ",
                "nothing is lost; remove ", dirs.OpenMarkerPath(),
                " and start again"));
      }
      // SQLite replayed the -wal up to a damaged frame and dropped the
      // rest, also what was acknowledged (wal_damage.h).
      if (!wal_missing) {
        std::string wal = db_path + "-wal";
        absl::StatusOr<std::optional<WalDamage>> damage = FindWalDamage(wal);
        if (!damage.ok()) {
          LOG(WARNING) << "cannot check " << wal
                       << " for damage: " << damage.status();
        } else if (damage->has_value()) {
          return Refuse(
              dirs,
              absl::StrCat((*damage)->Describe(wal),
                           ": the disk changed data it had flushed (or this "
                           "root is a copy of one taken while its daemon "
                           "ran, which catches a -wal mid-write)"),
              true,
              absl::StrCat("Check the disk first (dmesg, smartctl -a). A "
                           "copy of ", dirs.root(),
                           " keeps the dropped transactions' frames."));
        }
      }
      RETURN_IF_ERROR(
          CheckConsistent(dirs, db, *marker, listing.ids, scan.without_fs));
      RETURN_IF_ERROR(CheckGeneration(dirs, db, *generation_file));
      opened.migrated_from_v1 = db.version < 2;
      opened.unproven_trash = opened.migrated_from_v1;
      if (store_id.empty()) {
        ASSIGN_OR_RETURN(store_id, NewStoreId());
        LOG(INFO) << "migrating " << db_path << " from schema " << db.version
                  << " to " << MetaStore::kSchemaVersion << ": store "
                  << store_id;
      }
      break;
    }
  }
  // Accepted: the root is changed from here on, never before (a refusal
  // leaves it as it was, store_recovery.h).
  RETURN_IF_ERROR(dirs.MakeLayout());
  if (db.state != DbSurvey::State::kOk) {
    opened.unproven_trash = true;
    RETURN_IF_ERROR(QuarantineStrayWal(dirs));
    ASSIGN_OR_RETURN(store_id, NewStoreId());
    LOG(INFO) << "creating store " << store_id << " in " << dirs.root();
    RETURN_IF_ERROR(CreateDatabase(dirs, store_id));
    db.store_id = store_id;
  }
  // The -wal's preallocation and header, and the marker below, wait for
  // the disk (behind every other writer's queued flush on a busy node):
  // they run before the first write commits, not before the first read
  // (MetaStore::OpenServingReads). A store found open has its -wal: the
  // marker is made after the -wal is durable, and removed just before the
  // database closes; if it cannot be, the -wal is kept, and so it is until
  // the marker is right (a failed or unfinished start never leaves the
  // marker without the -wal). The marker tells whether the -wal has its
  // header (the open gives a new one its header); one a crash left is
  // made again only to say so, and kept as it was if that fails.
  // The header is claimed only once flushed (the page cache may hold one
  // whose flush failed before). A marker that cannot say so is written
  // empty (no data block needed on a full disk): the older, weaker check.
  auto marked_open = std::make_shared<std::atomic<bool>>(false);
  auto mark_open = [dirs, db_path, left_open, marked_open]() -> absl::Status {
    bool wal_header = WalHasHeader(db_path) && SyncWal(db_path).ok();
    if (!left_open || (wal_header && !MarkedWithWalHeader(dirs))) {
      absl::Status marked = MarkStoreOpen(dirs, wal_header);
      if (!marked.ok() && !left_open && wal_header) {
        LOG(WARNING) << marked << "; writing " << dirs.OpenMarkerPath()
                     << " empty";
        marked = MarkStoreOpen(dirs, false);
      }
      if (!marked.ok() && !left_open) return marked;
      if (!marked.ok()) {
        LOG(WARNING) << "rewriting " << dirs.OpenMarkerPath() << ": " << marked
                     << "; starting with the marker the crash left";
      }
    }
    marked_open->store(true);
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::unique_ptr<MetaStore> store,
                   MetaStore::OpenServingReads(db_path,
                                               db.state == DbSurvey::State::kOk
                                                   ? MetaStore::Mode::kExisting
                                                   : MetaStore::Mode::kCreate,
                                               std::move(mark_open)));
  // A clean stop advances the store's generation: in the database (its
  // last commit), then in store-generation, flushed with the marker's
  // removal. A stop cut between the two leaves the database ahead, which
  // the next start accepts; a database behind the file is refused
  // (CheckGeneration).
  auto pending = std::make_shared<int64_t>(0);
  auto advanced = std::make_shared<int64_t>(0);
  store->SetLastWrite(
      [pending](Transaction& tx) -> absl::Status {
        ASSIGN_OR_RETURN(*pending, AdvanceGeneration(tx));
        return absl::OkStatus();
      },
      [pending, advanced] { *advanced = *pending; });
  store->SetBeforeClose([dirs, marked_open, advanced, store_id] {
    if (!marked_open->load()) return false;
    if (*advanced > 0) {
      absl::Status g = WriteGenerationFile(dirs, store_id, *advanced);
      if (!g.ok()) {
        LOG(WARNING) << "closing the store: " << g << " (the database, at "
                     << "generation " << *advanced << ", is ahead of it: "
                     << "accepted at the next start)";
      }
    }
    absl::Status s = MarkStoreClosed(dirs);
    if (!s.ok()) LOG(WARNING) << "closing the store, -wal kept: " << s;
    return s.ok();
  });
  // A start that writes the database (Update finishes the open first) or
  // store-id does so after the marker, in the order those writes assume
  // (the lost empty directories made again below belong to existing
  // records and need no marker).
  if (store_id != db.store_id) {
    RETURN_IF_ERROR(store->Update(
        [&](Transaction& tx) { return WriteStoreId(tx, store_id); }));
  }
  if (!*marker || **marker != store_id) {
    RETURN_IF_ERROR(store->FinishOpen());
    if (*marker) {
      LOG(WARNING) << dirs.StoreIdPath() << " was " << **marker
                   << "; now store " << store_id;
    } else if (db.state == DbSurvey::State::kOk && !db.store_id.empty()) {
      LOG(WARNING) << dirs.StoreIdPath() << " was missing; rewritten from "
                   << db_path;
    }
    RETURN_IF_ERROR(WriteMarker(dirs, store_id));
  }
  if (db.state == DbSurvey::State::kOk) {
    RETURN_IF_ERROR(RecreateEmptyDirs(dirs, db));
  }
  opened.store = std::move(store);
  opened.listing = std::move(listing);
  opened.records = std::move(db.records);
  opened.journal = std::move(db.journal);
  return opened;
}

namespace {

// What ResetStore moves, of what the root holds now: the store's files,
// and snapshots/ unless it is missing or an empty directory (one that is
// no directory too: the start refuses it). Changes nothing.
absl::StatusOr<std::vector<std::string>> ResetEntries(
    const SnapshotDirs& dirs) {
  const std::string db = dirs.MetadataPath();
  std::vector<std::string> present;
  for (const std::string& path :
       {db, db + "-wal", db + "-shm", db + ".new", db + ".new-wal",
        db + ".new-shm", dirs.StoreIdPath(), dirs.StoreIdPath() + ".new",
        dirs.OpenMarkerPath(), dirs.OpenMarkerPath() + ".new",
        dirs.GenerationPath(), dirs.GenerationPath() + ".new"}) {
    if (Exists(path)) present.push_back(path);
  }
  if (!Exists(dirs.SnapshotsDir())) return present;
  struct stat st;
  if (stat(dirs.SnapshotsDir().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    present.push_back(dirs.SnapshotsDir());
    return present;
  }
  ASSIGN_OR_RETURN(SnapshotDirs::Listing listing, dirs.List());
  if (!listing.ids.empty() || !listing.temps.empty() ||
      !listing.spares.empty() || !listing.trash.empty() ||
      !listing.others.empty()) {
    present.push_back(dirs.SnapshotsDir());
  }
  return present;
}

}  // namespace

absl::StatusOr<std::string> ResetStore(const SnapshotDirs& dirs) {
  struct stat st;
  if (stat(dirs.root().c_str(), &st) != 0 && errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat(
        "root ", dirs.root(), " does not exist: there is no store to reset "
        "(is --root, GUEST_PULL_ROOT or the config's root the daemon's?)"));
  }
  // Looked at before anything is made: a root with nothing to reset is
  // left as it was (Init's snapshots/ and mode 0700, and the lock, made
  // an empty directory look like a store).
  RETURN_IF_ERROR(dirs.CheckRoot());
  ASSIGN_OR_RETURN(std::vector<std::string> present, ResetEntries(dirs));
  if (present.empty()) return std::string();
  RETURN_IF_ERROR(dirs.Init());
  ASSIGN_OR_RETURN(int lock, dirs.LockRoot());
  // Again under the lock: a daemon may have changed the root meanwhile.
  absl::StatusOr<std::vector<std::string>> locked = ResetEntries(dirs);
  if (!locked.ok() || locked->empty()) {
    close(lock);
    if (!locked.ok()) return locked.status();
    return std::string();
  }
  present = *std::move(locked);
  auto dest = dirs.NewQuarantinePath("reset-store");
  absl::Status s = dest.ok() ? absl::OkStatus() : dest.status();
  if (s.ok() && mkdir(dest->c_str(), 0700) != 0) {
    s = absl::InternalError(absl::StrCat("mkdir ", *dest, ": ", strerror(errno)));
  }
  // Its entry is durable before anything leaves the root for it.
  if (s.ok()) s = SyncDir(dirs.QuarantineDir());
  for (const std::string& path : present) {
    if (!s.ok()) break;
    std::string target = *dest + path.substr(path.rfind('/'));
    if (rename(path.c_str(), target.c_str()) != 0) {
      s = absl::InternalError(absl::StrCat("rename ", path, " to ", target,
                                           ": ", strerror(errno)));
    }
  }
  if (s.ok()) s = SyncDir(*dest);
  if (s.ok()) s = SyncDir(dirs.root());
  if (s.ok()) s = dirs.Init();
  close(lock);
  if (!s.ok()) return s;
  return *dest;
}

}  // namespace snapshotter
