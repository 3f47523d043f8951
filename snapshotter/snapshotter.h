// The snapshotter core: containerd's Snapshotter operations over the
// metadata store (storage.h), its in-memory index (snapshot_index.h) and the
// directory layout (snapshot_dirs.h). Reads are served from the index.
// Every mutation runs in one transaction and returns after its durable
// commit; directories are created in a temp dir and renamed into place
// inside it, and removed only after it commits, so a crash at any point
// leaves state that Open() and Cleanup() repair. An empty new directory is
// not flushed (Open makes it again if a power cut lost it); a Commit
// flushes its layer and the path to it.
#ifndef SNAPSHOTTER_SNAPSHOTTER_H_
#define SNAPSHOTTER_SNAPSHOTTER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "snapshotter/filters.h"
#include "snapshotter/group_commit.h"
#include "snapshotter/metastore.h"
#include "snapshotter/remote_layers.h"
#include "snapshotter/snapshot_dirs.h"
#include "snapshotter/snapshot_index.h"
#include "snapshotter/snapshot_types.h"
#include "snapshotter/spare_dirs.h"
#include "snapshotter/storage.h"
#include "snapshotter/store_recovery.h"

namespace snapshotter {

// An overlayfs snapshotter with optional remote-layer hooks.
class Snapshotter {
 public:
  struct Options {
    std::string root;
    // Not owned; may be null (plain overlayfs snapshotter).
    RemoteLayers* remote = nullptr;
    // Directories of active snapshots made ahead (spare_dirs.h); 0 = none.
    int spare_dirs = SpareDirs::kDefaultCapacity;
    // Clock, replaceable in tests.
    std::function<absl::Time()> now = RealtimeNow;
    // Deletes a released directory tree (RemoveAll; `stop` may be null);
    // replaceable in tests (faults).
    std::function<absl::Status(const std::string& path,
                               const std::atomic<bool>* stop)>
        remove_all = RemoveAll;
    // Runs when a commit of the store is in doubt (an I/O error at COMMIT):
    // the store then refuses every mutation (MetaStore::Update). The
    // daemon exits there.
    std::function<void(const absl::Status&)> on_commit_in_doubt;
    // Runs in a creation after its parent was looked up in the index and
    // before its directory is made (no lock held); tests race a Remove
    // there. May be empty.
    std::function<void(absl::string_view key)> after_parent_lookup;
  };

  // Opens (creating) the root and the database after the checks of
  // store_recovery.h (a refusal is returned as is, having changed nothing
  // but <root>/lock, which may be new), and moves leftovers
  // aside: interrupted creations and released directories to trash,
  // anything unproven to quarantine. Deletes nothing but the empty spare
  // directories a crash left (spare_dirs.h): Cleanup() empties the trash.
  static absl::StatusOr<std::unique_ptr<Snapshotter>> Open(Options options);

  absl::StatusOr<std::vector<Mount>> Prepare(absl::string_view key,
                                             absl::string_view parent,
                                             const Labels& labels);
  absl::StatusOr<std::vector<Mount>> View(absl::string_view key,
                                          absl::string_view parent,
                                          const Labels& labels);
  absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key);
  // A `parent` other than the active snapshot's own gives one made without
  // a parent that parent (containerd's rebase, parallel_unpack.h).
  absl::Status Commit(absl::string_view name, absl::string_view key,
                      const Labels& labels, absl::string_view parent = "");
  absl::Status Remove(absl::string_view key);
  absl::StatusOr<Info> Stat(absl::string_view key);
  absl::StatusOr<Info> Update(const Info& info,
                              const std::vector<std::string>& fieldpaths);
  absl::Status Walk(const SnapshotFilter& filter,
                    const std::function<absl::Status(const Info&)>& fn);
  // Walk reads pages of kWalkBatch matches; one Visit looks at most at
  // kWalkBatch records.
  static constexpr size_t kWalkBatch = 256;
  // The records matching `filter` after key `after` ("": from the first),
  // in key order, to `fn` until it returns false or kWalkBatch records were
  // looked at, matching or not (the index's read lock is held meanwhile;
  // see SnapshotIndex::Visit). The service's List builds its messages from
  // them, without copies; with ~= regexps (SnapshotFilter::HasRegexps)
  // they are matched on copies after the lock is released, and once `*stop`
  // is true (may be null) the Visit ends at the next selector, before the
  // record it was matching.
  VisitEnd Visit(const SnapshotFilter& filter, absl::string_view after,
                 const std::function<bool(const InfoView&)>& fn,
                 const std::atomic<bool>* stop = nullptr) const;
  // The Infos matching `filter` with keys after `after` ("": from the
  // first), in key order, at most `limit` of them (a page of a Walk).
  std::vector<Info> Select(const SnapshotFilter& filter,
                           absl::string_view after, size_t limit) const;
  absl::StatusOr<Usage> GetUsage(absl::string_view key);
  // Whether Mounts(key) refreshes the remote layers' source (may stat and
  // re-read a file): only for a snapshot on remote layers. Otherwise Mounts
  // is a pure in-memory read.
  bool MountsRefreshes(absl::string_view key) const;
  // Moves directories no record owns aside (released ones and ones that
  // hold no data to trash, the rest to quarantine) and deletes the trash;
  // returns how many entries it deleted. An entry it cannot delete is logged
  // and kept for the next Cleanup (UndeletableCount), never an error.
  absl::StatusOr<int> Cleanup();
  // Entries the last Cleanup (or Open) could not delete or move aside.
  int64_t UndeletableCount() const;
  // For the daemon's stop, the long filesystem work of calls running now and
  // later stops at the next file or directory:
  // - the deletion of the trash (Cleanup) and of a removed snapshot's
  //   directory (Remove): what is left stays, the next start deletes it
  //   (both hold only released data; the calls succeed);
  // - a Commit's flush of its layer: Unavailable, nothing recorded, the
  //   snapshot stays active;
  // - the walk of an active snapshot's Usage: Unavailable.
  void StopLongWork() { stopping_.store(true); }
  // Whether Open found or made trash (or anything it could not account
  // for, or removals whose journal rows it left), i.e. whether a Cleanup
  // right after start has work to do.
  bool TrashAfterOpen() const { return trash_after_open_; }
  // Finishes the store's start-up writes, which Open leaves to the first
  // write or to this call (MetaStore::OpenServingReads); their status.
  absl::Status FinishOpen() { return store_->FinishOpen(); }
  // Entries in <root>/quarantine.
  absl::StatusOr<int64_t> QuarantineCount() const;
  // Liveness probe (the systemd watchdog): a read, then an empty write
  // transaction, so a writer stuck (e.g. in fsync) shows as a hang here.
  absl::Status CheckStore();
  // Snapshots per kind name, plus those labelled `remote_label`="true"
  // (for metrics).
  absl::StatusOr<std::map<std::string, int64_t>> CountByKind(
      absl::string_view remote_label);

  const SnapshotDirs& dirs() const { return dirs_; }

  ~Snapshotter();

 private:
  Snapshotter(Options options, std::unique_ptr<MetaStore> store, int lock_fd);

  // What a mutation makes durable beside its record (the WAL's fsync).
  enum class Durability {
    kRecordOnly,    // the record only (an empty directory is recreated)
    kFlushed,       // + snapshots/ (the batch's flush): a layer's path
    kInstallsData,  // + snapshots/, installing a directory holding data
  };
  // Runs `fn` in the next group commit (group_commit.h), after the call
  // check (call_check.h): a call whose client gave up while it waited for
  // the store changes nothing.
  absl::Status Mutate(const std::function<absl::Status(Transaction&)>& fn,
                      const std::function<void()>& on_rollback,
                      const std::function<void()>& on_commit,
                      Durability durability);
  absl::StatusOr<std::vector<Mount>> CreateSnapshot(Kind kind,
                                                    absl::string_view key,
                                                    absl::string_view parent,
                                                    const Labels& labels);
  // A remote layer left without files gets a record and no directory.
  absl::Status CreateRemoteLayer(absl::string_view parent,
                                 const RemoteLayer& layer);
  // One attempt: AlreadyExists when the target has a record.
  absl::Status CreateRemoteLayerOnce(absl::string_view parent,
                                     const RemoteLayer& layer);
  // Makes the missing directories (empty, not flushed: every call that
  // needs them makes them again) of the layers under committed `parent`
  // recorded without content, before a snapshot on them is created or
  // mounted: the overlay needs every lower directory.
  absl::Status MakeLayerDirs(absl::string_view parent);
  // The same for layer ids `ids`, looked at once per run if `durable`
  // (their records are committed; layers recorded earlier in the batch
  // being applied may yet roll back and their ids be handed out again, so
  // they are not remembered). One caller at a time: two would race to make
  // the same directory.
  absl::Status MakeEmptyLayerDirs(const std::vector<int64_t>& ids,
                                  bool durable = true);
  // Open's part of the recovery (store_recovery.h), then Sweep over what
  // OpenStore read (no second listing or read of the ids). Writes the
  // removals journal only, never a snapshots or labels row.
  absl::Status SweepLeftovers(const OpenedStore& opened);
  // Under the store's lock: journalled directories and unowned ones that
  // hold no data to trash, other unowned entries to quarantine; then, after
  // flushing snapshots/ without the lock, journal rows of gone directories
  // dropped. Entries that could not be moved are counted in
  // `failed`. `at_open`: the listing and ids OpenStore read, used instead of
  // reading them again (nothing else runs at Open).
  absl::Status Sweep(int& failed, const OpenedStore* at_open = nullptr);
  // Moves `path` to quarantine and logs it; false (logged) if it could not.
  bool QuarantineEntry(const std::string& path, absl::string_view why);
  // `labels` without those the remote layers drop at creation
  // (RemoteLayers::LabelsDroppedAtCreation), logged once per call by `call`
  // and `key`; copied into `copy` only when one is dropped.
  const Labels& CreationLabels(absl::string_view call, absl::string_view key,
                               const Labels& labels, Labels& copy) const;
  // A file system failure `s` on the snapshot `key` (`what`: "snapshot" or
  // "parent snapshot"): NotFound if it was removed meanwhile (its directory
  // went with it), else INTERNAL, not the NotFound of an ENOENT (containerd
  // reads that as "no such snapshot").
  absl::Status GoneOrInternal(absl::string_view what, absl::string_view key,
                              const absl::Status& s) const;
  // Mounts of a record, passed through the remote hooks (no I/O but the
  // empty lower directory of a layer awaiting a rebase).
  absl::StatusOr<std::vector<Mount>> MountsOf(const Info& info,
                                              const SnapshotRecord& record,
                                              const std::vector<Info>& parents);
  // The remote hooks' reader of the other records (the index).
  std::function<void(absl::string_view, absl::string_view,
                     const std::function<bool(const InfoView&)>&)>
  Records() const;

  Options options_;
  // The remote layers' LabelsDroppedAtCreation, asked once.
  const std::vector<ReservedLabel> dropped_at_creation_;
  SnapshotDirs dirs_;
  std::unique_ptr<MetaStore> store_;
  GroupCommitter committer_;
  // Every record, as of the last durable commit.
  SnapshotIndex index_;
  // Directories of active snapshots made ahead (after dirs_).
  SpareDirs spares_;
  const int lock_fd_;  // holds <root>/lock
  bool index_off_;
  // One Cleanup deletes at a time (they would race over the same trash).
  absl::Mutex cleanup_mu_;
  std::atomic<int64_t> undeletable_{0};
  std::atomic<bool> stopping_{false};
  bool trash_after_open_ = true;
  // MakeEmptyLayerDirs, one at a time; taken after the store's lock, never
  // before it. The layers whose directories it made or found in this run.
  absl::Mutex layer_dirs_mu_;
  absl::flat_hash_set<int64_t> present_layer_dirs_
      ABSL_GUARDED_BY(layer_dirs_mu_);
  // Ids whose Remove is deleting the directory right now.
  absl::Mutex removing_mu_;
  std::set<int64_t> removing_ ABSL_GUARDED_BY(removing_mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SNAPSHOTTER_H_
