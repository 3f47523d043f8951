// The in-memory snapshot index.
#include "snapshotter/snapshot_index.h"

#include <time.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/storage.h"

namespace snapshotter {

Labels StoredLabels(Labels labels) {
  for (auto it = labels.begin(); it != labels.end();) {
    it = it->second.empty() ? labels.erase(it) : std::next(it);
  }
  return labels;
}

absl::Time StoredTime(absl::Time t) {
  return absl::FromUnixNanos(absl::ToUnixNanos(t));
}

absl::Time RealtimeNow() {
  timespec ts;
  // Cannot fail for CLOCK_REALTIME with a valid pointer; absl::Now() is
  // the fallback all the same.
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return absl::Now();
  return absl::TimeFromTimespec(ts);
}

SnapshotIndex::SnapshotIndex(std::vector<std::string> indexed_labels) {
  for (std::string& label : indexed_labels) {
    by_label_.push_back(LabelIndex{std::move(label), {}});
  }
}

absl::Status SnapshotIndex::Load(Transaction& tx) {
  absl::MutexLock lock(&mu_);
  for (auto& [key, e] : by_key_) ReleaseStrings(e);
  by_key_.clear();
  for (LabelIndex& index : by_label_) index.keys.clear();
  // The records come in id order: labels and parents find theirs by binary
  // search; the map is built once all are read, in key order (each insert
  // at the end).
  struct Loaded {
    std::string key;
    Entry entry;
    int64_t parent_id;
  };
  std::vector<Loaded> loaded;
  auto by_id = [&loaded](int64_t id) -> Loaded* {
    auto it = std::lower_bound(
        loaded.begin(), loaded.end(), id,
        [](const Loaded& l, int64_t id) { return l.entry.id < id; });
    return it != loaded.end() && it->entry.id == id ? &*it : nullptr;
  };
  RETURN_IF_ERROR(ScanRecords(
      tx,
      [&](InfoRecord& r, int64_t parent_id) {
        if (!loaded.empty() && r.id <= loaded.back().entry.id) {
          return absl::DataLossError(absl::StrCat(
              "metadata database: record ids out of order (", r.id,
              " after ", loaded.back().entry.id, ")"));
        }
        Loaded& l = loaded.emplace_back();
        l.entry.id = r.id;
        Assign(l.entry, r.info);
        l.entry.usage = r.usage;
        l.key = std::move(r.info.name);
        l.parent_id = parent_id;
        return absl::OkStatus();
      },
      [&](int64_t id, absl::string_view name, absl::string_view value) {
        Loaded* l = by_id(id);
        if (l == nullptr || value.empty()) return absl::OkStatus();
        l->entry.labels.emplace_back(pool_.Acquire(name), pool_.Acquire(value));
        return absl::OkStatus();
      }));
  for (Loaded& l : loaded) {
    if (l.parent_id == 0) continue;
    const Loaded* parent = by_id(l.parent_id);
    if (parent == nullptr) {
      // As the former join read it: shown as a base snapshot.
      LOG(WARNING) << "metadata database: parent id " << l.parent_id
                   << " of snapshot " << l.key << " has no record";
      continue;
    }
    l.entry.parent = pool_.Acquire(parent->key);
  }
  std::sort(loaded.begin(), loaded.end(),
            [](const Loaded& a, const Loaded& b) { return a.key < b.key; });
  for (Loaded& l : loaded) {
    auto& labels = l.entry.labels;
    std::sort(labels.begin(), labels.end(),
              [](const auto& a, const auto& b) { return *a.first < *b.first; });
    labels.shrink_to_fit();
    auto it = by_key_.emplace_hint(by_key_.end(), std::move(l.key),
                                   std::move(l.entry));
    IndexLabels(it->first, it->second, true);
  }
  return absl::OkStatus();
}

void SnapshotIndex::Swap(SnapshotIndex& other) {
  // Only while the daemon opens: nothing else holds either lock.
  if (&other == this) return;
  absl::MutexLock lock(&mu_);
  absl::MutexLock other_lock(&other.mu_);
  pool_.Swap(other.pool_);
  by_key_.swap(other.by_key_);
  by_label_.swap(other.by_label_);
}

std::set<int64_t> SnapshotIndex::Ids() const {
  absl::ReaderMutexLock lock(&mu_);
  std::set<int64_t> ids;
  for (const auto& [key, e] : by_key_) ids.insert(e.id);
  return ids;
}

void SnapshotIndex::ReleaseStrings(Entry& e) {
  if (e.parent != nullptr) pool_.Release(e.parent);
  e.parent = nullptr;
  for (auto& [k, v] : e.labels) {
    pool_.Release(k);
    pool_.Release(v);
  }
  e.labels.clear();
}

void SnapshotIndex::IndexLabels(const std::string& key, const Entry& e,
                                bool add) {
  InfoView view;
  view.labels = &e.labels;
  for (LabelIndex& index : by_label_) {
    const std::string* label = view.Label(index.label);
    if (label == nullptr) continue;
    const std::string& value = *label;
    if (add) {
      index.keys[value].insert(key);
      continue;
    }
    auto keys = index.keys.find(value);
    if (keys == index.keys.end()) continue;
    keys->second.erase(key);
    if (keys->second.empty()) index.keys.erase(keys);
  }
}

void SnapshotIndex::Assign(Entry& e, const Info& info) {
  ReleaseStrings(e);
  e.kind = info.kind;
  e.created_ns = absl::ToUnixNanos(info.created);
  e.updated_ns = absl::ToUnixNanos(info.updated);
  if (!info.parent.empty()) e.parent = pool_.Acquire(info.parent);
  size_t n = 0;
  for (const auto& [k, v] : info.labels) n += v.empty() ? 0 : 1;
  e.labels.reserve(n);
  for (const auto& [k, v] : info.labels) {  // a std::map: sorted by key
    if (!v.empty()) e.labels.emplace_back(pool_.Acquire(k), pool_.Acquire(v));
  }
}

InfoView SnapshotIndex::ViewOf(const Map::value_type& kv) {
  const Entry& e = kv.second;
  InfoView view;
  view.name = kv.first;
  if (e.parent != nullptr) view.parent = *e.parent;
  view.kind = e.kind;
  view.created_ns = e.created_ns;
  view.updated_ns = e.updated_ns;
  view.labels = &e.labels;
  return view;
}

Info SnapshotIndex::InfoOf(const Map::value_type& kv) const {
  return ViewOf(kv).ToInfo();
}

IndexedSnapshot SnapshotIndex::SnapshotOf(const Map::value_type& kv) const {
  return IndexedSnapshot{kv.second.id, InfoOf(kv), kv.second.usage};
}

bool SnapshotIndex::Contains(absl::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  return by_key_.find(key) != by_key_.end();
}

absl::StatusOr<IndexedSnapshot> SnapshotIndex::Get(
    absl::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, ": not found"));
  }
  return SnapshotOf(*it);
}

absl::StatusOr<IndexedChain> SnapshotIndex::ChainLocked(
    absl::string_view key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, ": not found"));
  }
  IndexedChain chain;
  chain.snapshot = SnapshotOf(*it);
  // A chain is at most as long as the index; the bound guards a cycle.
  const std::string* parent = it->second.parent;
  while (parent != nullptr) {
    if (chain.parents.size() >= by_key_.size()) {
      return absl::DataLossError("snapshot index: parent chain has a cycle");
    }
    auto p = by_key_.find(*parent);
    if (p == by_key_.end()) {
      return absl::DataLossError(absl::StrCat(
          "snapshot index: parent ", *parent, " of ", key, " is missing"));
    }
    chain.parents.push_back(InfoOf(*p));
    chain.parent_ids.push_back(p->second.id);
    parent = p->second.parent;
  }
  return chain;
}

absl::StatusOr<IndexedChain> SnapshotIndex::GetChain(
    absl::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  return ChainLocked(key);
}

absl::StatusOr<IndexedChain> SnapshotIndex::ChainOf(
    absl::string_view parent) const {
  IndexedChain result;
  if (parent.empty()) return result;
  absl::ReaderMutexLock lock(&mu_);
  ASSIGN_OR_RETURN(IndexedChain chain, ChainLocked(parent));
  result.parents.reserve(chain.parents.size() + 1);
  result.parents.push_back(std::move(chain.snapshot.info));
  result.parent_ids.push_back(chain.snapshot.id);
  for (size_t i = 0; i < chain.parents.size(); ++i) {
    result.parents.push_back(std::move(chain.parents[i]));
    result.parent_ids.push_back(chain.parent_ids[i]);
  }
  return result;
}

std::vector<int64_t> SnapshotIndex::ContentlessLayers(
    absl::string_view parent) const {
  std::vector<int64_t> ids;
  absl::ReaderMutexLock lock(&mu_);
  // At most as many steps as records: the bound guards a cycle.
  auto it = by_key_.find(parent);
  for (size_t n = 0; it != by_key_.end() && n < by_key_.size(); ++n) {
    const Entry& e = it->second;
    if (e.kind == Kind::kCommitted && e.usage.inodes == 0) ids.push_back(e.id);
    if (e.parent == nullptr) break;
    it = by_key_.find(*e.parent);
  }
  return ids;
}

std::vector<Info> SnapshotIndex::Select(
    const std::function<bool(const InfoView&)>& keep, absl::string_view after,
    size_t limit) const {
  std::vector<Info> out;
  Visit(after, [&](const InfoView& view) {
    if (keep(view)) out.push_back(view.ToInfo());
    return limit == 0 || out.size() < limit;
  });
  return out;
}

VisitEnd SnapshotIndex::Visit(
    absl::string_view after,
    const std::function<bool(const InfoView&)>& fn) const {
  VisitEnd end;
  absl::ReaderMutexLock lock(&mu_);
  auto it = after.empty() ? by_key_.begin() : by_key_.upper_bound(after);
  auto last = by_key_.end();
  while (it != by_key_.end()) {
    bool more = fn(ViewOf(*it));
    last = it++;
    if (!more) break;
  }
  if (last != by_key_.end()) end.last_key = last->first;
  end.exhausted = it == by_key_.end();
  return end;
}

void SnapshotIndex::VisitLabelled(
    absl::string_view label, absl::string_view value,
    const std::function<bool(const InfoView&)>& fn) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const LabelIndex& index : by_label_) {
    if (index.label != label) continue;
    auto keys = index.keys.find(value);
    if (keys == index.keys.end()) return;
    for (const std::string& key : keys->second) {
      auto it = by_key_.find(key);
      if (it != by_key_.end() && !fn(ViewOf(*it))) return;
    }
    return;
  }
  for (const auto& kv : by_key_) {
    InfoView view = ViewOf(kv);
    const std::string* v = view.Label(label);
    if (v != nullptr && *v == value && !fn(view)) return;
  }
}

std::map<std::string, int64_t> SnapshotIndex::CountByKind(
    absl::string_view remote_label) const {
  std::map<std::string, int64_t> counts = {
      {"active", 0}, {"view", 0}, {"committed", 0}, {"guest_pulled", 0}};
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [key, e] : by_key_) {
    if (e.kind != Kind::kUnknown) ++counts[std::string(KindName(e.kind))];
    for (const auto& [k, v] : e.labels) {
      if (*k == remote_label && *v == "true") ++counts["guest_pulled"];
    }
  }
  return counts;
}

size_t SnapshotIndex::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return by_key_.size();
}

void SnapshotIndex::Put(IndexedSnapshot snapshot) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = by_key_.try_emplace(snapshot.info.name);
  Entry& e = it->second;
  if (!added) IndexLabels(it->first, e, false);
  e.id = snapshot.id;
  e.usage = snapshot.usage;
  Assign(e, snapshot.info);
  IndexLabels(it->first, e, true);
}

void SnapshotIndex::Erase(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  IndexLabels(it->first, it->second, false);
  ReleaseStrings(it->second);
  by_key_.erase(it);
}

void SnapshotIndex::ReplaceInfo(const Info& info) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(info.name);
  if (it == by_key_.end()) return;
  IndexLabels(it->first, it->second, false);
  Assign(it->second, info);
  IndexLabels(it->first, it->second, true);
}

}  // namespace snapshotter
