// Snapshot record storage over SQLite.
#include "snapshotter/storage.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  auto st = tx.Prepare(
      "SELECT id, IFNULL(parent_id, 0), kind FROM snapshots WHERE key = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, key);
  auto row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return NotFound(key);
  Row r;
  r.id = st->ColumnInt64(0);
  r.parent_id = st->ColumnInt64(1);
  r.kind = static_cast<Kind>(st->ColumnInt64(2));
  r.key = std::string(key);
  return r;
}

absl::StatusOr<Row> FindRowById(Transaction& tx, int64_t id) {
  auto st = tx.Prepare(
      "SELECT IFNULL(parent_id, 0), kind, key FROM snapshots WHERE id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  auto row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::DataLossError(
        absl::StrCat("metadata database: snapshot id ", id, " is missing"));
  }
  Row r;
  r.id = id;
  r.parent_id = st->ColumnInt64(0);
  r.kind = static_cast<Kind>(st->ColumnInt64(1));
  r.key = st->ColumnText(2);
  return r;
}

absl::StatusOr<std::vector<int64_t>> ParentChain(Transaction& tx,
                                                 int64_t parent_id) {
  std::vector<int64_t> ids;
  // A chain is at most as long as the table; the bound guards against a
  // corrupt cycle.
  constexpr int kMaxDepth = 1 << 16;
  while (parent_id != 0) {
    if (ids.size() >= kMaxDepth) {
      return absl::DataLossError("metadata database: parent chain too deep");
    }
    ids.push_back(parent_id);
    auto row = FindRowById(tx, parent_id);
    if (!row.ok()) return row.status();
    parent_id = row->parent_id;
  }
  return ids;
}

absl::Status WriteLabels(Transaction& tx, int64_t id, const Labels& labels) {
  auto del = tx.Prepare("DELETE FROM labels WHERE snapshot_id = ?");
  if (!del.ok()) return del.status();
  if (absl::Status s = del->Bind(1, id).Run(); !s.ok()) return s;
  for (const auto& [k, v] : labels) {
    if (v.empty()) continue;  // containerd's storage does not keep them
    auto ins = tx.Prepare(
        "INSERT INTO labels(snapshot_id, name, value) VALUES(?, ?, ?)");
    if (!ins.ok()) return ins.status();
    if (absl::Status s = ins->Bind(1, id).Bind(2, k).Bind(3, v).Run();
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Labels> ReadLabels(Transaction& tx, int64_t id) {
  auto st =
      tx.Prepare("SELECT name, value FROM labels WHERE snapshot_id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  Labels labels;
  while (true) {
    auto row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    labels[st->ColumnText(0)] = st->ColumnText(1);
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
                                  const Labels& labels, absl::Time now) {
  if (auto existing = FindRow(tx, key); existing.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", key, ": already exists"));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  auto st = tx.Prepare(
      "INSERT INTO snapshots(key, parent_id, kind, created_ns, updated_ns) "
      "VALUES(?, ?, ?, ?, ?)");
  if (!st.ok()) return st.status();
  st->Bind(1, key);
  if (parent_id == 0) {
    st->BindNull(2);
  } else {
    st->Bind(2, parent_id);
  }
  st->Bind(3, static_cast<int64_t>(kind)).Bind(4, ToNs(now)).Bind(5, ToNs(now));
  if (absl::Status s = st->Run(); !s.ok()) return s;
  int64_t id = tx.LastInsertId();
  if (absl::Status s = WriteLabels(tx, id, labels); !s.ok()) return s;
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
  auto parent_id = CommittedParentId(tx, parent);
  if (!parent_id.ok()) return parent_id.status();
  auto id = InsertRow(tx, kind, key, *parent_id, labels, now);
  if (!id.ok()) return id.status();
  auto chain = ParentChain(tx, *parent_id);
  if (!chain.ok()) return chain.status();
  return SnapshotRecord{*id, kind, *std::move(chain)};
}

absl::StatusOr<SnapshotRecord> GetSnapshot(Transaction& tx,
                                           absl::string_view key) {
  auto row = FindRow(tx, key);
  if (!row.ok()) return row.status();
  auto chain = ParentChain(tx, row->parent_id);
  if (!chain.ok()) return chain.status();
  return SnapshotRecord{row->id, row->kind, *std::move(chain)};
}

absl::StatusOr<InfoRecord> GetInfo(Transaction& tx, absl::string_view key) {
  auto st = tx.Prepare(
      "SELECT s.id, s.kind, s.created_ns, s.updated_ns, s.size, s.inodes, "
      "IFNULL(p.key, '') FROM snapshots s "
      "LEFT JOIN snapshots p ON p.id = s.parent_id WHERE s.key = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, key);
  auto row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return NotFound(key);
  InfoRecord r;
  r.id = st->ColumnInt64(0);
  r.info.name = std::string(key);
  r.info.kind = static_cast<Kind>(st->ColumnInt64(1));
  r.info.created = FromNs(st->ColumnInt64(2));
  r.info.updated = FromNs(st->ColumnInt64(3));
  r.usage.size = st->ColumnInt64(4);
  r.usage.inodes = st->ColumnInt64(5);
  r.info.parent = st->ColumnText(6);
  auto labels = ReadLabels(tx, r.id);
  if (!labels.ok()) return labels.status();
  r.info.labels = *std::move(labels);
  return r;
}

absl::StatusOr<Info> UpdateInfo(Transaction& tx, const Info& info,
                                const std::vector<std::string>& fieldpaths,
                                absl::Time now,
                                const std::vector<std::string>& owned) {
  auto current = GetInfo(tx, info.name);
  if (!current.ok()) return current.status();
  Info updated = current->info;
  if (fieldpaths.empty()) {
    updated.labels = info.labels;
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
      } else if (path == "labels") {
        updated.labels = info.labels;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot update \"", path, "\" field on snapshot ", info.name,
            ": only labels are mutable"));
      }
    }
  }
  for (const std::string& key : owned) {
    auto it = current->info.labels.find(key);
    if (it == current->info.labels.end()) {
      updated.labels.erase(key);
    } else {
      updated.labels[key] = it->second;
    }
  }
  for (auto it = updated.labels.begin(); it != updated.labels.end();) {
    it = it->second.empty() ? updated.labels.erase(it) : std::next(it);
  }
  updated.updated = now;
  if (absl::Status s = WriteLabels(tx, current->id, updated.labels); !s.ok()) {
    return s;
  }
  auto st = tx.Prepare("UPDATE snapshots SET updated_ns = ? WHERE id = ?");
  if (!st.ok()) return st.status();
  if (absl::Status s = st->Bind(1, ToNs(now)).Bind(2, current->id).Run();
      !s.ok()) {
    return s;
  }
  return updated;
}

absl::Status WalkInfo(Transaction& tx,
                      const std::function<absl::Status(const Info&)>& fn) {
  // Two queries for the whole table (not two per snapshot): labels first,
  // then the snapshots joined with their parents' keys.
  std::map<int64_t, Labels> labels;
  auto lst = tx.Prepare("SELECT snapshot_id, name, value FROM labels");
  if (!lst.ok()) return lst.status();
  while (true) {
    auto row = lst->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    labels[lst->ColumnInt64(0)][lst->ColumnText(1)] = lst->ColumnText(2);
  }
  auto st = tx.Prepare(
      "SELECT s.id, s.key, s.kind, s.created_ns, s.updated_ns, "
      "IFNULL(p.key, '') FROM snapshots s "
      "LEFT JOIN snapshots p ON p.id = s.parent_id ORDER BY s.key");
  if (!st.ok()) return st.status();
  while (true) {
    auto row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Info info;
    int64_t id = st->ColumnInt64(0);
    info.name = st->ColumnText(1);
    info.kind = static_cast<Kind>(st->ColumnInt64(2));
    info.created = FromNs(st->ColumnInt64(3));
    info.updated = FromNs(st->ColumnInt64(4));
    info.parent = st->ColumnText(5);
    if (auto it = labels.find(id); it != labels.end()) {
      info.labels = std::move(it->second);
    }
    if (absl::Status s = fn(info); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CommitActive(Transaction& tx, absl::string_view key,
                                     absl::string_view name,
                                     const Usage& usage, const Labels& labels,
                                     absl::Time now) {
  if (auto existing = FindRow(tx, name); existing.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("snapshot ", name, ": already exists"));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  auto row = FindRow(tx, key);
  if (!row.ok()) return row.status();
  if (row->kind != Kind::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", key, " is ", KindName(row->kind),
                     ", not active: only active snapshots can be committed"));
  }
  auto st = tx.Prepare(
      "UPDATE snapshots SET key = ?, kind = ?, created_ns = ?, updated_ns = ?, "
      "size = ?, inodes = ? WHERE id = ?");
  if (!st.ok()) return st.status();
  // A committed snapshot is created at commit time (as in containerd).
  st->Bind(1, name)
      .Bind(2, static_cast<int64_t>(Kind::kCommitted))
      .Bind(3, ToNs(now))
      .Bind(4, ToNs(now))
      .Bind(5, usage.size)
      .Bind(6, usage.inodes)
      .Bind(7, row->id);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  if (absl::Status s = WriteLabels(tx, row->id, labels); !s.ok()) return s;
  return row->id;
}

absl::StatusOr<int64_t> CreateCommitted(Transaction& tx, absl::string_view name,
                                        absl::string_view parent,
                                        const Labels& labels, absl::Time now) {
  auto parent_id = CommittedParentId(tx, parent);
  if (!parent_id.ok()) return parent_id.status();
  return InsertRow(tx, Kind::kCommitted, name, *parent_id, labels, now);
}

absl::StatusOr<SnapshotRecord> RemoveSnapshot(Transaction& tx,
                                              absl::string_view key) {
  auto row = FindRow(tx, key);
  if (!row.ok()) return row.status();
  auto children =
      tx.Prepare("SELECT COUNT(*) FROM snapshots WHERE parent_id = ?");
  if (!children.ok()) return children.status();
  children->Bind(1, row->id);
  if (auto r = children->Step(); !r.ok()) return r.status();
  if (children->ColumnInt64(0) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove snapshot ", key, " with child"));
  }
  auto del = tx.Prepare("DELETE FROM snapshots WHERE id = ?");
  if (!del.ok()) return del.status();
  if (absl::Status s = del->Bind(1, row->id).Run(); !s.ok()) return s;
  // In the same transaction: the proof that its directory may be deleted.
  if (absl::Status s = JournalRemoval(tx, row->id); !s.ok()) return s;
  auto chain = ParentChain(tx, row->parent_id);
  if (!chain.ok()) return chain.status();
  return SnapshotRecord{row->id, row->kind, *std::move(chain)};
}

absl::StatusOr<std::map<std::string, int64_t>> CountSnapshots(
    Transaction& tx, absl::string_view remote_label) {
  std::map<std::string, int64_t> counts = {
      {"active", 0}, {"view", 0}, {"committed", 0}, {"guest_pulled", 0}};
  auto st = tx.Prepare("SELECT kind, COUNT(*) FROM snapshots GROUP BY kind");
  if (!st.ok()) return st.status();
  while (true) {
    auto row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Kind kind = static_cast<Kind>(st->ColumnInt64(0));
    if (kind != Kind::kUnknown) {
      counts[std::string(KindName(kind))] = st->ColumnInt64(1);
    }
  }
  auto remote = tx.Prepare(
      "SELECT COUNT(*) FROM labels WHERE name = ? AND value = 'true'");
  if (!remote.ok()) return remote.status();
  remote->Bind(1, remote_label);
  auto row = remote->Step();
  if (!row.ok()) return row.status();
  counts["guest_pulled"] = remote->ColumnInt64(0);
  return counts;
}

absl::StatusOr<std::map<int64_t, std::string>> IdMap(Transaction& tx) {
  auto st = tx.Prepare("SELECT id, key FROM snapshots");
  if (!st.ok()) return st.status();
  std::map<int64_t, std::string> ids;
  while (true) {
    auto row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ids[st->ColumnInt64(0)] = st->ColumnText(1);
  }
  return ids;
}

}  // namespace snapshotter
