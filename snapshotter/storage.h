// Snapshot records: the storage functions of the snapshotter, each working
// inside a caller's transaction (like containerd's snapshots/storage
// package). Errors carry containerd's codes: AlreadyExists for an existing
// key, NotFound for a missing key or parent, InvalidArgument for a parent
// that is not committed, FailedPrecondition for a wrong kind or children.
#ifndef SNAPSHOTTER_STORAGE_H_
#define SNAPSHOTTER_STORAGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// The storage view of a snapshot: its id (names its directory) and chain.
struct SnapshotRecord {
  int64_t id = 0;
  Kind kind = Kind::kUnknown;
  std::vector<int64_t> parent_ids;  // closest parent first
};

// Creates an active or view snapshot named `key` on `parent` (may be empty).
absl::StatusOr<SnapshotRecord> CreateSnapshot(Transaction& tx, Kind kind,
                                              absl::string_view key,
                                              absl::string_view parent,
                                              const Labels& labels,
                                              absl::Time now);

// Looks up a snapshot by key with its parent chain.
absl::StatusOr<SnapshotRecord> GetSnapshot(Transaction& tx,
                                           absl::string_view key);

// Info, id and stored usage of `key`.
struct InfoRecord {
  int64_t id = 0;
  Info info;
  Usage usage;
};
absl::StatusOr<InfoRecord> GetInfo(Transaction& tx, absl::string_view key);

// Updates the mutable fields of info.name: labels, selected by `fieldpaths`
// ("labels", "labels.<key>"; all labels when empty). Other paths are
// InvalidArgument. A label set to "" is removed (as in containerd); labels
// named in `owned` keep their current value whatever the update says, and
// so do those in `by_name_only` unless a "labels.<key>" path names them.
absl::StatusOr<Info> UpdateInfo(Transaction& tx, const Info& info,
                                const std::vector<std::string>& fieldpaths,
                                absl::Time now,
                                const std::vector<std::string>& owned = {},
                                const std::vector<std::string>& by_name_only = {});
// InvalidArgument for a field path of an Update other than "labels" and
// "labels.<key>" (the only mutable fields).
absl::Status CheckUpdatePaths(absl::string_view name,
                              const std::vector<std::string>& fieldpaths);
// UpdateInfo of `current`, the record of info.name the caller read in `tx`.
absl::StatusOr<Info> UpdateRecord(Transaction& tx, const InfoRecord& current, const Info& info,
                                  const std::vector<std::string>& fieldpaths, absl::Time now,
                                  const std::vector<std::string>& owned,
                                  const std::vector<std::string>& by_name_only);

// Calls fn for every snapshot record (id, info, stored usage), in key
// order; stops at the first error. Two statements for the whole table.
absl::Status WalkRecords(Transaction& tx,
                         const std::function<absl::Status(InfoRecord&)>& fn);

// The whole table in two statements, without joins or label maps:
// `record` for every record with its parent's id (0 for none; labels and
// info.parent empty), then `label` for every label of every record (by
// id; name and value valid during the call only); records come in id
// order; stops at the first error.
absl::Status ScanRecords(
    Transaction& tx,
    const std::function<absl::Status(InfoRecord&, int64_t parent_id)>& record,
    const std::function<absl::Status(int64_t id, absl::string_view name,
                                     absl::string_view value)>& label);

// Calls fn for every snapshot, in key order; stops at the first error.
absl::Status WalkInfo(Transaction& tx,
                      const std::function<absl::Status(const Info&)>& fn);

// Turns active `key` into committed `name` (same id) with `usage`; the
// commit's labels replace the active snapshot's labels, and its created and
// updated times become `now`. A non-empty `rebase_parent` gives an active
// snapshot made without a parent that committed parent (containerd's
// rebase at commit): NotFound if it is missing, FailedPrecondition if it is
// not committed; any other change of parent is InvalidArgument.
absl::StatusOr<int64_t> CommitActive(Transaction& tx, absl::string_view key,
                                     absl::string_view name,
                                     const Usage& usage, const Labels& labels,
                                     absl::Time now,
                                     absl::string_view rebase_parent = "");

// Creates a committed snapshot directly (used when a layer's content is
// pulled elsewhere). `parent` may be empty; it must be committed. `usage`
// is what its directory holds (none for a layer whose content is all in
// the guest): recovery tells a contentless record by it (store_state.h).
absl::StatusOr<int64_t> CreateCommitted(Transaction& tx, absl::string_view name,
                                        absl::string_view parent,
                                        const Labels& labels, absl::Time now,
                                        const Usage& usage = {});

// Deletes the record of `key` and journals its id as released
// (store_state.h); returns its id and kind. A snapshot with children is
// FailedPrecondition.
absl::StatusOr<SnapshotRecord> RemoveSnapshot(Transaction& tx,
                                              absl::string_view key);

// Number of snapshots per kind name ("active", "view", "committed"), plus
// "guest_pulled": committed snapshots carrying `remote_label`="true".
absl::StatusOr<std::map<std::string, int64_t>> CountSnapshots(
    Transaction& tx, absl::string_view remote_label);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_STORAGE_H_
