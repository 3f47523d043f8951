// Snapshot record storage over SQLite.
#include "snapshotter/storage.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "snapshotter/store_state.h"

namespace snapshotter {
namespace {

int64_t ToNs(absl::Time t) { return absl::ToUnixNanos(t); }
absl::Time FromNs(int64_t ns) { return absl::FromUnixNanos(ns); }

absl::Status NotFound(absl::string_view key) {
  return absl::NotFoundError(absl::StrCat("snapshot ", key, ": not found"));
}

// Row of the snapshots table.
struct Row {
  int64_t id = 0;
  int64_t parent_id = 0;  // 0: none
  Kind kind = Kind::kUnknown;
  std::string key;
};

absl::StatusOr<Row> FindRow(Transaction& tx, absl::string_view key) {
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare(
          "SELECT id, IFNULL(parent_id, 0), kind FROM snapshots WHERE key = ?"));
  st.Bind(1, key);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound(key);
  Row r;
  r.id = st.ColumnInt64(0);
  r.parent_id = st.ColumnInt64(1);
  r.kind = static_cast<Kind>(st.ColumnInt64(2));
  r.key = std::string(key);
  return r;
}

// The ids of `parent_id` and its ancestors, closest first, in one query.
absl::StatusOr<std::vector<int64_t>> ParentChain(Transaction& tx,
                                                 int64_t parent_id) {
  std::vector<int64_t> ids;
  if (parent_id == 0) return ids;
  // The depth bound guards against a corrupt cycle.
  constexpr int64_t kMaxDepth = 1 << 16;
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("WITH RECURSIVE chain(id, parent_id, depth) AS ("
                 " SELECT id, IFNULL(parent_id, 0), 0 FROM snapshots"
                 " WHERE id = ?1"
                 " UNION ALL SELECT s.id, IFNULL(s.parent_id, 0), c.depth + 1"
                 " FROM snapshots s JOIN chain c ON s.id = c.parent_id"
                 " WHERE c.depth < ?2)"
                 " SELECT id, parent_id FROM chain ORDER BY depth"));
  st.Bind(1, parent_id).Bind(2, kMaxDepth);
  int64_t next = parent_id;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ids.push_back(st.ColumnInt64(0));
    next = st.ColumnInt64(1);
  }
  if (ids.empty()) {
    return absl::DataLossError(absl::StrCat(
        "metadata database: snapshot id ", parent_id, " is missing"));
  }
  if (next != 0) {
    return absl::DataLossError(
        ids.size() > static_cast<size_t>(kMaxDepth)
            ? std::string("metadata database: parent chain too deep")
            : absl::StrCat("metadata database: snapshot id ", next,
                           " is missing"));
  }
  return ids;
}

// `fresh`: the snapshot has no labels yet (skips the DELETE).
absl::Status WriteLabels(Transaction& tx, int64_t id, const Labels& labels,
                         bool fresh = false) {
  if (!fresh) {
    ASSIGN_OR_RETURN(Statement del,
                     tx.Prepare("DELETE FROM labels WHERE snapshot_id = ?"));
    RETURN_IF_ERROR(del.Bind(1, id).Run());
  }
  for (const auto& [k, v] : labels) {
    if (v.empty()) continue;  // containerd's storage does not keep them
    ASSIGN_OR_RETURN(
        Statement ins,
        tx.Prepare(
            "INSERT INTO labels(snapshot_id, name, value) VALUES(?, ?, ?)"));
    RETURN_IF_ERROR(ins.Bind(1, id).Bind(2, k).Bind(3, v).Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> ReadLabels(Transaction& tx, int64_t id) {
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("SELECT name, value FROM labels WHERE snapshot_id = ?"));
  st.Bind(1, id);
  Labels labels;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    labels[st.ColumnText(0)] = st.ColumnText(1);
  }
  return labels;
}

// Resolves a parent key to a committed snapshot's row id (0 for none).
absl::StatusOr<int64_t> CommittedParentId(Transaction& tx,
                                          absl::string_view parent) {
  if (parent.empty()) return 0;
  auto row = FindRow(tx, parent);
  if (!row.ok()) {
    if (absl::IsNotFound(row.status())) {
      return absl::NotFoundError(
          absl::StrCat("parent snapshot ", parent, " does not exist"));
    }
    return row.status();
  }
  if (row->kind != Kind::kCommitted) {
    return absl::InvalidArgumentError(
        absl::StrCat("parent ", parent, " is not committed (it is ",
                     KindName(row->kind), ")"));
  }
  return row->id;
}

absl::StatusOr<int64_t> InsertRow(Transaction& tx, Kind kind,
                                  absl::string_view key, int64_t parent_id,
                                  const Labels& labels, absl::Time now,
                                  const Usage& usage) {
  if (auto existing = FindRow(tx, key); existing.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", key, ": already exists"));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare(
          "INSERT INTO snapshots(key, parent_id, kind, created_ns, updated_ns, "
          "size, inodes) VALUES(?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, key);
  if (parent_id == 0) {
    st.BindNull(2);
  } else {
    st.Bind(2, parent_id);
  }
  st.Bind(3, static_cast<int64_t>(kind)).Bind(4, ToNs(now)).Bind(5, ToNs(now));
  st.Bind(6, usage.size).Bind(7, usage.inodes);
  RETURN_IF_ERROR(st.Run());
  int64_t id = tx.LastInsertId();
  RETURN_IF_ERROR(WriteLabels(tx, id, labels, /*fresh=*/true));
  return id;
}

}  // namespace

absl::StatusOr<SnapshotRecord> CreateSnapshot(Transaction& tx, Kind kind,
                                              absl::string_view key,
                                              absl::string_view parent,
                                              const Labels& labels,
                                              absl::Time now) {
  if (kind != Kind::kActive && kind != Kind::kView) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot type ", KindName(kind),
                     " invalid; only active and view can be created"));
  }
  ASSIGN_OR_RETURN(int64_t parent_id, CommittedParentId(tx, parent));
  ASSIGN_OR_RETURN(int64_t id,
                   InsertRow(tx, kind, key, parent_id, labels, now, Usage{}));
  ASSIGN_OR_RETURN(std::vector<int64_t> chain, ParentChain(tx, parent_id));
  return SnapshotRecord{id, kind, std::move(chain)};
}

absl::StatusOr<SnapshotRecord> GetSnapshot(Transaction& tx,
                                           absl::string_view key) {
  ASSIGN_OR_RETURN(Row row, FindRow(tx, key));
  ASSIGN_OR_RETURN(std::vector<int64_t> chain, ParentChain(tx, row.parent_id));
  return SnapshotRecord{row.id, row.kind, std::move(chain)};
}

namespace {

// The columns RecordOfRow reads, for a WHERE or ORDER BY to follow.
constexpr const char* kRecordSelect =
    "SELECT s.id, s.key, s.kind, s.created_ns, s.updated_ns, s.size, "
    "s.inodes, IFNULL(p.key, '') FROM snapshots s "
    "LEFT JOIN snapshots p ON p.id = s.parent_id";

// A snapshot record without parent and labels from the first 7 columns of
// kRecordSelect (or of a query with the same first columns).
InfoRecord RecordColumns(const Statement& st) {
  InfoRecord r;
  r.id = st.ColumnInt64(0);
  r.info.name = st.ColumnText(1);
  r.info.kind = static_cast<Kind>(st.ColumnInt64(2));
  r.info.created = FromNs(st.ColumnInt64(3));
  r.info.updated = FromNs(st.ColumnInt64(4));
  r.usage.size = st.ColumnInt64(5);
  r.usage.inodes = st.ColumnInt64(6);
  return r;
}

// A snapshot record (no labels) from a row of kRecordSelect.
InfoRecord RecordOfRow(const Statement& st) {
  InfoRecord r = RecordColumns(st);
  r.info.parent = st.ColumnText(7);
  return r;
}

}  // namespace

absl::StatusOr<InfoRecord> GetInfo(Transaction& tx, absl::string_view key) {
  ASSIGN_OR_RETURN(Statement st,
                   tx.Prepare(absl::StrCat(kRecordSelect, " WHERE s.key = ?")));
  st.Bind(1, key);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound(key);
  InfoRecord r = RecordOfRow(st);
  ASSIGN_OR_RETURN(r.info.labels, ReadLabels(tx, r.id));
  return r;
}

absl::StatusOr<Info> UpdateInfo(Transaction& tx, const Info& info,
                                const std::vector<std::string>& fieldpaths,
                                absl::Time now,
                                const std::vector<std::string>& owned,
                                const std::vector<std::string>& by_name_only) {
  ASSIGN_OR_RETURN(InfoRecord current, GetInfo(tx, info.name));
  return UpdateRecord(tx, current, info, fieldpaths, now, owned, by_name_only);
}

absl::Status CheckUpdatePaths(absl::string_view name,
                              const std::vector<std::string>& fieldpaths) {
  for (const std::string& path : fieldpaths) {
    if (path == "labels" || absl::StartsWith(path, "labels.")) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot update \"", path, "\" field on snapshot ", name,
        ": only labels are mutable"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Info> UpdateRecord(Transaction& tx, const InfoRecord& current, const Info& info,
                                  const std::vector<std::string>& fieldpaths, absl::Time now,
                                  const std::vector<std::string>& owned,
                                  const std::vector<std::string>& by_name_only) {
  RETURN_IF_ERROR(CheckUpdatePaths(info.name, fieldpaths));
  Info updated = current.info;
  auto keep_current = [&](const std::string& key) {
    auto it = current.info.labels.find(key);
    if (it == current.info.labels.end()) {
      updated.labels.erase(key);
    } else {
      updated.labels[key] = it->second;
    }
  };
  // All labels at once: those set by name only stay as they are (or as a
  // "labels.<key>" path before this one set them).
  auto replace_all = [&] {
    Labels kept;
    for (const std::string& key : by_name_only) {
      if (auto it = updated.labels.find(key); it != updated.labels.end()) kept.insert(*it);
    }
    updated.labels = info.labels;
    for (const std::string& key : by_name_only) updated.labels.erase(key);
    updated.labels.insert(kept.begin(), kept.end());
  };
  if (fieldpaths.empty()) {
    replace_all();
  } else {
    for (const std::string& path : fieldpaths) {
      if (absl::StartsWith(path, "labels.")) {
        std::string label = path.substr(strlen("labels."));
        auto it = info.labels.find(label);
        if (it == info.labels.end()) {
          updated.labels.erase(label);
        } else {
          updated.labels[label] = it->second;
        }
      } else {  // "labels" (CheckUpdatePaths)
        replace_all();
      }
    }
  }
  for (const std::string& key : owned) keep_current(key);
  for (auto it = updated.labels.begin(); it != updated.labels.end();) {
    it = it->second.empty() ? updated.labels.erase(it) : std::next(it);
  }
  updated.updated = now;
  RETURN_IF_ERROR(WriteLabels(tx, current.id, updated.labels));
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("UPDATE snapshots SET updated_ns = ? WHERE id = ?"));
  RETURN_IF_ERROR(st.Bind(1, ToNs(now)).Bind(2, current.id).Run());
  return updated;
}

absl::Status WalkRecords(
    Transaction& tx, const std::function<absl::Status(InfoRecord&)>& fn) {
  // Two queries for the whole table (not two per snapshot): labels first,
  // then the snapshots joined with their parents' keys.
  std::map<int64_t, Labels> labels;
  ASSIGN_OR_RETURN(Statement lst,
                   tx.Prepare("SELECT snapshot_id, name, value FROM labels"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, lst.Step());
    if (!row) break;
    labels[lst.ColumnInt64(0)][lst.ColumnText(1)] = lst.ColumnText(2);
  }
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare(absl::StrCat(kRecordSelect, " ORDER BY s.key")));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    InfoRecord r = RecordOfRow(st);
    if (auto it = labels.find(r.id); it != labels.end()) {
      r.info.labels = std::move(it->second);
    }
    RETURN_IF_ERROR(fn(r));
  }
  return absl::OkStatus();
}

absl::Status ScanRecords(
    Transaction& tx,
    const std::function<absl::Status(InfoRecord&, int64_t parent_id)>& record,
    const std::function<absl::Status(int64_t id, absl::string_view name,
                                     absl::string_view value)>& label) {
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("SELECT id, key, kind, created_ns, updated_ns, size, inodes, "
                 "IFNULL(parent_id, 0) FROM snapshots ORDER BY id"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    InfoRecord r = RecordColumns(st);
    RETURN_IF_ERROR(record(r, st.ColumnInt64(7)));
  }
  ASSIGN_OR_RETURN(Statement lst,
                   tx.Prepare("SELECT snapshot_id, name, value FROM labels"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, lst.Step());
    if (!row) break;
    RETURN_IF_ERROR(label(lst.ColumnInt64(0), lst.ColumnView(1),
                          lst.ColumnView(2)));
  }
  return absl::OkStatus();
}

absl::Status WalkInfo(Transaction& tx,
                      const std::function<absl::Status(const Info&)>& fn) {
  return WalkRecords(tx, [&](InfoRecord& r) { return fn(r.info); });
}

absl::StatusOr<int64_t> CommitActive(Transaction& tx, absl::string_view key,
                                     absl::string_view name,
                                     const Usage& usage, const Labels& labels,
                                     absl::Time now,
                                     absl::string_view rebase_parent) {
  if (auto existing = FindRow(tx, name); existing.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", name, ": already exists"));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  ASSIGN_OR_RETURN(Row row, FindRow(tx, key));
  if (row.kind != Kind::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", key, " is ", KindName(row.kind),
                     ", not active: only active snapshots can be committed"));
  }
  // As containerd's CommitActive: a change of an existing parent is
  // InvalidArgument, then a missing parent NotFound and one that is not
  // committed FailedPrecondition (CreateSnapshot says InvalidArgument).
  // The snapshot being committed is a missing parent there: it deletes
  // `key` before it looks the parent up.
  int64_t parent_id = row.parent_id;
  if (!rebase_parent.empty() && row.parent_id != 0) {
    absl::StatusOr<Row> named = FindRow(tx, rebase_parent);
    if (!named.ok() && !absl::IsNotFound(named.status())) return named.status();
    if (!named.ok() || named->id != row.parent_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot change the parent of active snapshot ", key,
          " at commit: only one made without a parent can be given one"));
    }
  } else if (rebase_parent == key) {
    return absl::NotFoundError(absl::StrCat(
        "parent snapshot ", key,
        " does not exist: it is the active snapshot this commit replaces"));
  } else if (!rebase_parent.empty()) {
    absl::StatusOr<int64_t> rebased = CommittedParentId(tx, rebase_parent);
    if (absl::IsInvalidArgument(rebased.status())) {
      return absl::FailedPreconditionError(rebased.status().message());
    }
    RETURN_IF_ERROR(rebased.status());
    parent_id = *rebased;
  }
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("UPDATE snapshots SET key = ?, kind = ?, created_ns = ?, "
                 "updated_ns = ?, size = ?, inodes = ?, parent_id = ? "
                 "WHERE id = ?"));
  // A committed snapshot is created at commit time (as in containerd).
  st.Bind(1, name)
      .Bind(2, static_cast<int64_t>(Kind::kCommitted))
      .Bind(3, ToNs(now))
      .Bind(4, ToNs(now))
      .Bind(5, usage.size)
      .Bind(6, usage.inodes)
      .Bind(8, row.id);
  if (parent_id == 0) {
    st.BindNull(7);
  } else {
    st.Bind(7, parent_id);
  }
  RETURN_IF_ERROR(st.Run());
  RETURN_IF_ERROR(WriteLabels(tx, row.id, labels));
  return row.id;
}

absl::StatusOr<int64_t> CreateCommitted(Transaction& tx, absl::string_view name,
                                        absl::string_view parent,
                                        const Labels& labels, absl::Time now,
                                        const Usage& usage) {
  ASSIGN_OR_RETURN(int64_t parent_id, CommittedParentId(tx, parent));
  return InsertRow(tx, Kind::kCommitted, name, parent_id, labels, now, usage);
}

absl::StatusOr<SnapshotRecord> RemoveSnapshot(Transaction& tx,
                                              absl::string_view key) {
  ASSIGN_OR_RETURN(Row row, FindRow(tx, key));
  ASSIGN_OR_RETURN(
      Statement children,
      tx.Prepare("SELECT EXISTS(SELECT 1 FROM snapshots WHERE parent_id = ?)"));
  children.Bind(1, row.id);
  RETURN_IF_ERROR(children.Step().status());
  if (children.ColumnInt64(0) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove snapshot ", key, " with child"));
  }
  ASSIGN_OR_RETURN(Statement del,
                   tx.Prepare("DELETE FROM snapshots WHERE id = ?"));
  RETURN_IF_ERROR(del.Bind(1, row.id).Run());
  // In the same transaction: the proof that its directory may be deleted.
  RETURN_IF_ERROR(JournalRemoval(tx, row.id));
  ASSIGN_OR_RETURN(std::vector<int64_t> chain, ParentChain(tx, row.parent_id));
  return SnapshotRecord{row.id, row.kind, std::move(chain)};
}

absl::StatusOr<std::map<std::string, int64_t>> CountSnapshots(
    Transaction& tx, absl::string_view remote_label) {
  std::map<std::string, int64_t> counts = {
      {"active", 0}, {"view", 0}, {"committed", 0}, {"guest_pulled", 0}};
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("SELECT kind, COUNT(*) FROM snapshots GROUP BY kind"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Kind kind = static_cast<Kind>(st.ColumnInt64(0));
    if (kind != Kind::kUnknown) {
      counts[std::string(KindName(kind))] = st.ColumnInt64(1);
    }
  }
  ASSIGN_OR_RETURN(
      Statement remote,
      tx.Prepare(
          "SELECT COUNT(*) FROM labels WHERE name = ? AND value = 'true'"));
  remote.Bind(1, remote_label);
  RETURN_IF_ERROR(remote.Step().status());
  counts["guest_pulled"] = remote.ColumnInt64(0);
  return counts;
}

}  // namespace snapshotter
