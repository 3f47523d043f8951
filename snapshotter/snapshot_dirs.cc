// Filesystem operations of the snapshotter root.
#include "snapshotter/snapshot_dirs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/async_or_deferred.h"
#include "base/errno_error.h"
#include "base/file_type.h"
#include "base/status_macros.h"
#include "base/usable_cpus.h"
#include "glog/logging.h"
#include "snapshotter/dangling_link.h"

namespace snapshotter {
namespace {

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return base::ErrnoError("mkdir", path, errno);
  }
  return absl::OkStatus();
}

// MakeDir, and a directory it made is flushed into `parent` before anything
// is put in it: a power cut must not take it away with what it holds.
absl::Status MakeDirDurably(const std::string& path, mode_t mode,
                            const std::string& parent) {
  if (mkdir(path.c_str(), mode) == 0) return SyncDir(parent);
  if (errno == EEXIST) return absl::OkStatus();
  return base::ErrnoError("mkdir", path, errno);
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return base::ErrnoError("opendir", dir, errno);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

// fs/ takes the owner and mode of `parent_fs` when given (as containerd
// does).
absl::Status CopyOwner(const std::string& fs, const std::string& parent_fs) {
  if (parent_fs.empty()) return absl::OkStatus();
  struct stat st;
  if (stat(parent_fs.c_str(), &st) != 0) {
    return base::ErrnoError("stat", parent_fs, errno);
  }
  if (lchown(fs.c_str(), st.st_uid, st.st_gid) != 0) {
    return base::ErrnoError("chown", fs, errno);
  }
  if (chmod(fs.c_str(), st.st_mode & 07777) != 0) {
    return base::ErrnoError("chmod", fs, errno);
  }
  return absl::OkStatus();
}

bool IsDir(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Names a root holds beside its store, or while one is made or reset.
bool IsRootEntryOfADaemon(absl::string_view name) {
  for (absl::string_view ours :
       {"lock", "store-id", "store-id.new", "store-open", "store-open.new",
        "store-generation", "store-generation.new", "snapshots", "quarantine",
        "guest-pull", "empty-lower", "lost+found"}) {
    if (name == ours) return true;
  }
  return absl::StartsWith(name, "metadata.db");
}

// Whether `path` is empty or starts as every SQLite database does (the
// daemon's metadata.db, even of a store too old to have a store-id), not
// as another program's file of that name (containerd's bolt metadata.db).
bool IsEmptyOrSqlite(const std::string& path) {
  static constexpr char kHeader[] = "SQLite format 3";  // and its NUL
  char head[sizeof(kHeader)] = {};
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return false;
  }
  ssize_t n = read(fd, head, sizeof(head));
  close(fd);
  return n == 0 || (n == static_cast<ssize_t>(sizeof(head)) &&
                    std::memcmp(head, kHeader, sizeof(head)) == 0);
}

// Entries the daemon makes of one kind only: another kind was put there by
// hand, and every start would fail on it alike (exit 1, restarted): the
// lock's open (EISDIR), or the mkdir of guest-pull/empty after the store
// was opened. A link to the right kind is fine.
absl::Status CheckEntryKinds(const std::string& root) {
  struct Entry {
    const char* name;
    bool dir;
    const char* what;
  };
  for (const Entry& e : {
           Entry{"lock", false,
                 "the daemon locks a file of that name (empty) so that one "
                 "daemon at a time uses the root"},
           Entry{"guest-pull", true,
                 "the daemon keeps a directory there (guest-pull/empty, the "
                 "lower directory of guest-pulled layers' mounts)"},
       }) {
    std::string path = absl::StrCat(root, "/", e.name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;  // missing: made later
    if (e.dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", root, " cannot be used: ", path, " is ",
        base::FileTypeName(st.st_mode), ", not ",
        e.dir ? "a directory" : "a regular file", ": ", e.what,
        ", so this one was not made by it; move it away and start again "
        "(nothing in the root was changed)"));
  }
  return absl::OkStatus();
}

// An existing root must be this user's (another could change the store
// under the daemon), and hold a store or nothing else of others: a
// directory of other files given as root by mistake (/tmp, /var/lib, or
// another snapshotter's root) is left alone. A store is a store-id or a
// SQLite metadata.db; anything beside one is the operator's business.
absl::Status CheckExistingRoot(const std::string& root, const struct stat& st) {
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", root, " belongs to uid ", st.st_uid, ", not to this daemon's uid ",
        geteuid(), ": another user could change the store; chown it, or give "
        "a new directory as root"));
  }
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) return base::ErrnoError("opendir", root, errno);
  bool has_store = false;
  std::string foreign;
  size_t foreign_count = 0;
  while (struct dirent* e = readdir(dir)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    bool ours = IsRootEntryOfADaemon(name);
    // A store-id, or a quarantine (only the daemon makes one: after a
    // --reset-store it is what is left of a store).
    if (name == "store-id" || name == "quarantine") has_store = true;
    if (name == "metadata.db") {
      ours = IsEmptyOrSqlite(absl::StrCat(root, "/", name));
      has_store = has_store || ours;
    }
    if (ours) continue;
    if (foreign.empty()) foreign = std::string(name);
    ++foreign_count;
  }
  closedir(dir);
  RETURN_IF_ERROR(CheckEntryKinds(root));
  if (has_store || foreign_count == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "root ", root, " holds no store of this daemon but ", foreign_count,
      " other entr", foreign_count == 1 ? "y" : "ies", " (\"", foreign,
      "\"", foreign_count > 1 ? ", ..." : "", "): give a new or empty directory "
      "as root; nothing in it was changed"));
}

// NotFound naming a symbolic link to nothing at the missing `root` or a
// directory above it. mkdir cannot make the root through one (the link
// itself: EEXIST, which the lock's open then misses), and the errors said
// "File exists" or "open <root>/lock: No such file or directory". Nothing
// is made at its target: the link may point into a filesystem not mounted
// yet (exit 1: systemd tries again).
absl::Status CheckNoDanglingLink(const std::string& root) {
  std::optional<DanglingLink> link = FindDanglingLink(root);
  if (!link.has_value()) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("cannot create root ", root, ": ",
                                          link->Describe(),
                                          " (create it, or give another root)"));
}

// The stat of `root` failed with ENOTDIR: a directory above it is a file
// (e.g. --root=/etc/fstab/gp). The error said "stat <root>: Not a
// directory", naming neither the file nor the way out. Exit 1, as before.
absl::Status NotADirectoryOnTheWay(const std::string& root) {
  for (std::filesystem::path p = std::filesystem::path(root).parent_path();
       !p.empty() && p != p.parent_path(); p = p.parent_path()) {
    struct stat st;
    if (stat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      return absl::InternalError(absl::StrCat(
          "cannot create root ", root, ": ", p.string(), " is ",
          base::FileTypeName(st.st_mode),
          ", not a directory (give another root)"));
    }
  }
  return base::ErrnoError("stat", root, ENOTDIR);
}

// "; ..." telling the way out of `err` met making the root or its lock, or
// "".
std::string RootErrnoHint(int err) {
  if (err == EROFS) {
    return "; the root must be on a writable filesystem: remount it "
           "read-write, or give another root";
  }
  return "";
}

// CheckRoot with one stat of `root`: whether it exists (false: missing,
// which is fine unless a link to nothing is on the way).
absl::StatusOr<bool> CheckRootIfExists(const std::string& root) {
  struct stat st;
  if (stat(root.c_str(), &st) != 0) {
    if (errno == ENOTDIR) return NotADirectoryOnTheWay(root);
    if (errno != ENOENT) return base::ErrnoError("stat", root, errno);
    RETURN_IF_ERROR(CheckNoDanglingLink(root));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root ", root, " is ", base::FileTypeName(st.st_mode),
        ", not a directory: give a new or empty directory as root; nothing "
        "was changed"));
  }
  RETURN_IF_ERROR(CheckExistingRoot(root, st));
  return true;
}

// The process holding a flock on the file `st` describes, from
// /proc/locks (a holder in another pid namespace shows as pid 0): the
// daemon's lock may be held by another program (`flock <root>/lock ...`),
// which the message must not call a daemon.
std::string DescribeFlockHolder(const std::string& path,
                                const struct stat* st) {
  const std::string unknown =
      absl::StrCat("another process (`fuser -v ", path, "` lists it)");
  if (st == nullptr) return unknown;
  std::ifstream locks("/proc/locks");
  std::string want = absl::StrFormat("%02x:%02x:%u", major(st->st_dev),
                                     minor(st->st_dev), st->st_ino);
  std::string line;
  // Lines read "1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<ino> 0 EOF";
  // those of waiters have "->" after the number.
  for (int n = 0; n < 100000 && std::getline(locks, line); ++n) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int pid = 0;
    if (f.size() < 6 || f[1] != "FLOCK" || f[5] != want ||
        !absl::SimpleAtoi(f[4], &pid) || pid <= 0) {
      continue;
    }
    std::string comm, own;
    std::ifstream(absl::StrCat("/proc/", pid, "/comm")) >> comm;
    std::ifstream("/proc/self/comm") >> own;
    // comm is cut to 15 bytes (so only a whole 15-byte comm counts as the
    // name's start: "containerd" is not the daemon); the binary may have
    // been installed under another name (then it is this one's).
    constexpr absl::string_view kDaemon = "containerd-guest-pull-grpc";
    if (!comm.empty() &&
        (comm == own ||
         (comm.size() >= 15 && absl::StartsWith(kDaemon, comm)))) {
      return absl::StrCat("another containerd-guest-pull-grpc (pid ", pid,
                          ")");
    }
    return absl::StrCat("process ", pid, comm.empty() ? "" : " (", comm,
                        comm.empty() ? "" : ")",
                        "; stop it, or give another root");
  }
  return unknown;
}

}  // namespace

SnapshotDirs::SnapshotDirs(std::string root) : root_(std::move(root)) {}

absl::Status SnapshotDirs::CheckRoot() const {
  return CheckRootIfExists(root_).status();
}

absl::Status SnapshotDirs::MakeRoot() const {
  ASSIGN_OR_RETURN(bool exists, CheckRootIfExists(root_));
  if (exists) return absl::OkStatus();
  struct stat st;
  // The directories made, each flushed into its parent: the store's own
  // flushes make its files durable, not the path to them.
  std::vector<std::filesystem::path> made;
  for (std::filesystem::path p = root_;
       !p.empty() && p != p.parent_path() && lstat(p.c_str(), &st) != 0 &&
       errno == ENOENT;
       p = p.parent_path()) {
    made.push_back(p);
  }
  // The root itself is made 0700 (MakeLayout's mode): its lock, and
  // whatever a crash or failure before MakeLayout leaves, are never in a
  // root others may read or (with a loose umask) write.
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(root_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (!ec && mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
    ec = std::error_code(errno, std::generic_category());
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create root ", root_,
                                            ": ", ec.message(),
                                            RootErrnoHint(ec.value())));
  }
  for (auto it = made.rbegin(); it != made.rend(); ++it) {
    std::string parent = it->parent_path().string();
    absl::Status synced = SyncDir(parent.empty() ? "." : parent);
    // A parent the daemon may write but not read (mode, an LSM profile)
    // cannot be flushed: that must not stop a start that worked before.
    if (absl::IsPermissionDenied(synced)) {
      LOG(WARNING) << synced << "; " << it->string()
                   << " may not survive a power cut";
      continue;
    }
    RETURN_IF_ERROR(synced);
  }
  return absl::OkStatus();
}

absl::Status SnapshotDirs::MakeLayout() const {
  if (chmod(root_.c_str(), 0700) != 0) return base::ErrnoError("chmod", root_, errno);
  RETURN_IF_ERROR(MakeDir(SnapshotsDir(), 0700));
  // Flushed at every start, not only when snapshots/ is new: an earlier
  // start killed between a mkdir here (snapshots/, quarantine/) and its
  // flush left the directory unflushed, and MakeDirDurably does not flush
  // one that exists.
  return SyncDir(root_);
}

absl::Status SnapshotDirs::Init() const {
  RETURN_IF_ERROR(MakeRoot());
  return MakeLayout();
}

absl::StatusOr<int> SnapshotDirs::LockRoot() const {
  std::string path = root_ + "/lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    // Said "open <root>/lock: Read-only file system" alone, for a root on
    // a filesystem mounted read-only (e.g. remounted so after disk errors).
    int err = errno;
    absl::Status open_error = base::ErrnoError("open", path, err);
    return absl::Status(open_error.code(),
                        absl::StrCat("cannot lock root ", root_, ": ",
                                     open_error.message(), RootErrnoHint(err)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    struct stat st;
    bool known = fstat(fd, &st) == 0;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "root ", root_, " is in use: ", path, " is locked by ",
          DescribeFlockHolder(path, known ? &st : nullptr)));
    }
    return base::ErrnoError("flock", path, err);
  }
  return fd;
}

std::string SnapshotDirs::MetadataPath() const {
  return root_ + "/metadata.db";
}
std::string SnapshotDirs::SnapshotsDir() const { return root_ + "/snapshots"; }
std::string SnapshotDirs::QuarantineDir() const {
  return root_ + "/quarantine";
}
std::string SnapshotDirs::StoreIdPath() const { return root_ + "/store-id"; }
std::string SnapshotDirs::GenerationPath() const {
  return root_ + "/store-generation";
}
std::string SnapshotDirs::OpenMarkerPath() const {
  return root_ + "/store-open";
}
std::string SnapshotDirs::SnapshotPath(int64_t id) const {
  return absl::StrCat(SnapshotsDir(), "/", id);
}
std::string SnapshotDirs::FsPath(int64_t id) const {
  return SnapshotPath(id) + "/fs";
}
std::string SnapshotDirs::WorkPath(int64_t id) const {
  return SnapshotPath(id) + "/work";
}

std::string SnapshotDirs::EmptyLowerPath() const { return root_ + "/empty-lower"; }

absl::Status SnapshotDirs::MakeEmptyLower() const {
  std::string path = EmptyLowerPath();
  if (mkdir(path.c_str(), 0755) == 0 || (errno == EEXIST && IsDir(path))) {
    return absl::OkStatus();
  }
  return base::ErrnoError("mkdir", path, errno);
}

absl::StatusOr<std::string> SnapshotDirs::CreateTemp(
    bool with_work, const std::string& parent_fs, bool sync) const {
  return MakeTemp("new-", with_work, parent_fs, sync);
}

absl::StatusOr<std::string> SnapshotDirs::CreateSpare() const {
  return MakeTemp("spare-", /*with_work=*/true, "", /*sync=*/false);
}

bool SnapshotDirs::IsEmptySpare(const std::string& path) {
  struct stat st, parent;
  std::string dir = path.substr(0, path.rfind('/'));
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         lstat(dir.c_str(), &parent) == 0 && st.st_dev == parent.st_dev &&
         HoldsNoData(path);
}

bool SnapshotDirs::OwnerMatches(const std::string& temp,
                                const std::string& parent_fs) {
  // Without a parent, CreateTemp's mkdir is the one that made the spare.
  if (parent_fs.empty()) return true;
  struct stat fs, parent;
  return stat((temp + "/fs").c_str(), &fs) == 0 &&
         stat(parent_fs.c_str(), &parent) == 0 && fs.st_uid == parent.st_uid &&
         fs.st_gid == parent.st_gid &&
         (fs.st_mode & 07777) == (parent.st_mode & 07777);
}

absl::StatusOr<std::string> SnapshotDirs::MakeTemp(absl::string_view prefix,
                                                   bool with_work,
                                                   const std::string& parent_fs,
                                                   bool sync) const {
  std::string tmpl = absl::StrCat(SnapshotsDir(), "/", prefix, "XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return base::ErrnoError("mkdtemp", tmpl, errno);
  }
  std::string fs = tmpl + "/fs";
  absl::Status s = MakeDir(fs, 0755);
  if (s.ok() && with_work) s = MakeDir(tmpl + "/work", 0711);
  if (s.ok()) s = CopyOwner(fs, parent_fs);
  // The entries must be durable before the rename makes them a snapshot.
  if (s.ok() && sync) s = SyncDir(tmpl);
  if (!s.ok()) {
    RemoveAll(tmpl).IgnoreError();
    return s;
  }
  return tmpl;
}

absl::Status SnapshotDirs::QuarantineIfNotDir(const std::string& path,
                                              absl::string_view name) const {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 ||
      (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string moved, Quarantine(path, name));
  LOG(WARNING) << "quarantined " << path << " (not a directory) as " << moved
               << "; it is never deleted automatically";
  return absl::OkStatus();
}

absl::StatusOr<bool> SnapshotDirs::Recreate(int64_t id, bool with_work,
                                            const std::string& parent_fs,
                                            bool sync) const {
  std::string dir = SnapshotPath(id);
  // A file (or a link to none) where a directory belongs was not made
  // here, and mkdir's EEXIST would let it stand: the start would take a
  // file for fs/ (and chmod it), or fail on ENOTDIR. Kept, out of the way.
  // What is left is a directory or a link to one: used as it is.
  RETURN_IF_ERROR(QuarantineIfNotDir(dir, absl::StrCat(id)));
  RETURN_IF_ERROR(QuarantineIfNotDir(FsPath(id), absl::StrCat(id, "-fs")));
  if (with_work) {
    RETURN_IF_ERROR(
        QuarantineIfNotDir(WorkPath(id), absl::StrCat(id, "-work")));
  }
  struct stat st;
  bool made_dir = lstat(dir.c_str(), &st) != 0;
  if (made_dir) RETURN_IF_ERROR(MakeDir(dir, 0700));
  bool made_inside = lstat(FsPath(id).c_str(), &st) != 0;
  if (made_inside) {
    RETURN_IF_ERROR(MakeDir(FsPath(id), 0755));
    RETURN_IF_ERROR(
        CopyOwner(FsPath(id), IsDir(parent_fs) ? parent_fs : std::string()));
  }
  if (with_work && lstat(WorkPath(id).c_str(), &st) != 0) {
    RETURN_IF_ERROR(MakeDir(WorkPath(id), 0711));
    made_inside = true;
  }
  if (!made_dir && !made_inside) return false;
  if (!sync) return true;
  // Durable at once: the next power cut must not need this again.
  RETURN_IF_ERROR(SyncDir(dir));
  if (made_dir) RETURN_IF_ERROR(SyncDir(SnapshotsDir()));
  return true;
}

bool SnapshotDirs::HoldsNoData(const std::string& path) {
  auto names = ListDir(path);
  if (!names.ok()) return false;
  for (const std::string& name : *names) {
    if (name != "fs" && name != "work") return false;
    std::string sub = path + "/" + name;
    struct stat st;
    if (lstat(sub.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    auto inner = ListDir(sub);
    if (!inner.ok() || !inner->empty()) return false;
  }
  return true;
}

absl::StatusOr<bool> SnapshotDirs::QuarantineIfHoldsData(
    int64_t id, absl::string_view why) const {
  std::string path = SnapshotPath(id);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return false;
  if (HoldsNoData(path)) return true;
  ASSIGN_OR_RETURN(std::string moved, Quarantine(path));
  LOG(WARNING) << "snapshot directory " << path << " " << why
               << "; moved to " << moved;
  return false;
}

absl::Status SnapshotDirs::Install(const std::string& temp, int64_t id,
                                  bool sync) const {
  std::string target = SnapshotPath(id);
  // The usual case, nothing at the target, in one call. Something there
  // (EEXIST, or ENOTEMPTY on some filesystems), or no RENAME_NOREPLACE here
  // (EINVAL, ENOSYS), takes the checks below; any other error (EIO,
  // ENOSPC, ...) fails the creation.
  if (renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(),
                RENAME_NOREPLACE) == 0) {
    return sync ? SyncDir(SnapshotsDir()) : absl::OkStatus();
  }
  if (errno != EEXIST && errno != ENOTEMPTY && errno != EINVAL &&
      errno != ENOSYS) {
    return base::ErrnoError("rename " + temp + " to", target, errno);
  }
  // The id was just allocated under the store's lock, so this is a
  // creation that never committed (SQLite hands rolled-back ids out
  // again). Nothing proves it, so one that holds data is kept, out of the
  // way; an empty fs/ and work/ lose nothing.
  ASSIGN_OR_RETURN(bool empty_left,
                   QuarantineIfHoldsData(
                       id, "existed before its id was allocated"));
  if (empty_left) {
    RETURN_IF_ERROR(RemoveAll(target));
    LOG(INFO) << "removed " << target
              << ", an empty directory of a creation that never committed";
  }
  if (rename(temp.c_str(), target.c_str()) != 0) {
    return base::ErrnoError("rename " + temp + " to", target, errno);
  }
  return sync ? SyncDir(SnapshotsDir()) : absl::OkStatus();
}

absl::StatusOr<SnapshotDirs::Listing> SnapshotDirs::List() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(SnapshotsDir()));
  Listing listing;
  for (const std::string& name : names) {
    std::string path = SnapshotsDir() + "/" + name;
    int64_t id;
    if (absl::StartsWith(name, "new-")) {
      listing.temps.push_back(path);
    } else if (absl::StartsWith(name, "spare-") &&
               name.size() == std::strlen("spare-XXXXXX")) {
      listing.spares.push_back(path);
    } else if (absl::StartsWith(name, "trash-")) {
      listing.trash.push_back(path);
    } else if (absl::SimpleAtoi(name, &id) && id > 0 &&
               absl::StrCat(id) == name) {
      listing.ids.insert(id);
    } else {
      listing.others.push_back(path);
    }
  }
  return listing;
}

absl::StatusOr<std::set<int64_t>> SnapshotDirs::WithoutFs(
    const std::set<int64_t>& ids) const {
  std::set<int64_t> without;
  if (ids.empty()) return without;
  int dir = open(SnapshotsDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return base::ErrnoError("open", SnapshotsDir(), errno);
  // 10,000 stats take ~17 ms on one core here, longer than the database
  // survey beside them: split in parts of at least 1000, one per CPU this
  // daemon may use.
  const std::vector<int64_t> all(ids.begin(), ids.end());
  auto stat_part = [dir, &all](size_t begin, size_t end) {
    std::vector<int64_t> found;
    for (size_t i = begin; i < end; ++i) {
      struct stat st;
      std::string fs = absl::StrCat(all[i], "/fs");
      if (fstatat(dir, fs.c_str(), &st, 0) != 0 || !S_ISDIR(st.st_mode)) {
        found.push_back(all[i]);
      }
    }
    return found;
  };
  size_t parts = std::max<size_t>(
      1, std::min<size_t>(all.size() / 1000,
                          base::UsableCpus()));
  size_t per_part = (all.size() + parts - 1) / parts;
  std::vector<std::future<std::vector<int64_t>>> others;
  for (size_t begin = per_part; begin < all.size(); begin += per_part) {
    size_t end = std::min(all.size(), begin + per_part);
    others.push_back(base::AsyncOrDeferred(
        [&stat_part, begin, end] { return stat_part(begin, end); }));
  }
  for (int64_t id : stat_part(0, std::min(all.size(), per_part))) {
    without.insert(id);
  }
  for (auto& part : others) {
    for (int64_t id : part.get()) without.insert(id);
  }
  close(dir);
  return without;
}

absl::StatusOr<std::string> SnapshotDirs::MoveToTrash(
    const std::string& path) const {
  std::string trash = SnapshotsDir() + "/trash-XXXXXX";
  // Reserve a unique name, then rename over it (rename replaces an empty
  // directory; a file orphan needs the name free).
  if (mkdtemp(trash.data()) == nullptr) return base::ErrnoError("mkdtemp", trash, errno);
  if (rmdir(trash.c_str()) != 0) return base::ErrnoError("rmdir", trash, errno);
  if (rename(path.c_str(), trash.c_str()) != 0) {
    return base::ErrnoError("rename " + path + " to", trash, errno);
  }
  return trash;
}

absl::StatusOr<std::string> SnapshotDirs::NewQuarantinePath(
    absl::string_view name) const {
  RETURN_IF_ERROR(MakeDirDurably(QuarantineDir(), 0700, root_));
  std::string base = absl::StrCat(
      QuarantineDir(), "/",
      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()),
      "-", name);
  std::string target = base;
  struct stat st;
  for (int n = 1; lstat(target.c_str(), &st) == 0; ++n) {
    if (n > 1000) return base::ErrnoError("no free quarantine name for", base, EEXIST);
    target = absl::StrCat(base, "-", n);
  }
  return target;
}

absl::StatusOr<std::string> SnapshotDirs::Quarantine(
    const std::string& path, absl::string_view name) const {
  ASSIGN_OR_RETURN(std::string target,
                   NewQuarantinePath(name.empty()
                                         ? path.substr(path.rfind('/') + 1)
                                         : std::string(name)));
  if (rename(path.c_str(), target.c_str()) != 0) {
    return base::ErrnoError("rename " + path + " to", target, errno);
  }
  RETURN_IF_ERROR(SyncDir(QuarantineDir()));
  RETURN_IF_ERROR(SyncDir(path.substr(0, path.rfind('/'))));
  return target;
}

absl::StatusOr<int64_t> SnapshotDirs::QuarantineCount() const {
  struct stat st;
  if (lstat(QuarantineDir().c_str(), &st) != 0 && errno == ENOENT) return 0;
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(QuarantineDir()));
  return static_cast<int64_t>(names.size());
}

namespace {

// Mount id (statx) of `name` in the directory open as `dir` (with "": of
// `dir` itself), not following a symlink, or its device where the kernel
// has no mount ids; ENOENT as NotFound. `path` names it in errors.
absl::StatusOr<uint64_t> MountOf(int dir, const char* name,
                                 const std::string& path, bool* is_dir) {
  struct statx stx;
  int flags = AT_SYMLINK_NOFOLLOW | (*name == '\0' ? AT_EMPTY_PATH : 0);
  if (statx(dir, name, flags, STATX_TYPE | STATX_MNT_ID, &stx) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(path);
    return base::ErrnoError("stat", path, errno);
  }
  *is_dir = S_ISDIR(stx.stx_mode);
  if (stx.stx_mask & STATX_MNT_ID) return stx.stx_mnt_id;
  return (static_cast<uint64_t>(stx.stx_dev_major) << 32) | stx.stx_dev_minor;
}

// The walk goes by descriptors (openat, unlinkat): a container may change
// its upper directory while it is deleted, and a directory it swaps for a
// symlink must not lead the walk out of the tree. A directory deeper than
// this below the top is moved up under the top before it is entered, so
// the walk holds as many descriptors at most and its recursion stays as
// shallow however deep the tree (a container can make one of any depth).
// The top's own entries are never moved (they would land where they are).
constexpr int kMoveUpDeeperThan = 16;
constexpr absl::string_view kMovedUpPrefix = ".deep-";

struct RemoveWalk {
  std::string top;
  int top_fd = -1;
  uint64_t mount = 0;
  const std::atomic<bool>* stop = nullptr;
  uint64_t moved = 0;      // directories moved up so far
  uint64_t next_name = 0;  // past every .deep-N seen under the top
};

// What a removal cut short by `stop` returns.
absl::Status RemovalStopped(const std::string& path) {
  return absl::CancelledError(absl::StrCat(
      "remove ", path, ": stopped; the rest is left where it is"));
}

// The names in the directory open as `fd` (`path` in errors).
absl::StatusOr<std::vector<std::string>> ListDirAt(int fd,
                                                   const std::string& path) {
  std::vector<std::string> names;
  if (int err = ReadDirNames(fd, &names); err != 0) {
    return base::ErrnoError("read", path, err);
  }
  return names;
}

// Renames `name` of `dir` to an unused name directly under the top (the
// same tree, so the same filesystem; nothing outside the tree is touched).
absl::Status MoveUnder(RemoveWalk& walk, int dir, const std::string& name,
                       const std::string& path) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::string target = absl::StrCat(kMovedUpPrefix, walk.next_name++);
    if (renameat2(dir, name.c_str(), walk.top_fd, target.c_str(),
                  RENAME_NOREPLACE) == 0) {
      ++walk.moved;
      return absl::OkStatus();
    }
    if (errno != EEXIST) return base::ErrnoError("move up", path, errno);
  }
  return absl::InternalError(absl::StrCat("move up ", path, ": no free name"));
}

absl::Status RemoveEntry(RemoveWalk& walk, int dir, const std::string& dir_path,
                         const std::string& name, int depth);

// Deletes what the directory open as `fd` (`path`, `depth` below the top)
// holds.
absl::Status RemoveContents(RemoveWalk& walk, int fd, const std::string& path,
                            int depth) {
  const bool is_top = depth == 0;
  // The top is listed again while the pass moved directories up under it.
  for (uint64_t moved_before = ~walk.moved; moved_before != walk.moved;) {
    moved_before = walk.moved;
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirAt(fd, path));
    if (is_top) {  // what an earlier, cut-short walk moved up stays taken
      for (const std::string& name : names) {
        absl::string_view n = name;
        uint64_t used = 0;
        if (absl::ConsumePrefix(&n, kMovedUpPrefix) &&
            absl::SimpleAtoi(n, &used) && used >= walk.next_name &&
            used < UINT64_MAX) {
          walk.next_name = used + 1;
        }
      }
    }
    for (const std::string& name : names) {
      RETURN_IF_ERROR(RemoveEntry(walk, fd, path, name, depth + 1));
    }
    if (!is_top) break;
  }
  return absl::OkStatus();
}

// Deletes entry `name` of the directory open as `dir` (`dir_path`), which
// is `depth` below the top.
absl::Status RemoveEntry(RemoveWalk& walk, int dir, const std::string& dir_path,
                         const std::string& name, int depth) {
  const std::string path = absl::StrCat(dir_path, "/", name);
  if (walk.stop != nullptr && walk.stop->load()) return RemovalStopped(path);
  bool is_dir = false;
  auto here = MountOf(dir, name.c_str(), path, &is_dir);
  if (absl::IsNotFound(here.status())) return absl::OkStatus();
  if (!here.ok()) return here.status();
  auto mounted_there = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        "remove ", path, ": a filesystem is mounted there; not deleting "
        "across it"));
  };
  if (*here != walk.mount) return mounted_there();
  if (!is_dir) {
    if (unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) {
      return base::ErrnoError("remove", path, errno);
    }
    return absl::OkStatus();
  }
  if (depth > kMoveUpDeeperThan) return MoveUnder(walk, dir, name, path);
  // Whatever is there now, never through a symlink; a filesystem mounted
  // there meanwhile shows on the descriptor.
  int fd = openat(dir, name.c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return base::ErrnoError("open", path, errno);
  }
  here = MountOf(fd, "", path, &is_dir);
  absl::Status s = !here.ok()              ? here.status()
                   : *here != walk.mount ? mounted_there()
                                         : RemoveContents(walk, fd, path, depth);
  close(fd);
  RETURN_IF_ERROR(s);
  if (unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return base::ErrnoError("remove", path, errno);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoveAll(const std::string& path,
                       const std::atomic<bool>* stop) {
  if (stop != nullptr && stop->load()) return RemovalStopped(path);
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return absl::OkStatus();
  if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {  // a file, a symlink
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return base::ErrnoError("remove", path, errno);
    }
    return absl::OkStatus();
  }
  if (fd < 0) return base::ErrnoError("open", path, errno);
  bool is_dir = false;
  auto mount = MountOf(fd, "", path, &is_dir);
  absl::Status s = mount.status();
  // A filesystem mounted on `path` itself (a bind mount over a snapshot's
  // directory) is not the tree's: its entries all share the top's mount,
  // so the walk would delete them and only the last rmdir fail (EBUSY).
  if (s.ok()) {
    auto parent = MountOf(fd, "..", path + "/..", &is_dir);
    s = parent.status();
    if (s.ok() && *parent != *mount) {
      s = absl::FailedPreconditionError(absl::StrCat(
          "remove ", path, ": a filesystem is mounted there; not deleting "
          "across it"));
    }
  }
  if (s.ok()) {
    RemoveWalk walk{path, fd, *mount, stop};
    s = RemoveContents(walk, fd, path, 0);
  }
  close(fd);
  RETURN_IF_ERROR(s);
  if (rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return base::ErrnoError("remove", path, errno);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("open", dir, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return base::ErrnoError("fsync", dir, err);
  return absl::OkStatus();
}

bool Stopping(const std::atomic<bool>* stop) {
  return stop != nullptr && stop->load(std::memory_order_relaxed);
}

absl::Status StoppedError(const std::string& path) {
  return absl::UnavailableError(absl::StrCat(
      "the daemon is stopping: the walk of ", path, " was cut short; retry"));
}

absl::StatusOr<Usage> DiskUsage(const std::string& dir,
                                const std::atomic<bool>* stop) {
  UsageCounter counter;
  absl::Status s = TreeWalk(dir).Run([&](const WalkEntry& entry) {
    if (Stopping(stop)) return StoppedError(dir);
    counter.Count(entry);
    return absl::OkStatus();
  });
  // The walk's only NotFound: the root is missing.
  if (absl::IsNotFound(s)) {
    return absl::NotFoundError(absl::StrCat(dir, " does not exist"));
  }
  RETURN_IF_ERROR(s);
  return counter.usage();
}

bool UsageCounter::Count(const WalkEntry& entry) {
  if (entry.other_fs) return false;
  if (!seen_.insert({entry.st.st_dev, entry.st.st_ino}).second) return false;
  usage_.inodes++;
  usage_.size += static_cast<int64_t>(entry.st.st_blocks) * 512;
  return true;
}

}  // namespace snapshotter
