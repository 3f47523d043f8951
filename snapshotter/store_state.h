// The store's own bookkeeping in the metadata database (schema 2), beside
// the snapshot records of storage.h: its identity, the id counter and the
// removal journal. Like storage.h, every function works inside a caller's
// transaction.
//
// The removal journal is what lets a directory be deleted: Remove deletes a
// record and journals its id in one transaction, so a directory whose id is
// journalled was provably released by this database. Ids are never reused
// (AUTOINCREMENT), so a journalled id can never name a live snapshot.
#ifndef SNAPSHOTTER_STORE_STATE_H_
#define SNAPSHOTTER_STORE_STATE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// The store id recorded in the database; "" if none was recorded yet.
absl::StatusOr<std::string> ReadStoreId(Transaction& tx);
absl::Status WriteStoreId(Transaction& tx, absl::string_view store_id);

// The store's generation (store_recovery.h): how many clean stops it had
// since a release that counts them; 0 for a database without it. Kept in
// a table of its own, store_generation, made by the first AdvanceGeneration
// (not part of the schema version: a release without it ignores it).
absl::StatusOr<int64_t> ReadGeneration(Transaction& tx);
// Records the generation after ReadGeneration's; returns it.
absl::StatusOr<int64_t> AdvanceGeneration(Transaction& tx);

// The highest snapshot id ever handed out (0 for none).
absl::StatusOr<int64_t> IdCounter(Transaction& tx);

// Ids of every snapshot record.
absl::StatusOr<std::set<int64_t>> RecordIds(Transaction& tx);

// A record whose directory holds no acknowledged content: an active or view
// snapshot (what is written in it is made durable by its Commit), or a
// committed one created without content (CreateCommitted of a remote
// layer left empty; one holding files, e.g. etc/passwd, records their
// usage, and a Commit always records at least the inode of fs/).
struct ContentlessRecord {
  Kind kind = Kind::kUnknown;
  int64_t parent_id = 0;  // 0: none
};
absl::StatusOr<std::map<int64_t, ContentlessRecord>> ContentlessRecords(
    Transaction& tx);

// Journals `id` as released (its record was deleted in this transaction).
absl::Status JournalRemoval(Transaction& tx, int64_t id);
// Ids released whose directories may still exist.
absl::StatusOr<std::set<int64_t>> JournalledIds(Transaction& tx);
// Drops `id` from the journal once its directory is gone.
absl::Status ForgetRemoval(Transaction& tx, int64_t id);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_STORE_STATE_H_
