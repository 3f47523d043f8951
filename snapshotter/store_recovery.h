// Startup recovery: decides, before anything under the root is changed,
// whether the metadata database can be trusted with the snapshot
// directories that are there, and opens it.
//
// A database alone cannot tell "lost" from "fresh", so the root carries the
// store's identity twice: in <root>/store-id and in the database. At start:
//   - no database (missing, 0 bytes or no tables) and no snapshot
//     directories: a fresh store is created (a new identity), unless
//     store-id names a store (its records are lost: refused);
//   - no database, or an unreadable one, while snapshot directories exist:
//     refused;
//   - a database of another store (identity differs from store-id), a
//     schema-1 database under a root that already has a store-id (an old
//     copy restored), committed layers (a Commit recorded their usage)
//     whose <id>/fs is missing, or snapshot directories with ids the
//     database never handed out that cannot be one batch of creations a
//     crash interrupted: refused as stale. Such a batch (group_commit.h)
//     leaves directories at most GroupCommitter::kMaxBatch ids beyond the
//     id counter, all empty (never acknowledged, so nothing was written in
//     them) but at most one; the start sweeps them (empty to trash, the
//     other to quarantine), so losing metadata never deletes data;
//   - a database at a lower generation than <root>/store-generation names
//     for its store: refused as an old copy. Each clean stop advances the
//     generation: the store's last commit records it in the database
//     (table store_generation, outside the schema version: a database
//     without it, of an older release, is generation 0), then the close
//     writes "<store id> <generation>" to store-generation, flushed with
//     the store-open marker's removal; a stop cut between the two leaves
//     the database ahead, which is accepted. A crash advances neither. A
//     missing store-generation, or one naming another store (left by an
//     older release's reset), is ignored and rewritten at the next clean
//     stop; an unreadable one is refused. Nothing is written for it at
//     start. Not seen: a copy taken since the last clean stop (put back
//     after a crash with its -wal), or put back with the store-generation
//     of its time;
//   - a -wal damaged before transactions that were acknowledged, which
//     SQLite's recovery would drop without a word (wal_damage.h; a torn
//     last transaction is not that): refused, naming the frame;
//   - a schema newer than this binary: refused;
//   - <root>/store-open present (the daemon that had the store open did not
//     close it) and no -wal: refused as stale, since SQLite keeps the -wal
//     until a clean close and it holds what was acknowledged since the last
//     checkpoint (guest-pulled layers leave no directory that would show
//     their records lost). The store OpenStore returns makes the marker
//     when its start-up writes finish (MetaStore::OpenServingReads: at its
//     first write or FinishOpen), after the -wal is durable, and removes it
//     just before it closes (the last close deletes the -wal). The marker
//     also records that the -wal had its header on disk (the start-up
//     writes give a new -wal one first): then a -wal without one (e.g. empty,
//     as sqlite3 makes a missing one even read-only) is refused the same way.
//     The marker is replaced atomically, and until it is right the store's
//     close keeps the -wal.
// A refusal changes nothing: the root gets its mode (0700) and snapshots/
// only once the store is accepted. Only <root>/lock, which the caller
// holds through the checks, may be new, and beside a -wal SQLite's -shm
// (the -wal's index, which any reader makes or rebuilds). The daemon
// exits with kExitRefused, which the systemd unit does not restart.
// ResetStore is the explicit way out.
// After the checks, the directory of an active or view snapshot (created
// without a flush) that a power cut lost is made again, empty
// (SnapshotDirs::Recreate). A remote layer without content may have none:
// it is made when a snapshot on the layer needs it.
#ifndef SNAPSHOTTER_STORE_RECOVERY_H_
#define SNAPSHOTTER_STORE_RECOVERY_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshot_dirs.h"

namespace snapshotter {

// Exit status of a daemon that refused to start on an inconsistent store
// (EX_DATAERR); listed in the unit's RestartPreventExitStatus=.
inline constexpr int kExitRefused = 65;

// True for the errors OpenStore refuses a root with.
bool IsRefusal(const absl::Status& status);

// `status` marked as a refusal (IsRefusal), for a start refused before the
// store is opened (a root that is not the daemon's): nothing was changed,
// and a restart would be refused the same way.
absl::Status AsRefusal(absl::Status status);

// The trusted database of a root.
struct OpenedStore {
  std::unique_ptr<MetaStore> store;
  // The database was schema 1 (previous release): its trash-* entries were
  // made by a Cleanup that deleted unproven orphans, so they prove nothing.
  bool migrated_from_v1 = false;
  // No database proves what the trash-* entries found under snapshots/
  // were released from: the store was migrated from schema 1 (whose
  // trash-* prove nothing, above) or created at this start over a root
  // without a database (a previous release's root whose metadata.db was
  // lost has no store-id either). Open quarantines them.
  bool unproven_trash = false;
  // What the checks read, for the sweep of leftovers at Open to reuse (one
  // listing of snapshots/ and one read of the ids per start): the listing
  // taken before the checks, the record ids and the journalled ids.
  SnapshotDirs::Listing listing;
  std::set<int64_t> records;
  std::set<int64_t> journal;
};

// Checks the root (read-only), then makes its layout
// (SnapshotDirs::MakeLayout) and opens the database: creating a fresh
// store, migrating a schema-1 one, writing a missing store-id, making lost
// empty directories again. Refusals are
// FailedPrecondition with IsRefusal() true and a message that says what was
// found and how to recover. The root must exist (SnapshotDirs::MakeRoot)
// and be locked by the caller.
// Writes no snapshots or labels row except in a schema-1 migration
// (Snapshotter::Open reads the index beside it and relies on that).
// The store it returns serves reads; its start-up writes (the -wal's
// preallocation and header, store-open) run at its first write or
// FinishOpen, unless the open writes the store's id (into the database or
// store-id): then they are done.
absl::StatusOr<OpenedStore> OpenStore(const SnapshotDirs& dirs);

// Moves metadata.db (with -wal/-shm), store-id, store-open, store-generation
// (and their .new temp files, if a crash left them) and the whole snapshots/
// directory to quarantine/<time>-reset-store/ and leaves an empty root, so
// the next start creates a fresh store (generation 0 until its first clean
// stop). Locks the root itself (refused while a daemon runs on
// it). Returns the quarantine directory, or "" when the root holds none of
// those (or only an empty snapshots/): then nothing is moved, quarantined or
// made (no lock, snapshots/ or mode 0700). NotFound when the root does not
// exist.
absl::StatusOr<std::string> ResetStore(const SnapshotDirs& dirs);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_STORE_RECOVERY_H_
