// The snapshotter core.
#include "snapshotter/snapshotter.h"

#include <unistd.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapshotter/key_validation.h"
#include "snapshotter/overlay_mounts.h"
#include "snapshotter/store_recovery.h"
#include "snapshotter/store_state.h"

namespace snapshotter {
namespace {

absl::Status ValidateKeyAndParent(absl::string_view key,
                                  absl::string_view parent,
                                  const Labels& labels) {
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  if (!parent.empty()) {
    if (absl::Status s = ValidateKey(parent, "parent"); !s.ok()) return s;
  }
  return ValidateLabels(labels);
}

// Infos of the ancestors of `info`, closest first.
absl::StatusOr<std::vector<Info>> ParentInfos(Transaction& tx,
                                              const Info& info) {
  std::vector<Info> parents;
  std::string parent = info.parent;
  constexpr size_t kMaxDepth = 1 << 16;  // guards a corrupt cycle
  while (!parent.empty()) {
    if (parents.size() >= kMaxDepth) {
      return absl::DataLossError("metadata database: parent chain too deep");
    }
    auto rec = GetInfo(tx, parent);
    if (!rec.ok()) return rec.status();
    parent = rec->info.parent;
    parents.push_back(std::move(rec->info));
  }
  return parents;
}

}  // namespace

Snapshotter::Snapshotter(Options options, std::unique_ptr<MetaStore> store,
                         int lock_fd)
    : options_(std::move(options)),
      dirs_(options_.root),
      store_(std::move(store)),
      lock_fd_(lock_fd),
      index_off_(KernelOverlayHasIndex()) {}

Snapshotter::~Snapshotter() {
  store_.reset();  // close the database before releasing the root
  close(lock_fd_);
}

absl::StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::Open(
    Options options) {
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("root \"", options.root, "\" must be an absolute path"));
  }
  SnapshotDirs dirs(options.root);
  if (absl::Status s = dirs.Init(); !s.ok()) return s;
  // Before touching anything: a second daemon on this root would delete
  // the first one's creations in progress.
  auto lock_fd = dirs.LockRoot();
  if (!lock_fd.ok()) return lock_fd.status();
  auto opened = OpenStore(dirs);
  if (!opened.ok()) {
    close(*lock_fd);
    return opened.status();
  }
  std::unique_ptr<Snapshotter> sn(
      new Snapshotter(std::move(options), std::move(opened->store), *lock_fd));
  if (absl::Status s = sn->SweepLeftovers(opened->migrated_from_v1); !s.ok()) {
    return s;
  }
  return sn;
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Prepare(
    absl::string_view key, absl::string_view parent, const Labels& labels) {
  if (absl::Status s = ValidateKeyAndParent(key, parent, labels); !s.ok()) {
    return s;
  }
  if (options_.remote != nullptr) {
    options_.remote->Refresh();
    auto remote = options_.remote->Intercept(key, parent, labels);
    if (!remote.ok()) return remote.status();
    if (remote->has_value()) {
      if (absl::Status s = CreateRemoteLayer(parent, **remote); !s.ok()) {
        return s;
      }
      return absl::AlreadyExistsError(
          absl::StrCat("target snapshot \"", (*remote)->name,
                       "\": already exists"));
    }
  }
  return CreateSnapshot(Kind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::View(absl::string_view key,
                                                     absl::string_view parent,
                                                     const Labels& labels) {
  if (absl::Status s = ValidateKeyAndParent(key, parent, labels); !s.ok()) {
    return s;
  }
  if (options_.remote != nullptr) options_.remote->Refresh();
  return CreateSnapshot(Kind::kView, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::CreateSnapshot(
    Kind kind, absl::string_view key, absl::string_view parent,
    const Labels& labels) {
  std::vector<Mount> mounts;
  std::string created;  // the directory this transaction made
  absl::Status s = store_->Update(
      [&](Transaction& tx) -> absl::Status {
        auto rec = snapshotter::CreateSnapshot(tx, kind, key, parent, labels,
                                              options_.now());
        if (!rec.ok()) return rec.status();
        // Everything that can refuse the snapshot comes before the
        // filesystem work.
        auto m = MountsOf(tx, key, *rec);
        if (!m.ok()) return m.status();
        mounts = *std::move(m);
        std::string parent_fs =
            rec->parent_ids.empty() ? "" : dirs_.FsPath(rec->parent_ids[0]);
        auto temp = dirs_.CreateTemp(kind == Kind::kActive, parent_fs);
        if (!temp.ok()) return temp.status();
        created = *temp;
        if (absl::Status s = dirs_.Install(*temp, rec->id); !s.ok()) return s;
        created = dirs_.SnapshotPath(rec->id);
        return absl::OkStatus();
      },
      // Under the store's lock: the id goes back to SQLite for reuse.
      [&] {
        if (!created.empty()) RemoveAll(created).IgnoreError();
      });
  if (!s.ok()) return s;
  return mounts;
}

absl::Status Snapshotter::CreateRemoteLayer(absl::string_view parent,
                                            const RemoteLayer& layer) {
  if (absl::Status s = ValidateKey(layer.name, "target"); !s.ok()) return s;
  if (absl::Status s = ValidateLabels(layer.labels); !s.ok()) return s;
  // Fill and flush the directory before taking the store's lock; new-*
  // directories are never swept while the daemon runs.
  auto temp = dirs_.CreateTemp(/*with_work=*/false, "");
  if (!temp.ok()) return temp.status();
  absl::Status s = options_.remote->Populate(*temp + "/fs", parent, layer);
  if (s.ok()) s = SyncFilesystem(*temp);
  if (!s.ok()) {
    RemoveAll(*temp).IgnoreError();
    return s;
  }
  std::string installed;
  s = store_->Update(
      [&](Transaction& tx) -> absl::Status {
        auto id = CreateCommitted(tx, layer.name, parent, layer.labels,
                                  options_.now());
        if (!id.ok()) return id.status();
        if (absl::Status s = dirs_.Install(*temp, *id); !s.ok()) return s;
        installed = dirs_.SnapshotPath(*id);
        return absl::OkStatus();
      },
      [&] {
        if (!installed.empty()) RemoveAll(installed).IgnoreError();
      });
  if (!s.ok()) RemoveAll(*temp).IgnoreError();  // not installed: still ours
  if (absl::IsAlreadyExists(s)) return absl::OkStatus();  // committed before
  return s;
}

absl::StatusOr<std::vector<Mount>> Snapshotter::MountsOf(
    Transaction& tx, absl::string_view key, const SnapshotRecord& record) {
  std::vector<Mount> mounts = OverlayMounts(dirs_, record, index_off_);
  if (options_.remote == nullptr) return mounts;
  auto info = GetInfo(tx, key);
  if (!info.ok()) return info.status();
  auto parents = ParentInfos(tx, info->info);
  if (!parents.ok()) return parents.status();
  return options_.remote->Decorate(info->info, *parents, std::move(mounts));
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Mounts(absl::string_view key) {
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  if (options_.remote != nullptr) options_.remote->Refresh();
  std::vector<Mount> mounts;
  absl::Status s = store_->View([&](Transaction& tx) -> absl::Status {
    auto rec = GetSnapshot(tx, key);
    if (!rec.ok()) return rec.status();
    if (rec->kind == Kind::kCommitted) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", key, " is committed: only active and view snapshots "
          "have mounts"));
    }
    auto m = MountsOf(tx, key, *rec);
    if (!m.ok()) return m.status();
    mounts = *std::move(m);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return mounts;
}

absl::Status Snapshotter::Commit(absl::string_view name, absl::string_view key,
                                 const Labels& labels) {
  if (absl::Status s = ValidateKey(name, "name"); !s.ok()) return s;
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  if (absl::Status s = ValidateLabels(labels); !s.ok()) return s;
  int64_t id = 0;
  absl::Status s = store_->View([&](Transaction& tx) -> absl::Status {
    auto rec = GetSnapshot(tx, key);
    if (!rec.ok()) return rec.status();
    if (rec->kind != Kind::kActive) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", key, " is ", KindName(rec->kind),
          ", not active: only active snapshots can be committed"));
    }
    id = rec->id;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  // Measuring and flushing a large layer takes a while; do it without
  // holding the database so Stat/Usage/List keep answering meanwhile.
  std::string fs = dirs_.FsPath(id);
  auto usage = DiskUsage(fs);
  if (!usage.ok()) return usage.status();
  // The layer's content must be on disk before its commit is recorded.
  if (absl::Status s = SyncFilesystem(fs); !s.ok()) return s;
  return store_->Update([&](Transaction& tx) -> absl::Status {
    // CommitActive re-checks that `key` is still the same active snapshot.
    auto committed =
        CommitActive(tx, key, name, *usage, labels, options_.now());
    if (!committed.ok()) return committed.status();
    if (*committed != id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", key, " was replaced while it was being committed"));
    }
    return absl::OkStatus();
  });
}

absl::Status Snapshotter::Remove(absl::string_view key) {
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  int64_t id = 0;
  absl::Status s = store_->Update([&](Transaction& tx) -> absl::Status {
    auto rec = RemoveSnapshot(tx, key);
    if (!rec.ok()) return rec.status();
    id = rec->id;
    absl::MutexLock lock(&removing_mu_);
    removing_.insert(id);  // Cleanup leaves it to us
    return absl::OkStatus();
  });
  if (!s.ok()) {
    absl::MutexLock lock(&removing_mu_);
    removing_.erase(id);
    return s;
  }
  // The record is gone and the id journalled; a directory left behind is
  // deleted by a later Cleanup.
  if (absl::Status rm = options_.remove_all(dirs_.SnapshotPath(id));
      !rm.ok()) {
    LOG(WARNING) << "snapshot " << key << " removed, directory left for "
                 << "Cleanup: " << rm;
  }
  absl::MutexLock lock(&removing_mu_);
  removing_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<Info> Snapshotter::Stat(absl::string_view key) {
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  Info info;
  absl::Status s = store_->View([&](Transaction& tx) -> absl::Status {
    auto rec = GetInfo(tx, key);
    if (!rec.ok()) return rec.status();
    info = std::move(rec->info);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return info;
}

absl::StatusOr<Info> Snapshotter::Update(
    const Info& info, const std::vector<std::string>& fieldpaths) {
  if (absl::Status s = ValidateKey(info.name, "name"); !s.ok()) return s;
  if (absl::Status s = ValidateLabels(info.labels); !s.ok()) return s;
  Info updated;
  absl::Status s = store_->Update([&](Transaction& tx) -> absl::Status {
    std::vector<std::string> owned;
    if (options_.remote != nullptr) owned = options_.remote->OwnedLabels();
    auto r = UpdateInfo(tx, info, fieldpaths, options_.now(), owned);
    if (!r.ok()) return r.status();
    updated = *std::move(r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return updated;
}

absl::Status Snapshotter::Walk(
    const SnapshotFilter& filter,
    const std::function<absl::Status(const Info&)>& fn) {
  // Collect first so a slow consumer never holds the database.
  std::vector<Info> matched;
  absl::Status s = store_->View([&](Transaction& tx) {
    return WalkInfo(tx, [&](const Info& info) {
      if (filter.Matches(info)) matched.push_back(info);
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  for (const Info& info : matched) {
    if (absl::Status s = fn(info); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Usage> Snapshotter::GetUsage(absl::string_view key) {
  if (absl::Status s = ValidateKey(key, "key"); !s.ok()) return s;
  InfoRecord rec;
  absl::Status s = store_->View([&](Transaction& tx) -> absl::Status {
    auto r = GetInfo(tx, key);
    if (!r.ok()) return r.status();
    rec = *std::move(r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (rec.info.kind != Kind::kActive) return rec.usage;
  return DiskUsage(dirs_.FsPath(rec.id));
}

absl::StatusOr<int> Snapshotter::Cleanup() {
  absl::MutexLock cleanup_lock(&cleanup_mu_);
  int unmovable = 0;
  if (absl::Status s = Sweep(unmovable); !s.ok()) return s;
  // Deleting large trees happens outside the store's lock, so no RPC waits
  // behind it. What cannot be deleted stays for the next Cleanup.
  auto listing = dirs_.List();
  if (!listing.ok()) return listing.status();
  int removed = 0;
  int64_t failed = unmovable;
  for (const std::string& path : listing->trash) {
    if (absl::Status rm = options_.remove_all(path); !rm.ok()) {
      LOG(WARNING) << "cannot delete " << path << " (retried on the next "
                   << "Cleanup): " << rm.message();
      ++failed;
    } else {
      ++removed;
    }
  }
  undeletable_.store(failed);
  return removed;
}

absl::Status Snapshotter::SweepLeftovers(bool migrated_from_v1) {
  absl::MutexLock cleanup_lock(&cleanup_mu_);
  auto listing = dirs_.List();
  if (!listing.ok()) return listing.status();
  int failed = 0;
  // A new-* directory is a creation that was never acknowledged: nothing
  // runs yet, so these are all interrupted ones.
  for (const std::string& path : listing->temps) {
    if (auto moved = dirs_.MoveToTrash(path); !moved.ok()) {
      LOG(WARNING) << "cannot move an interrupted creation aside: "
                   << moved.status().message();
      ++failed;
    }
  }
  // The previous release's Cleanup moved unproven orphans to trash-*.
  if (migrated_from_v1) {
    for (const std::string& path : listing->trash) {
      if (!QuarantineEntry(path, "trash of the previous release")) ++failed;
    }
  }
  absl::Status s = Sweep(failed);
  undeletable_.store(failed);
  return s;
}

bool Snapshotter::QuarantineEntry(const std::string& path,
                                  absl::string_view why) {
  auto moved = dirs_.Quarantine(path);
  if (!moved.ok()) {
    LOG(WARNING) << "cannot quarantine " << path << " (" << why
                 << "): " << moved.status().message();
    return false;
  }
  LOG(WARNING) << "quarantined " << path << " (" << why << ") as " << *moved
               << "; it is never deleted automatically";
  return true;
}

absl::Status Snapshotter::Sweep(int& failed) {
  // Under the write lock no creation is half-way (Install runs inside its
  // transaction), so every id directory is a record's or nobody's.
  return store_->Update([&](Transaction& tx) -> absl::Status {
    auto records = RecordIds(tx);
    if (!records.ok()) return records.status();
    auto journal = JournalledIds(tx);
    if (!journal.ok()) return journal.status();
    auto listing = dirs_.List();
    if (!listing.ok()) return listing.status();
    std::set<int64_t> removing;
    {
      absl::MutexLock lock(&removing_mu_);
      removing = removing_;
    }
    std::set<int64_t> still_there;
    bool trashed = false;
    for (int64_t id : listing->ids) {
      if (records->count(id) || removing.count(id)) continue;
      std::string path = dirs_.SnapshotPath(id);
      if (journal->count(id)) {
        if (auto moved = dirs_.MoveToTrash(path); !moved.ok()) {
          LOG(WARNING) << "cannot move released " << path
                       << " to trash: " << moved.status().message();
          still_there.insert(id);
          ++failed;
        } else {
          trashed = true;
        }
      } else if (SnapshotDirs::HoldsNoData(path)) {
        // A creation cut before its commit (a crash, or a failed sync in
        // Install): nothing was ever acknowledged or written there.
        if (auto moved = dirs_.MoveToTrash(path); !moved.ok()) {
          LOG(WARNING) << "cannot move empty unrecorded " << path
                       << " to trash: " << moved.status().message();
          ++failed;
        } else {
          LOG(INFO) << "removing " << path
                    << ": an empty directory of a creation that never "
                       "committed";
          trashed = true;
        }
      } else if (!QuarantineEntry(path, "no record owns it")) {
        ++failed;
      }
    }
    for (const std::string& path : listing->others) {
      if (!QuarantineEntry(path, "not a snapshot directory")) ++failed;
    }
    // The renames must be durable before the journal forgets the ids.
    if (trashed) {
      if (absl::Status s = SyncDir(dirs_.SnapshotsDir()); !s.ok()) return s;
    }
    for (int64_t id : *journal) {
      if (still_there.count(id) || removing.count(id)) continue;
      if (absl::Status s = ForgetRemoval(tx, id); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

int64_t Snapshotter::UndeletableCount() const { return undeletable_.load(); }

absl::StatusOr<int64_t> Snapshotter::QuarantineCount() const {
  return dirs_.QuarantineCount();
}

absl::Status Snapshotter::CheckStore() {
  if (absl::Status s = Stat("guest-pull-store-probe").status();
      !s.ok() && !absl::IsNotFound(s)) {
    return s;
  }
  // Nothing written: the commit of an empty transaction does no I/O.
  return store_->Update([](Transaction&) { return absl::OkStatus(); });
}

absl::StatusOr<std::map<std::string, int64_t>> Snapshotter::CountByKind(
    absl::string_view remote_label) {
  std::map<std::string, int64_t> counts;
  absl::Status s = store_->View([&](Transaction& tx) -> absl::Status {
    auto c = CountSnapshots(tx, remote_label);
    if (!c.ok()) return c.status();
    counts = *std::move(c);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return counts;
}

}  // namespace snapshotter
