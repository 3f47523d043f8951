// The snapshotter's Cleanup and its sweep of leftovers (at Open and on
// every Cleanup): released directories to trash, unproven ones to
// quarantine, the trash deleted outside the store's lock.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/store_state.h"

namespace snapshotter {
namespace {

// containerd takes NotFound for "no such snapshot", which a Cleanup names
// none of: a snapshots/ gone from under the daemon (opendir's ENOENT) is
// its own failure.
absl::Status NotAsNotFound(absl::Status s) {
  if (!absl::IsNotFound(s)) return s;
  return absl::InternalError(s.message());
}

}  // namespace

absl::StatusOr<int> Snapshotter::Cleanup() {
  absl::MutexLock cleanup_lock(&cleanup_mu_);
  int unmovable = 0;
  RETURN_IF_ERROR(NotAsNotFound(Sweep(unmovable)));
  // Deleting large trees happens outside the store's lock, so no RPC waits
  // behind it. What cannot be deleted stays for the next Cleanup, and so
  // does what a stop (StopLongWork) left.
  absl::StatusOr<SnapshotDirs::Listing> listed = dirs_.List();
  RETURN_IF_ERROR(NotAsNotFound(listed.status()));
  SnapshotDirs::Listing& listing = *listed;
  int removed = 0;
  int64_t failed = unmovable;
  size_t next = 0;
  for (; next < listing.trash.size() && !stopping_.load(); ++next) {
    const std::string& path = listing.trash[next];
    absl::Status rm = options_.remove_all(path, &stopping_);
    if (rm.ok()) {
      ++removed;
    } else if (absl::IsCancelled(rm) && stopping_.load()) {
      break;  // stopped part-way: this entry is left too
    } else {
      LOG(WARNING) << "cannot delete " << path << " (retried on the next "
                   << "Cleanup): " << rm.message();
      ++failed;
    }
  }
  if (next < listing.trash.size()) {
    LOG(INFO) << "stopping: " << listing.trash.size() - next << " of "
              << listing.trash.size() << " trash entries left under "
              << dirs_.SnapshotsDir() << " for the next start to delete";
  }
  undeletable_.store(failed);
  return removed;
}

absl::Status Snapshotter::SweepLeftovers(const OpenedStore& opened) {
  absl::MutexLock cleanup_lock(&cleanup_mu_);
  const SnapshotDirs::Listing& listing = opened.listing;
  bool unowned = !std::includes(opened.records.begin(), opened.records.end(),
                                listing.ids.begin(), listing.ids.end());
  // Spares a crash left (spare_dirs.h): empty ones are removed here, with
  // no store write, so they do not cost the start its early reads; one that
  // is not a plain directory of this filesystem holding nothing was not
  // made by the daemon and is quarantined below, and one that cannot be
  // removed goes to trash (deleted, or counted and retried, by Cleanup).
  std::vector<std::string> odd_spares, stuck_spares;
  for (const std::string& path : listing.spares) {
    if (!SnapshotDirs::IsEmptySpare(path)) {
      odd_spares.push_back(path);
    } else if (absl::Status rm = options_.remove_all(path, nullptr);
               !rm.ok()) {
      LOG(WARNING) << "cannot remove spare directory " << path
                   << " (moved to trash): " << rm.message();
      stuck_spares.push_back(path);
    }
  }
  if (listing.temps.empty() && listing.others.empty() && odd_spares.empty() &&
      stuck_spares.empty() && !unowned &&
      !(opened.unproven_trash && !listing.trash.empty())) {
    // Nothing to move (the usual start; a journalled id with a directory
    // is unowned): nothing is written, so reads are served before the
    // store's start-up writes finish (MetaStore::OpenServingReads). The
    // journal rows of removals whose directories are gone, as between a
    // Remove and the next Cleanup, are forgotten by the Cleanup after
    // READY.
    undeletable_.store(0);
    trash_after_open_ = !listing.trash.empty() || !opened.journal.empty();
    return absl::OkStatus();
  }
  // The repairs below assume the store's start-up finished.
  RETURN_IF_ERROR(store_->FinishOpen());
  int failed = 0;
  // A new-* directory is a creation that was never acknowledged: nothing
  // runs yet, so these are all interrupted ones; with them, the empty
  // spares that could not be removed above.
  std::vector<std::string> to_trash = listing.temps;
  to_trash.insert(to_trash.end(), stuck_spares.begin(), stuck_spares.end());
  for (const std::string& path : to_trash) {
    if (auto moved = dirs_.MoveToTrash(path); !moved.ok()) {
      LOG(WARNING) << "cannot move an interrupted creation or an empty spare "
                   << "aside: " << moved.status().message();
      ++failed;
    }
  }
  for (const std::string& path : odd_spares) {
    if (!QuarantineEntry(path, "named as a spare, but not an empty one")) {
      ++failed;
    }
  }
  // The previous release's Cleanup moved unproven orphans to trash-*; and
  // a store created over a root without a database has nothing that proves
  // what its trash-* held (a previous release's root whose metadata.db was
  // lost has no store-id, so its start is not refused).
  if (opened.unproven_trash) {
    for (const std::string& path : listing.trash) {
      if (!QuarantineEntry(path, opened.migrated_from_v1
                                     ? "trash of the previous release"
                                     : "trash found without a database")) {
        ++failed;
      }
    }
  }
  absl::Status s = Sweep(failed, &opened);
  undeletable_.store(failed);
  // Every directory not owned by a record went to trash or quarantine.
  // (Records without a directory, guest-pulled layers, leave nothing.)
  trash_after_open_ = !listing.trash.empty() || !listing.temps.empty() ||
                      !listing.others.empty() || !odd_spares.empty() ||
                      !stuck_spares.empty() || unowned;
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

absl::Status Snapshotter::Sweep(int& failed, const OpenedStore* at_open) {
  // Under the write lock no creation is half-way (Install runs inside its
  // transaction), so every id directory is a record's or nobody's.
  bool trashed = false;
  std::vector<int64_t> forgotten;
  RETURN_IF_ERROR(store_->Update([&](Transaction& tx) -> absl::Status {
    std::set<int64_t> read_records, read_journal, removing;
    SnapshotDirs::Listing read_listing;
    const std::set<int64_t>* records = &read_records;
    const std::set<int64_t>* journal = &read_journal;
    const SnapshotDirs::Listing* listing = &read_listing;
    if (at_open != nullptr) {
      // Nothing has run since OpenStore read these (no RPC, no removal).
      records = &at_open->records;
      journal = &at_open->journal;
      listing = &at_open->listing;
    } else {
      ASSIGN_OR_RETURN(read_records, RecordIds(tx));
      ASSIGN_OR_RETURN(read_journal, JournalledIds(tx));
      // Removals in progress are read before the listing: one that finishes
      // in between has deleted its directory, so the listing cannot show it.
      {
        absl::MutexLock lock(&removing_mu_);
        removing = removing_;
      }
      ASSIGN_OR_RETURN(read_listing, dirs_.List());
    }
    std::set<int64_t> still_there;
    trashed = false;
    forgotten.clear();
    for (int64_t id : listing->ids) {
      if (records->count(id) || removing.count(id)) continue;
      std::string path = dirs_.SnapshotPath(id);
      if (journal->count(id)) {
        auto moved = dirs_.MoveToTrash(path);
        if (!moved.ok() && absl::IsNotFound(moved.status())) {
          continue;  // already gone: the journal entry is forgotten below
        }
        if (!moved.ok()) {
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
                    << ": an empty directory no record owns (a creation that "
                       "never committed, or made for a layer removed "
                       "meanwhile)";
          trashed = true;
        }
      } else if (!QuarantineEntry(path, "no record owns it")) {
        ++failed;
      }
    }
    for (const std::string& path : listing->others) {
      if (!QuarantineEntry(path, "not a snapshot directory")) ++failed;
    }
    for (int64_t id : *journal) {
      if (!still_there.count(id) && !removing.count(id)) forgotten.push_back(id);
    }
    return absl::OkStatus();
  }));
  if (!trashed && forgotten.empty()) return absl::OkStatus();
  // The renames, and the deletions of the directories whose ids the journal
  // forgets, must be durable before it forgets them. The flush waits for
  // the filesystem (others' writeback too), so it runs without the store's
  // lock; an id stays journalled until then (ids are never reused, and
  // Cleanups take turns), and a failed flush leaves it for the next one.
  RETURN_IF_ERROR(SyncDir(dirs_.SnapshotsDir()));
  if (forgotten.empty()) return absl::OkStatus();
  return store_->Update([&](Transaction& tx) -> absl::Status {
    for (int64_t id : forgotten) RETURN_IF_ERROR(ForgetRemoval(tx, id));
    return absl::OkStatus();
  });
}

int64_t Snapshotter::UndeletableCount() const { return undeletable_.load(); }

absl::StatusOr<int64_t> Snapshotter::QuarantineCount() const {
  return dirs_.QuarantineCount();
}

}  // namespace snapshotter
