// Store identity, id counter and removal journal over SQLite.
#include "snapshotter/store_state.h"

#include "base/status_macros.h"
namespace snapshotter {
namespace {

absl::StatusOr<std::set<int64_t>> IdColumn(Transaction& tx,
                                          absl::string_view sql) {
  ASSIGN_OR_RETURN(Statement st, tx.Prepare(sql));
  std::set<int64_t> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return ids;
    ids.insert(st.ColumnInt64(0));
  }
}

absl::Status RunWithId(Transaction& tx, absl::string_view sql, int64_t id) {
  ASSIGN_OR_RETURN(Statement st, tx.Prepare(sql));
  return st.Bind(1, id).Run();
}

}  // namespace

absl::StatusOr<std::string> ReadStoreId(Transaction& tx) {
  ASSIGN_OR_RETURN(Statement st,
                   tx.Prepare("SELECT store_id FROM store WHERE singleton = 1"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnText(0) : "";
}

absl::Status WriteStoreId(Transaction& tx, absl::string_view store_id) {
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare(
          "INSERT OR REPLACE INTO store(singleton, store_id) VALUES(1, ?)"));
  return st.Bind(1, store_id).Run();
}

absl::StatusOr<int64_t> ReadGeneration(Transaction& tx) {
  ASSIGN_OR_RETURN(Statement table,
                   tx.Prepare("SELECT COUNT(*) FROM sqlite_master WHERE "
                              "type = 'table' AND name = 'store_generation'"));
  ASSIGN_OR_RETURN(bool row, table.Step());
  if (!row || table.ColumnInt64(0) == 0) return 0;
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("SELECT generation FROM store_generation WHERE singleton = 1"));
  ASSIGN_OR_RETURN(row, st.Step());
  return row ? st.ColumnInt64(0) : 0;
}

absl::StatusOr<int64_t> AdvanceGeneration(Transaction& tx) {
  ASSIGN_OR_RETURN(int64_t generation, ReadGeneration(tx));
  RETURN_IF_ERROR(tx.Exec(
      "CREATE TABLE IF NOT EXISTS store_generation (singleton INTEGER PRIMARY "
      "KEY CHECK (singleton = 1), generation INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(Statement st,
                   tx.Prepare("INSERT OR REPLACE INTO store_generation("
                              "singleton, generation) VALUES(1, ?)"));
  RETURN_IF_ERROR(st.Bind(1, generation + 1).Run());
  return generation + 1;
}

absl::StatusOr<int64_t> IdCounter(Transaction& tx) {
  // sqlite_sequence only has a row once a snapshot was inserted.
  ASSIGN_OR_RETURN(
      Statement st,
      tx.Prepare("SELECT MAX(IFNULL((SELECT seq FROM sqlite_sequence "
                 "WHERE name = 'snapshots'), 0), IFNULL((SELECT MAX(id) FROM "
                 "snapshots), 0))"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.ColumnInt64(0) : 0;
}

absl::StatusOr<std::set<int64_t>> RecordIds(Transaction& tx) {
  return IdColumn(tx, "SELECT id FROM snapshots");
}

absl::StatusOr<std::map<int64_t, ContentlessRecord>> ContentlessRecords(
    Transaction& tx) {
  ASSIGN_OR_RETURN(Statement st,
                   tx.Prepare("SELECT id, kind, IFNULL(parent_id, 0) FROM "
                              "snapshots WHERE kind != ? OR inodes = 0"));
  st.Bind(1, static_cast<int64_t>(Kind::kCommitted));
  std::map<int64_t, ContentlessRecord> records;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return records;
    records[st.ColumnInt64(0)] = ContentlessRecord{
        static_cast<Kind>(st.ColumnInt64(1)), st.ColumnInt64(2)};
  }
}

absl::Status JournalRemoval(Transaction& tx, int64_t id) {
  return RunWithId(tx, "INSERT OR IGNORE INTO removals(id) VALUES(?)", id);
}

absl::StatusOr<std::set<int64_t>> JournalledIds(Transaction& tx) {
  return IdColumn(tx, "SELECT id FROM removals");
}

absl::Status ForgetRemoval(Transaction& tx, int64_t id) {
  return RunWithId(tx, "DELETE FROM removals WHERE id = ?", id);
}

}  // namespace snapshotter
