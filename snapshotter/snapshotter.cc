// The snapshotter core: reads from the in-memory index, writes through the
// metadata store (each acknowledged after its durable commit, the index
// following it). Cleanup and the sweep of leftovers are in
// snapshotter_cleanup.cc.
#include "snapshotter/snapshotter.h"

#include <errno.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/async_or_deferred.h"
#include "base/errno_error.h"
#include "base/request_log.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/call_check.h"
#include "snapshotter/chain_id.h"
#include "snapshotter/id_mapping.h"
#include "snapshotter/key_validation.h"
#include "snapshotter/layer_sync.h"
#include "snapshotter/overlay_mounts.h"
#include "snapshotter/parallel_unpack.h"
#include "snapshotter/store_recovery.h"
#include "snapshotter/store_state.h"

namespace snapshotter {
namespace {

absl::Status ValidateKeyAndParent(absl::string_view key,
                                  absl::string_view parent,
                                  const Labels& labels) {
  RETURN_IF_ERROR(ValidateKey(key, "key"));
  if (!parent.empty()) RETURN_IF_ERROR(ValidateKey(parent, "parent"));
  RETURN_IF_ERROR(ValidateLabels(labels));
  return IdMapsOf(labels).status();
}

// Whether the chain under a snapshot with id maps `maps` was already
// shifted on disk: its parent is containerd's copy of the image chowned for
// a snapshotter without the remap-ids capability (client's
// resolveSnapshotOptions chowns every file of it), which idmapping would
// shift twice. Told by the copy's name, which the client derives from its
// parent's and the maps, not by owners on disk: an ordinary layer can have
// the owners a copy has (e.g. a committed upper of a container in the same
// user namespace, which is the container root's), and this runs in the
// store's transaction, where no I/O belongs.
bool OnRemapCopy(const std::vector<Info>& parents, const IdMaps& maps) {
  return parents.size() >= 2 &&
         IsRemapCopyName(ChainIdOf(parents[0].name), ChainIdOf(parents[1].name), maps);
}

// A file system error on snapshots that exist is the daemon's failure:
// containerd takes NotFound (ENOENT) for "no such snapshot".
absl::Status AsInternal(absl::Status s) {
  if (!absl::IsNotFound(s)) return s;
  return absl::InternalError(s.message());
}

absl::Status ReplacedWhileCommitting(absl::string_view key) {
  return absl::FailedPreconditionError(absl::StrCat(
      "snapshot ", key, " was replaced while it was being committed"));
}

// Infos of `parent` and its ancestors, closest first, read in `tx`: for a
// parent committed earlier in the same batch, which the index does not
// hold yet.
absl::StatusOr<std::vector<Info>> ParentInfosInTx(Transaction& tx,
                                                  absl::string_view parent) {
  std::vector<Info> parents;
  std::string key(parent);
  constexpr size_t kMaxDepth = 1 << 16;  // guards a corrupt cycle
  while (!key.empty()) {
    if (parents.size() >= kMaxDepth) {
      return absl::DataLossError("metadata database: parent chain too deep");
    }
    ASSIGN_OR_RETURN(InfoRecord rec, GetInfo(tx, key));
    key = rec.info.parent;
    parents.push_back(std::move(rec.info));
  }
  return parents;
}

// Whether `labels` carry an id-mapping label.
bool HasIdMapLabels(const Labels& labels) {
  return labels.count(kLabelUidMapping) != 0 || labels.count(kLabelGidMapping) != 0;
}

// Whether `a` and `b` carry the same id-mapping labels.
bool SameIdMapLabels(const Labels& a, const Labels& b) {
  for (const char* label : {kLabelUidMapping, kLabelGidMapping}) {
    auto in_a = a.find(label);
    auto in_b = b.find(label);
    if ((in_a == a.end()) != (in_b == b.end())) return false;
    if (in_a != a.end() && in_a->second != in_b->second) return false;
  }
  return true;
}

// The labels of `labels` that the "labels.<key>" paths of an Update name.
Labels NamedLabels(const Labels& labels,
                   const std::vector<std::string>& fieldpaths) {
  Labels named;
  for (const std::string& path : fieldpaths) {
    absl::string_view label = path;
    if (!absl::ConsumePrefix(&label, "labels.")) continue;
    if (auto it = labels.find(std::string(label)); it != labels.end()) {
      named.insert(*it);
    }
  }
  return named;
}

// True when an Update with `fieldpaths` replaces every label: no path, or
// "labels" among them (UpdateInfo).
bool ReplacesAllLabels(const std::vector<std::string>& fieldpaths) {
  return fieldpaths.empty() ||
         std::find(fieldpaths.begin(), fieldpaths.end(), "labels") !=
             fieldpaths.end();
}

// FailedPrecondition when a "labels.<key>" path of an Update would add,
// change or remove one of the `fixed` labels of `current`
// (RemoteLayers::FixedLabels).
absl::Status CheckFixedLabels(const Info& current, const Labels& labels,
                              const std::vector<std::string>& fieldpaths,
                              const std::vector<std::string>& fixed) {
  for (const std::string& path : fieldpaths) {
    absl::string_view key = path;
    if (!absl::ConsumePrefix(&key, "labels.") ||
        std::find(fixed.begin(), fixed.end(), key) == fixed.end()) {
      continue;
    }
    auto now = current.labels.find(std::string(key));
    auto wanted = labels.find(std::string(key));
    const std::string from = now == current.labels.end() ? "" : now->second;
    const std::string to = wanted == labels.end() ? "" : wanted->second;
    if (from == to) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", current.name, ": an update cannot ",
        to.empty() ? "remove" : from.empty() ? "add" : "change", " label ", key,
        from.empty() ? "" : absl::StrCat(" (\"", absl::CEscape(from), "\")"),
        to.empty() ? "" : absl::StrCat(" to \"", absl::CEscape(to), "\""),
        ": it records what the snapshot holds, set when it was committed; "
        "other content is another snapshot (remove the image and pull it again)"));
  }
  return absl::OkStatus();
}

// The label keys the remote layers' Records look up, if any.
std::vector<std::string> IndexedLabels(const RemoteLayers* remote) {
  if (remote == nullptr) return {};
  return remote->IndexedLabels();
}

// Every record of the database at `db_path` into `index`, on a read-only
// connection of its own.
absl::Status PreloadIndex(const std::string& db_path, SnapshotIndex& index) {
  ASSIGN_OR_RETURN(std::unique_ptr<MetaStore> reader,
                   MetaStore::Open(db_path, MetaStore::Mode::kReadOnly));
  return reader->View([&](Transaction& tx) { return index.Load(tx); });
}

}  // namespace

Snapshotter::Snapshotter(Options options, std::unique_ptr<MetaStore> store,
                         int lock_fd)
    : options_(std::move(options)),
      dropped_at_creation_(options_.remote == nullptr
                               ? std::vector<ReservedLabel>{}
                               : options_.remote->LabelsDroppedAtCreation()),
      dirs_(options_.root),
      store_(std::move(store)),
      committer_(store_.get(),
                 [this] { return SyncDir(dirs_.SnapshotsDir()); }),
      index_(IndexedLabels(options_.remote)),
      spares_(&dirs_, options_.spare_dirs),
      lock_fd_(lock_fd),
      index_off_(KernelOverlayHasIndex()) {}

Snapshotter::~Snapshotter() {
  spares_.Stop();
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
  // Only the root itself (if missing) and its lock file are made before
  // OpenStore accepts the store: a refused start leaves the rest as it was.
  RETURN_IF_ERROR(dirs.MakeRoot());
  // Before touching anything: a second daemon on this root would delete
  // the first one's creations in progress.
  ASSIGN_OR_RETURN(int lock_fd, dirs.LockRoot());
  // The index reads the records while OpenStore checks the database and
  // the directories (OpenStore and SweepLeftovers write no snapshot or
  // label row, store_recovery.h).
  auto preloaded =
      std::make_unique<SnapshotIndex>(IndexedLabels(options.remote));
  std::future<absl::Status> preload = base::AsyncOrDeferred(
      [&] { return PreloadIndex(dirs.MetadataPath(), *preloaded); });
  auto opened = OpenStore(dirs);
  absl::Status preload_status = preload.get();
  if (!opened.ok()) {
    close(lock_fd);
    return opened.status();
  }
  std::unique_ptr<Snapshotter> sn(
      new Snapshotter(std::move(options), std::move(opened->store), lock_fd));
  if (sn->options_.on_commit_in_doubt) {
    sn->store_->SetOnCommitInDoubt(sn->options_.on_commit_in_doubt);
  }
  RETURN_IF_ERROR(sn->SweepLeftovers(*opened));
  // Kept when it holds the records OpenStore read and nothing was migrated.
  bool kept = preload_status.ok() && !opened->migrated_from_v1 &&
              preloaded->Ids() == opened->records;
  if (kept) sn->index_.Swap(*preloaded);
  preloaded.reset();  // before a second read, never beside it
  // A store without records (e.g. just created: no database for the
  // preload to read) has an empty index.
  if (!kept && !opened->records.empty()) {
    LOG(INFO) << "reading the index again: the one read beside the checks "
              << (preload_status.ok() ? "differs from the open store"
                                      : preload_status.ToString());
    RETURN_IF_ERROR(sn->store_->View(
        [&](Transaction& tx) { return sn->index_.Load(tx); }));
  }
  // Reads are served from the index from now on: the pages the load read
  // and the heap its temporaries used go back.
  sn->store_->ReleaseMemory();
  malloc_trim(0);
  return sn;
}

absl::Status Snapshotter::Mutate(
    const std::function<absl::Status(Transaction&)>& fn,
    const std::function<void()>& on_rollback,
    const std::function<void()>& on_commit, Durability durability) {
  Mutation m;
  // A client that gave up while this call waited gets no change.
  m.check = CurrentCallCheck();
  m.apply = fn;
  m.on_rollback = on_rollback;
  m.on_commit = on_commit;
  m.flush = durability != Durability::kRecordOnly;
  m.installs_data = durability == Durability::kInstallsData;
  return committer_.Run(m);
}

const Labels& Snapshotter::CreationLabels(absl::string_view call,
                                          absl::string_view key,
                                          const Labels& labels,
                                          Labels& copy) const {
  std::string dropped;
  for (const ReservedLabel& reserved : dropped_at_creation_) {
    if (labels.find(reserved.name) == labels.end()) continue;
    if (dropped.empty()) copy = labels;
    copy.erase(reserved.name);
    absl::StrAppend(&dropped, dropped.empty() ? "" : "; ", reserved.name, " (",
                    reserved.reason, ")");
  }
  if (dropped.empty()) return labels;
  REQUEST_LOG_INFO << call << " key=\"" << absl::CEscape(key)
                   << "\": dropped labels a creating client may not set: "
                   << dropped;
  return copy;
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Prepare(
    absl::string_view key, absl::string_view parent,
    const Labels& client_labels) {
  Labels copy;
  const Labels& labels = CreationLabels("Prepare", key, client_labels, copy);
  RETURN_IF_ERROR(ValidateKeyAndParent(key, parent, labels));
  if (options_.remote != nullptr) {
    options_.remote->Refresh();
    auto parent_info = [&]() -> std::optional<Info> {
      if (parent.empty()) return std::nullopt;
      absl::StatusOr<IndexedSnapshot> record = index_.Get(parent);
      if (!record.ok()) return std::nullopt;
      return std::move(record->info);
    };
    ASSIGN_OR_RETURN(
        std::optional<RemoteLayer> remote,
        options_.remote->Intercept(key, parent, parent_info, Records(), labels));
    if (remote.has_value()) {
      RETURN_IF_ERROR(CreateRemoteLayer(parent, *remote));
      return absl::AlreadyExistsError(absl::StrCat(
          "target snapshot \"", remote->name, "\": already exists"));
    }
  }
  return CreateSnapshot(Kind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::View(
    absl::string_view key, absl::string_view parent,
    const Labels& client_labels) {
  Labels copy;
  const Labels& labels = CreationLabels("View", key, client_labels, copy);
  RETURN_IF_ERROR(ValidateKeyAndParent(key, parent, labels));
  if (options_.remote != nullptr) options_.remote->Refresh();
  return CreateSnapshot(Kind::kView, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::CreateSnapshot(
    Kind kind, absl::string_view key, absl::string_view parent,
    const Labels& labels) {
  IndexedSnapshot created;
  created.info.name = std::string(key);
  created.info.parent = std::string(parent);
  created.info.kind = kind;
  created.info.created = created.info.updated = StoredTime(options_.now());
  created.info.labels = StoredLabels(labels);
  // The directory is made (or an active snapshot's taken from the spares)
  // before the store is taken (new-* and spare-* directories are never
  // swept while the daemon runs), after those of the layers below that
  // have none; its fs/ takes the parent's owner and mode. It is
  // empty, so it is not flushed: only the record is made durable here; a
  // start after a power cut recreates the empty directory of a record if
  // it was lost (store_recovery.h), and Commit flushes the path of the
  // layer it records.
  auto committed_parent_id = [&]() -> int64_t {
    auto p = index_.Get(parent);
    return p.ok() && p->info.kind == Kind::kCommitted ? p->id : 0;
  };
  // A container in a user namespace: its upper directory belongs to its
  // root, as containerd's overlayfs makes it (validated by the caller); the
  // spare or new directory is chowned in the transaction below.
  absl::StatusOr<std::optional<IdMaps>> id_maps = IdMapsOf(labels);
  if (!id_maps.ok()) return id_maps.status();
  auto make_temp = [&](int64_t parent_id) -> absl::StatusOr<std::string> {
    std::string parent_fs = parent_id == 0 ? "" : dirs_.FsPath(parent_id);
    absl::StatusOr<std::string> temp =
        kind == Kind::kActive
            ? spares_.Take(parent_fs)
            : dirs_.CreateTemp(/*with_work=*/false, parent_fs, /*sync=*/false);
    if (!temp.ok()) return AsInternal(temp.status());
    return temp;
  };
  // Before the transaction: a parent removed meanwhile took its directory
  // with it. One made again under its name since (another client, or a
  // pull racing a GC) is a parent like any other, as in containerd's
  // overlay, which looks it up in its transaction: the directory is made
  // again for it (bounded), rather than an INTERNAL for the old one's.
  constexpr int kAttempts = 3;
  int64_t owner_id = 0;
  std::string temp;
  for (int attempt = 1;; ++attempt) {
    owner_id = committed_parent_id();
    if (options_.after_parent_lookup) options_.after_parent_lookup(key);
    absl::Status s =
        owner_id != 0 ? MakeLayerDirs(parent) : absl::OkStatus();
    absl::StatusOr<std::string> made =
        s.ok() ? make_temp(owner_id) : absl::StatusOr<std::string>(s);
    if (made.ok()) {
      temp = *std::move(made);
      break;
    }
    if (owner_id == 0) return AsInternal(made.status());
    int64_t now = committed_parent_id();
    if (now != 0 && now != owner_id && attempt < kAttempts) continue;
    return GoneOrInternal("parent snapshot", parent, made.status());
  }
  std::vector<Mount> mounts;
  std::string installed;  // snapshots/<id> once renamed there
  // The parents (closest first) of an active snapshot the remote layers
  // decorate.
  std::vector<Info> parent_infos;
  std::vector<int64_t> parent_ids;
  absl::Status s = Mutate(
      [&](Transaction& tx) -> absl::Status {
        ASSIGN_OR_RETURN(
            SnapshotRecord rec,
            snapshotter::CreateSnapshot(tx, kind, key, parent, labels,
                                        created.info.created));
        created.id = rec.id;
        // The parents' infos come from the index, or from the transaction
        // for a parent committed earlier in the same batch. Everything that
        // can refuse the snapshot comes before the filesystem work.
        std::vector<Info> parents;
        if (auto chain = index_.ChainOf(parent);
            chain.ok() && chain->parent_ids == rec.parent_ids) {
          parents = std::move(chain->parents);
        } else {
          ASSIGN_OR_RETURN(parents, ParentInfosInTx(tx, parent));
        }
        ASSIGN_OR_RETURN(mounts, MountsOf(created.info, rec, parents));
        int64_t parent_id = rec.parent_ids.empty() ? 0 : rec.parent_ids[0];
        if (parent_id != owner_id) {
          // The parent changed since the directory was made (e.g. committed
          // earlier in this batch): make it again with the right owner,
          // after the directories the layers below may lack.
          RemoveAll(temp).IgnoreError();
          std::vector<int64_t> contentless;
          for (size_t i = 0; i < parents.size(); ++i) {
            if (parents[i].kind != Kind::kCommitted) continue;
            ASSIGN_OR_RETURN(InfoRecord layer, GetInfo(tx, parents[i].name));
            if (layer.usage.inodes == 0) {
              contentless.push_back(rec.parent_ids[i]);
            }
          }
          RETURN_IF_ERROR(
              AsInternal(MakeEmptyLayerDirs(contentless, /*durable=*/false)));
          ASSIGN_OR_RETURN(temp, make_temp(parent_id));
          owner_id = parent_id;
        }
        // After every refusal (MountsOf), before the directory is in place.
        if (id_maps->has_value()) {
          const std::string fs = temp + "/fs";
          if (lchown(fs.c_str(), (*id_maps)->root_uid, (*id_maps)->root_gid) != 0) {
            return AsInternal(base::ErrnoError("chown", fs, errno));
          }
        }
        RETURN_IF_ERROR(
            AsInternal(dirs_.Install(temp, rec.id, /*sync=*/false)));
        installed = dirs_.SnapshotPath(rec.id);
        if (kind == Kind::kActive && options_.remote != nullptr &&
            options_.remote->Decorates(parents)) {
          parent_infos = std::move(parents);  // for PopulateActive below
          parent_ids = rec.parent_ids;
        }
        return absl::OkStatus();
      },
      // Under the store's lock: the id goes back to SQLite for reuse.
      [&] {
        if (!installed.empty()) RemoveAll(installed).IgnoreError();
        installed.clear();
      },
      [&] { index_.Put(created); }, Durability::kRecordOnly);
  if (!s.ok()) {
    if (installed.empty()) RemoveAll(temp).IgnoreError();  // still ours
    return s;
  }
  if (!parent_infos.empty()) {
    std::vector<std::string> parent_fs;
    for (int64_t id : parent_ids) parent_fs.push_back(dirs_.FsPath(id));
    absl::Status p = options_.remote->PopulateActive(key, dirs_.FsPath(created.id),
                                                     parent_infos, parent_fs);
    if (!p.ok()) {
      LOG(WARNING) << "snapshot \"" << absl::CEscape(key)
                   << "\": host-side files of its layers not written: "
                   << absl::CEscape(p.message());
    }
  }
  return mounts;
}

absl::Status Snapshotter::CreateRemoteLayer(absl::string_view parent,
                                            const RemoteLayer& layer) {
  RETURN_IF_ERROR(ValidateKey(layer.name, "target"));
  RETURN_IF_ERROR(ValidateLabels(layer.labels));
  // A target that existed in the transaction but is gone once it is looked
  // at was removed in between (a GC racing the pull): it is made again, as
  // containerd's overlay would commit the layer then, instead of failing
  // the pull. Bounded; the last AlreadyExists is then the answer, which
  // containerd's unpacker meets with a Stat and a retry of its own.
  constexpr int kAttempts = 3;
  absl::Status s;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    s = CreateRemoteLayerOnce(parent, layer);
    if (!absl::IsAlreadyExists(s)) return s;
    // Committed before, as this layer: the same chain has the same parent.
    absl::StatusOr<IndexedSnapshot> existing = index_.Get(layer.name);
    if (!existing.ok()) continue;
    if (existing->info.kind == Kind::kCommitted &&
        existing->info.parent == parent) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "target snapshot \"", layer.name, "\" exists, but as ",
        KindName(existing->info.kind), " on parent \"", existing->info.parent,
        "\", not as this layer on parent \"", parent, "\""));
  }
  return s;
}

absl::Status Snapshotter::CreateRemoteLayerOnce(absl::string_view parent,
                                                const RemoteLayer& layer) {
  // A layer left empty (the usual case: its content is in the guest) gets
  // no directory: MakeLayerDirs makes it when a snapshot on it needs it.
  // Populate makes one only to write files into it, before the store's
  // lock is taken (new-* directories are never swept while the daemon
  // runs); those are flushed by what they hold (SyncTree, not the
  // filesystem) and the rename by the batch's flush.
  std::string temp;
  auto make_fs = [&]() -> absl::StatusOr<std::string> {
    if (temp.empty()) {
      ASSIGN_OR_RETURN(temp, dirs_.CreateTemp(/*with_work=*/false, "",
                                              /*sync=*/false));
    }
    return temp + "/fs";
  };
  absl::StatusOr<bool> wrote =
      options_.remote->Populate(make_fs, parent, layer);
  absl::Status s = AsInternal(wrote.status());
  // A layer holding files (more than fs/ itself) records their usage:
  // recovery must never take it for an empty one it may make again
  // (store_state.h ContentlessRecords). An empty one records none.
  if (s.ok() && !*wrote && !temp.empty()) {
    // Made but left empty: a layer without files has no directory (a
    // new-* directory left behind is swept at the next start).
    RemoveAll(temp).IgnoreError();
    temp.clear();
  }
  Usage usage;
  if (s.ok() && *wrote && !temp.empty()) {
    absl::StatusOr<Usage> used = DiskUsage(temp + "/fs");
    s = AsInternal(used.status());
    if (used.ok() && used->inodes > 1) usage = *used;
  }
  bool holds_data = usage.inodes > 0;
  if (s.ok() && holds_data) s = AsInternal(SyncTree(temp).status());
  if (!s.ok()) {
    if (!temp.empty()) RemoveAll(temp).IgnoreError();
    return s;
  }
  IndexedSnapshot created;
  created.info.name = layer.name;
  created.info.parent = std::string(parent);
  created.info.kind = Kind::kCommitted;
  created.info.created = created.info.updated = StoredTime(options_.now());
  created.info.labels = StoredLabels(layer.labels);
  created.usage = usage;
  std::string installed;
  s = Mutate(
      [&](Transaction& tx) -> absl::Status {
        ASSIGN_OR_RETURN(created.id,
                         CreateCommitted(tx, layer.name, parent, layer.labels,
                                         created.info.created, usage));
        if (temp.empty()) return absl::OkStatus();
        RETURN_IF_ERROR(
            AsInternal(dirs_.Install(temp, created.id, /*sync=*/false)));
        installed = dirs_.SnapshotPath(created.id);
        return absl::OkStatus();
      },
      [&] {
        if (!installed.empty()) RemoveAll(installed).IgnoreError();
        installed.clear();
      },
      [&] { index_.Put(created); },
      holds_data ? Durability::kInstallsData : Durability::kRecordOnly);
  // Not installed: still ours.
  if (!s.ok() && installed.empty() && !temp.empty()) {
    RemoveAll(temp).IgnoreError();
  }
  return s;
}

absl::Status Snapshotter::GoneOrInternal(absl::string_view what,
                                         absl::string_view key,
                                         const absl::Status& s) const {
  if (!index_.Get(key).ok()) {
    return absl::NotFoundError(absl::StrCat(what, " ", key, ": not found"));
  }
  return AsInternal(s);
}

absl::Status Snapshotter::MakeLayerDirs(absl::string_view parent) {
  if (options_.remote == nullptr || parent.empty()) return absl::OkStatus();
  // A parent removed meanwhile fails the creation in its transaction; a
  // directory made for it here is then an orphan, which Cleanup sweeps.
  return MakeEmptyLayerDirs(index_.ContentlessLayers(parent));
}

absl::Status Snapshotter::MakeEmptyLayerDirs(const std::vector<int64_t>& ids,
                                             bool durable) {
  if (ids.empty()) return absl::OkStatus();
  absl::MutexLock lock(&layer_dirs_mu_);
  int made = 0;
  for (int64_t id : ids) {
    if (present_layer_dirs_.contains(id)) continue;
    // A directory there holding anything is not this layer's, which never
    // held files: a rolled-back creation whose removal failed left it under
    // an id SQLite handed out again, or someone wrote into a lower layer.
    // Kept, out of the way, as Install does; an empty one is used.
    RETURN_IF_ERROR(
        dirs_.QuarantineIfHoldsData(
                 id, "of a layer recorded without content held files")
            .status());
    // Made as CreateTemp would have made them for a remote layer (no
    // work/, fs/ with the daemon's owner), and not flushed: they hold
    // nothing, and every call that needs them makes them again if a power
    // cut lost them.
    absl::StatusOr<bool> m =
        dirs_.Recreate(id, /*with_work=*/false, "", /*sync=*/false);
    if (!m.ok()) {
      // Left without its fs/, nobody can use it.
      std::string path = dirs_.SnapshotPath(id);
      if (access(dirs_.FsPath(id).c_str(), F_OK) != 0 &&
          SnapshotDirs::HoldsNoData(path)) {
        RemoveAll(path).IgnoreError();
      }
      return m.status();
    }
    made += *m ? 1 : 0;
    if (durable) present_layer_dirs_.insert(id);
  }
  if (made > 0) {
    VLOG(1) << "made the directories of " << made
            << " layers recorded without content for a snapshot on them";
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Mount>> Snapshotter::MountsOf(
    const Info& info, const SnapshotRecord& record,
    const std::vector<Info>& parents) {
  bool awaits_rebase = AwaitsRebase(info);
  if (awaits_rebase) RETURN_IF_ERROR(AsInternal(dirs_.MakeEmptyLower()));
  std::vector<Mount> mounts =
      OverlayMounts(dirs_, record, index_off_, awaits_rebase);
  // As containerd's overlayfs with the remap-ids capability: containerd's
  // mount code idmaps the layers (lowerdirs, or the bind mount) for a
  // container in a user namespace, unless they were chowned for it.
  ASSIGN_OR_RETURN(std::optional<IdMaps> id_maps, IdMapsOf(info.labels));
  if (id_maps.has_value() && !OnRemapCopy(parents, *id_maps)) {
    std::vector<std::string> extra = IdMapOptions(*id_maps);
    for (Mount& m : mounts) m.options.insert(m.options.begin(), extra.begin(), extra.end());
  }
  if (options_.remote == nullptr) return mounts;
  return options_.remote->Decorate(info, parents, Records(), std::move(mounts));
}

std::function<void(absl::string_view, absl::string_view,
                   const std::function<bool(const InfoView&)>&)>
Snapshotter::Records() const {
  return [this](absl::string_view label, absl::string_view value,
                const std::function<bool(const InfoView&)>& fn) {
    index_.VisitLabelled(label, value, fn);
  };
}

bool Snapshotter::MountsRefreshes(absl::string_view key) const {
  if (options_.remote == nullptr) return false;
  absl::StatusOr<IndexedChain> chain = index_.GetChain(key);
  return chain.ok() && options_.remote->Decorates(chain->parents);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Mounts(absl::string_view key) {
  RETURN_IF_ERROR(ValidateLookupKey(key, "key"));
  ASSIGN_OR_RETURN(IndexedChain chain, index_.GetChain(key));
  const IndexedSnapshot& s = chain.snapshot;
  if (s.info.kind == Kind::kCommitted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", key, " is committed: only active and view snapshots "
        "have mounts"));
  }
  // The chain is a copy: the refresh takes no lock of the index. Layers
  // without content may have no directory yet (e.g. after a restart).
  if (options_.remote != nullptr && options_.remote->Decorates(chain.parents)) {
    options_.remote->Refresh();
    if (!s.info.parent.empty()) {
      RETURN_IF_ERROR(AsInternal(MakeLayerDirs(s.info.parent)));
    }
  }
  return MountsOf(s.info, SnapshotRecord{s.id, s.info.kind, chain.parent_ids},
                  chain.parents);
}

absl::Status Snapshotter::Commit(absl::string_view name, absl::string_view key,
                                 const Labels& client_labels,
                                 absl::string_view parent) {
  Labels copy;
  const Labels& labels = CreationLabels("Commit", key, client_labels, copy);
  // The key before the name: containerd's overlay looks it up first, so an
  // empty key is NotFound even with an empty name.
  RETURN_IF_ERROR(ValidateLookupKey(key, "key"));
  RETURN_IF_ERROR(ValidateKey(name, "name"));
  if (!parent.empty()) RETURN_IF_ERROR(ValidateKey(parent, "parent"));
  RETURN_IF_ERROR(ValidateLabels(labels));
  ASSIGN_OR_RETURN(IndexedSnapshot active, index_.Get(key));
  // As containerd's overlay: a taken name is AlreadyExists before the kind
  // of `key` or a new parent is looked at (containerd's unpack takes it for
  // "the layer is there already"), and no layer is flushed for it.
  if (index_.Contains(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", name, ": already exists"));
  }
  if (active.info.kind != Kind::kActive) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", key, " is ", KindName(active.info.kind),
        ", not active: only active snapshots can be committed"));
  }
  // A new parent (containerd's rebase, parallel_unpack.h) is checked
  // before the layer is flushed; the transaction checks it is committed.
  std::string rebase_parent;
  if (!parent.empty() && parent != active.info.parent) {
    RETURN_IF_ERROR(CheckRebase(active.info, parent));
    rebase_parent = std::string(parent);
  }
  // Measuring and flushing a large layer takes a while; do it without
  // holding the store so every other call keeps being served meanwhile.
  // The layer's content must be on disk before its commit is recorded:
  // its own files and directories, not the whole filesystem, and the path
  // to it (Prepare did not flush it): snapshots/<id> here, snapshots/ by
  // the batch's flush. One walk measures and flushes it.
  absl::StatusOr<Usage> measured = SyncTree(dirs_.FsPath(active.id), &stopping_);
  absl::Status s = measured.status();
  if (absl::IsUnavailable(s) && Stopping(&stopping_)) return s;
  if (s.ok()) s = SyncDir(dirs_.SnapshotPath(active.id));
  if (!s.ok()) {
    // A Remove that won the race (its record goes before its directory)
    // took the directory with it; a Prepare may have reused the key since.
    if (auto now = index_.Get(key); now.ok() && now->id != active.id) {
      return ReplacedWhileCommitting(key);
    }
    return GoneOrInternal("snapshot", key, s);
  }
  Usage usage = *measured;
  IndexedSnapshot committed;
  committed.id = active.id;
  committed.usage = usage;
  committed.info.name = std::string(name);
  committed.info.parent =
      rebase_parent.empty() ? active.info.parent : rebase_parent;
  committed.info.kind = Kind::kCommitted;
  committed.info.created = committed.info.updated = StoredTime(options_.now());
  committed.info.labels = StoredLabels(labels);
  return Mutate(
      [&](Transaction& tx) -> absl::Status {
        // CommitActive re-checks that `key` is still the same active one.
        ASSIGN_OR_RETURN(int64_t id,
                         CommitActive(tx, key, name, usage, labels,
                                      committed.info.created, rebase_parent));
        if (id != active.id) return ReplacedWhileCommitting(key);
        return absl::OkStatus();
      },
      nullptr,
      [&] {
        index_.Erase(key);
        index_.Put(committed);
      },
      Durability::kFlushed);
}

absl::Status Snapshotter::Remove(absl::string_view key) {
  RETURN_IF_ERROR(ValidateLookupKey(key, "key"));
  int64_t id = 0;
  bool committed = false;
  absl::Status s = Mutate(
      [&](Transaction& tx) -> absl::Status {
        ASSIGN_OR_RETURN(SnapshotRecord rec, RemoveSnapshot(tx, key));
        id = rec.id;
        committed = rec.kind == Kind::kCommitted;
        absl::MutexLock lock(&removing_mu_);
        removing_.insert(id);  // Cleanup leaves it to us
        return absl::OkStatus();
      },
      nullptr, [&] { index_.Erase(key); }, Durability::kRecordOnly);
  if (!s.ok()) {
    absl::MutexLock lock(&removing_mu_);
    removing_.erase(id);
    return s;
  }
  if (committed) {  // only layers are in it; a container's Remove skips it
    absl::MutexLock lock(&layer_dirs_mu_);
    present_layer_dirs_.erase(id);
  }
  // The record is gone and the id journalled; a directory left behind is
  // deleted by a later Cleanup. A stop cuts the deletion short, as it does
  // the trash's: the next start deletes the rest.
  if (absl::Status rm =
          options_.remove_all(dirs_.SnapshotPath(id), &stopping_);
      absl::IsCancelled(rm) && stopping_.load()) {
    LOG(INFO) << "snapshot \"" << absl::CEscape(key) << "\" removed; stopping: "
              << "the rest of its directory is left for the next start";
  } else if (!rm.ok()) {
    // Counted now (guest_pull_undeletable_entries), which also has the
    // daemon's periodic retry look at it: a Remove without a Cleanup after
    // it (`ctr snapshots rm`) left it uncounted and unretried until the
    // next Cleanup or start. The next Cleanup counts afresh.
    undeletable_.fetch_add(1);
    LOG(WARNING) << "snapshot \"" << absl::CEscape(key)
                 << "\" removed, but its directory cannot be deleted (retried "
                    "every 5 minutes and at every Cleanup; remove the "
                    "obstacle, e.g. umount, chattr -i): "
                 << rm;
  }
  absl::MutexLock lock(&removing_mu_);
  removing_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<Info> Snapshotter::Stat(absl::string_view key) {
  RETURN_IF_ERROR(ValidateLookupKey(key, "key"));
  ASSIGN_OR_RETURN(IndexedSnapshot s, index_.Get(key));
  return std::move(s.info);
}

absl::StatusOr<Info> Snapshotter::Update(
    const Info& info, const std::vector<std::string>& fieldpaths) {
  // The name only finds a snapshot: an empty one is NotFound, as in
  // containerd's overlay (storage.UpdateInfo looks it up first).
  RETURN_IF_ERROR(ValidateLookupKey(info.name, "name"));
  // As containerd: a missing snapshot is NotFound whatever labels the
  // request carries, and only the labels the update writes are checked (a
  // label it carries but no path names is not looked at).
  RETURN_IF_ERROR(index_.Get(info.name).status());
  RETURN_IF_ERROR(CheckUpdatePaths(info.name, fieldpaths));
  Labels named = NamedLabels(info.labels, fieldpaths);
  const Labels& written = ReplacesAllLabels(fieldpaths) ? info.labels : named;
  RETURN_IF_ERROR(ValidateLabels(written));
  // Mounts reads the id maps from the labels: malformed ones would fail
  // every later Mounts of the snapshot.
  RETURN_IF_ERROR(IdMapsOf(written).status());
  std::vector<std::string> owned, by_name_only;
  if (options_.remote != nullptr) {
    owned = options_.remote->OwnedLabels();
    by_name_only = options_.remote->LabelsSetByNameOnly();
    // The labels "labels.<key>" paths set: the only ones an Update can set
    // by name only.
    RETURN_IF_ERROR(options_.remote->CheckUpdatedLabels(named));
  }
  absl::Time now = StoredTime(options_.now());
  Info updated;
  RETURN_IF_ERROR(Mutate(
      [&](Transaction& tx) -> absl::Status {
        // The record this transaction writes (the index's copy may be of
        // one removed since, its name taken by another).
        ASSIGN_OR_RETURN(InfoRecord current, GetInfo(tx, info.name));
        std::vector<std::string> kept = by_name_only;
        if (options_.remote != nullptr) {
          std::vector<std::string> fixed = options_.remote->FixedLabels(current.info);
          RETURN_IF_ERROR(CheckFixedLabels(current.info, info.labels, fieldpaths, fixed));
          kept.insert(kept.end(), fixed.begin(), fixed.end());
        }
        ASSIGN_OR_RETURN(updated,
                         UpdateRecord(tx, current, info, fieldpaths, now, owned, kept));
        // New id maps on an active snapshot or a view: refused where its
        // Prepare with them would have been (a rootfs on guest-pulled
        // layers), its Mounts would fail. Rare: the chain is read only
        // then. Removing maps is always taken.
        if (options_.remote != nullptr && updated.kind != Kind::kCommitted &&
            !SameIdMapLabels(current.info.labels, updated.labels) &&
            HasIdMapLabels(updated.labels)) {
          ASSIGN_OR_RETURN(std::vector<Info> parents, ParentInfosInTx(tx, updated.parent));
          RETURN_IF_ERROR(options_.remote->CheckUserNamespace(updated, parents));
        }
        return absl::OkStatus();
      },
      nullptr, [&] { index_.ReplaceInfo(updated); },
      Durability::kRecordOnly));
  return updated;
}

absl::Status Snapshotter::Walk(
    const SnapshotFilter& filter,
    const std::function<absl::Status(const Info&)>& fn) {
  // In batches, each collected first so a slow consumer never holds the
  // index, and a Walk of many snapshots never copies them all at once. Each
  // key is seen at most once, in key order; a snapshot created or removed
  // during the Walk may or may not be listed (as with any unlocked walk).
  std::string after;
  while (true) {
    std::vector<Info> batch = Select(filter, after, kWalkBatch);
    for (const Info& info : batch) RETURN_IF_ERROR(fn(info));
    if (batch.size() < kWalkBatch) return absl::OkStatus();
    after = batch.back().name;
  }
}

VisitEnd Snapshotter::Visit(
    const SnapshotFilter& filter, absl::string_view after,
    const std::function<bool(const InfoView&)>& fn,
    const std::atomic<bool>* stop) const {
  if (!filter.HasRegexps()) {
    size_t seen = 0;
    return index_.Visit(after, [&](const InfoView& view) {
      bool more = true;
      if (filter.Matches(view)) more = fn(view);
      return more && ++seen < kWalkBatch;
    });
  }
  // ~= regexps are matched on copies, outside the index's read lock: a
  // commit waits for that lock under the store's, and the store's probe
  // (the systemd watchdog's) behind it.
  std::vector<Info> batch;
  VisitEnd end = index_.Visit(after, [&](const InfoView& view) {
    batch.push_back(view.ToInfo());
    return batch.size() < kWalkBatch;
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    InfoView::LabelRefs labels;
    InfoView view = InfoView::Of(batch[i], &labels);
    bool matches = filter.Matches(view, stop);
    if (stop != nullptr && stop->load()) {  // this record was not looked at
      end = VisitEnd{i == 0 ? std::string(after) : batch[i - 1].name, false};
      break;
    }
    if (matches && !fn(view)) {
      if (i + 1 < batch.size()) end = VisitEnd{batch[i].name, false};
      break;
    }
  }
  return end;
}

std::vector<Info> Snapshotter::Select(const SnapshotFilter& filter,
                                      absl::string_view after,
                                      size_t limit) const {
  return index_.Select([&](const InfoView& info) { return filter.Matches(info); },
                       after, limit);
}

absl::StatusOr<Usage> Snapshotter::GetUsage(absl::string_view key) {
  RETURN_IF_ERROR(ValidateLookupKey(key, "key"));
  ASSIGN_OR_RETURN(IndexedSnapshot s, index_.Get(key));
  if (s.info.kind != Kind::kActive) return s.usage;
  absl::StatusOr<Usage> usage = DiskUsage(dirs_.FsPath(s.id), &stopping_);
  if (absl::IsUnavailable(usage.status()) && Stopping(&stopping_)) {
    return usage.status();
  }
  if (!usage.ok()) return GoneOrInternal("snapshot", key, usage.status());
  return usage;
}

absl::Status Snapshotter::CheckStore() {
  // A read of the database itself (the index answers without it), then an
  // empty write transaction.
  absl::Status read = store_->View([](Transaction& tx) {
    return GetInfo(tx, "guest-pull-store-probe").status();
  });
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  // Nothing written: the commit of an empty transaction does no I/O.
  return store_->Update([](Transaction&) { return absl::OkStatus(); });
}

absl::StatusOr<std::map<std::string, int64_t>> Snapshotter::CountByKind(
    absl::string_view remote_label) {
  return index_.CountByKind(remote_label);
}

}  // namespace snapshotter
