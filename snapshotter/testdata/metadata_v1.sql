-- A metadata.db as the previous release (schema 1, commit c1f224c) wrote
-- it: its schema verbatim, user_version 1, WAL mode, and rows as its
-- storage functions inserted them. Snapshot 3 was created and removed
-- (sqlite_sequence is 3); "layer-1" is committed, "active-2" is active on it.
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TABLE snapshots (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  key        TEXT NOT NULL UNIQUE,
  parent_id  INTEGER REFERENCES snapshots(id),
  kind       INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  size       INTEGER NOT NULL DEFAULT 0,
  inodes     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX snapshots_parent ON snapshots(parent_id);
CREATE TABLE labels (
  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  value       TEXT NOT NULL,
  PRIMARY KEY (snapshot_id, name)
);
PRAGMA user_version=1;
INSERT INTO snapshots(id, key, parent_id, kind, created_ns, updated_ns, size, inodes)
  VALUES(1, 'layer-1', NULL, 3, 1700000000000000000, 1700000000000000000, 8192, 2);
INSERT INTO snapshots(id, key, parent_id, kind, created_ns, updated_ns)
  VALUES(2, 'active-2', 1, 2, 1700000000000000001, 1700000000000000001);
INSERT INTO snapshots(id, key, parent_id, kind, created_ns, updated_ns)
  VALUES(3, 'removed-3', 1, 2, 1700000000000000002, 1700000000000000002);
DELETE FROM snapshots WHERE id = 3;
INSERT INTO labels(snapshot_id, name, value) VALUES(1, 'containerd.io/snapshot.ref', 'sha256:abc');
INSERT INTO labels(snapshot_id, name, value) VALUES(2, 'x', 'y');
COMMIT;
