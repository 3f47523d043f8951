// The in-memory index of the snapshot records: what every read (Stat, List,
// Walk, Mounts, Usage of committed snapshots, metrics) is served from, with
// no SQL. The daemon owns its root (flock), so nothing but this process
// changes the database: the index is loaded once at start and then follows
// each committed write transaction, updated by the writer after the COMMIT
// is durable and under the store's lock, so it always equals the last
// durable commit. Readers take a shared lock that writers hold only for
// the in-memory update, never across I/O.
//
// Compact: a record keeps its times as integers, its parent and its labels
// as references into one StringPool (label keys, and most CRI label values,
// repeat across records), in a B-tree by key. Infos are built on the way
// out. The values of a few label keys chosen at construction are indexed
// too (value to record keys), so that finding the records of one value
// (e.g. the layers of one image) does not scan them all.
#ifndef SNAPSHOTTER_SNAPSHOT_INDEX_H_
#define SNAPSHOTTER_SNAPSHOT_INDEX_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "snapshotter/metastore.h"
#include "snapshotter/snapshot_types.h"
#include "snapshotter/string_pool.h"

namespace snapshotter {

// One indexed record: the directory id, the info containerd sees and the
// usage stored at commit.
struct IndexedSnapshot {
  int64_t id = 0;
  Info info;
  Usage usage;
};

// A record with its ancestors (closest first).
struct IndexedChain {
  IndexedSnapshot snapshot;
  std::vector<Info> parents;
  std::vector<int64_t> parent_ids;
};

// Where a SnapshotIndex::Visit stopped.
struct VisitEnd {
  std::string last_key;    // the last key visited; "" if none
  bool exhausted = false;  // no key after it
};

// `t` at the nanosecond precision the database stores, so that the index
// and a reload of the database agree exactly.
absl::Time StoredTime(absl::Time t);

// The kernel's wall clock (CLOCK_REALTIME), the one clients read when they
// check a snapshot's times (containerd's testsuite: Updated between its
// own reads before and after the call). absl::Now() interpolates the CPU's
// cycle counter between calibrations and was seen 50 us behind it.
absl::Time RealtimeNow();

// `labels` without those with empty values, as the database keeps them.
Labels StoredLabels(Labels labels);

class SnapshotIndex {
 public:
  // `indexed_labels`: the label keys whose values VisitLabelled looks up.
  explicit SnapshotIndex(std::vector<std::string> indexed_labels = {});

  // Replaces the contents with every record of the database.
  absl::Status Load(Transaction& tx);
  // Exchanges the contents, and the indexed label keys, with `other` (an
  // index loaded elsewhere).
  void Swap(SnapshotIndex& other);
  // The ids of every record held.
  std::set<int64_t> Ids() const;

  // Whether a record of `key` is held (no copy of it).
  bool Contains(absl::string_view key) const;
  // NotFound naming the key when absent.
  absl::StatusOr<IndexedSnapshot> Get(absl::string_view key) const;
  absl::StatusOr<IndexedChain> GetChain(absl::string_view key) const;
  // The ancestors of committed `parent` (itself first); empty for "".
  absl::StatusOr<IndexedChain> ChainOf(absl::string_view parent) const;
  // Ids of the layers in the chain of `parent` (itself first) recorded
  // committed without content (usage of 0 inodes: remote layers left
  // empty, whose directories are made only when a child needs them);
  // empty for "" or an unknown key.
  std::vector<int64_t> ContentlessLayers(absl::string_view parent) const;
  // Infos for which `keep` is true, in key order: at most `limit` of them
  // (0: no limit), with keys after `after` ("" : from the first). `keep`
  // sees each record in place (see Visit); only the kept ones are copied.
  std::vector<Info> Select(const std::function<bool(const InfoView&)>& keep,
                           absl::string_view after = "",
                           size_t limit = 0) const;
  // Calls `fn` for the records with keys after `after` ("": from the
  // first), in key order, until it returns false. Holds the read lock
  // throughout: `fn` must be quick and must not call into the index.
  VisitEnd Visit(absl::string_view after,
                 const std::function<bool(const InfoView&)>& fn) const;
  // Calls `fn` for the records whose label `label` has the value `value`,
  // in key order, until it returns false; as Visit holds the read lock. A
  // lookup for an indexed label key, a scan of every record for another.
  void VisitLabelled(absl::string_view label, absl::string_view value,
                     const std::function<bool(const InfoView&)>& fn) const;
  // Snapshots per kind name, plus "guest_pulled": those labelled
  // `remote_label`="true".
  std::map<std::string, int64_t> CountByKind(
      absl::string_view remote_label) const;
  size_t size() const;

  // Writers, after a durable commit. Labels with empty values are dropped
  // (the database does not keep them).
  void Put(IndexedSnapshot snapshot);
  void Erase(absl::string_view key);
  // Replaces the info of an existing record, keeping its id and usage.
  void ReplaceInfo(const Info& info);

 private:
  // One record as held: pooled strings, integer times.
  struct Entry {
    int64_t id = 0;
    Kind kind = Kind::kUnknown;
    int64_t created_ns = 0;
    int64_t updated_ns = 0;
    Usage usage;
    const std::string* parent = nullptr;  // null for a base snapshot
    InfoView::LabelRefs labels;           // sorted by key; no empty values
  };
  using Map = absl::btree_map<std::string, Entry, std::less<>>;
  // For one indexed label key: each value held, to the keys holding it.
  struct LabelIndex {
    std::string label;
    absl::flat_hash_map<std::string, absl::btree_set<std::string>> keys;
  };

  absl::StatusOr<IndexedChain> ChainLocked(absl::string_view key) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static InfoView ViewOf(const Map::value_type& kv);
  Info InfoOf(const Map::value_type& kv) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  IndexedSnapshot SnapshotOf(const Map::value_type& kv) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The info fields of `info` (labels with empty values dropped) into `e`,
  // releasing what `e` held.
  void Assign(Entry& e, const Info& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseStrings(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds record `key` (`e`) to the label indexes, or takes it out.
  void IndexLabels(const std::string& key, const Entry& e, bool add)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  StringPool pool_ ABSL_GUARDED_BY(mu_);
  Map by_key_ ABSL_GUARDED_BY(mu_);
  std::vector<LabelIndex> by_label_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SNAPSHOT_INDEX_H_
