// The in-memory snapshot index.
#include "snapshotter/snapshot_index.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
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

absl::Status SnapshotIndex::Load(Transaction& tx) {
  std::map<std::string, IndexedSnapshot, std::less<>> loaded;
  RETURN_IF_ERROR(WalkRecords(tx, [&](InfoRecord& r) {
    std::string key = r.info.name;
    loaded.emplace(std::move(key),
                   IndexedSnapshot{r.id, std::move(r.info), r.usage});
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&mu_);
  by_key_ = std::move(loaded);
  return absl::OkStatus();
}

absl::StatusOr<IndexedSnapshot> SnapshotIndex::Get(
    absl::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, ": not found"));
  }
  return it->second;
}

absl::StatusOr<IndexedChain> SnapshotIndex::ChainLocked(
    absl::string_view key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, ": not found"));
  }
  IndexedChain chain;
  chain.snapshot = it->second;
  // A chain is at most as long as the index; the bound guards a cycle.
  std::string parent = it->second.info.parent;
  while (!parent.empty()) {
    if (chain.parents.size() >= by_key_.size()) {
      return absl::DataLossError("snapshot index: parent chain has a cycle");
    }
    auto p = by_key_.find(parent);
    if (p == by_key_.end()) {
      return absl::DataLossError(absl::StrCat(
          "snapshot index: parent ", parent, " of ", key, " is missing"));
    }
    chain.parents.push_back(p->second.info);
    chain.parent_ids.push_back(p->second.id);
    parent = p->second.info.parent;
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
  result.parents.push_back(chain.snapshot.info);
  result.parent_ids.push_back(chain.snapshot.id);
  for (size_t i = 0; i < chain.parents.size(); ++i) {
    result.parents.push_back(std::move(chain.parents[i]));
    result.parent_ids.push_back(chain.parent_ids[i]);
  }
  return result;
}

std::vector<Info> SnapshotIndex::Select(
    const std::function<bool(const Info&)>& keep) const {
  std::vector<Info> out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [key, snapshot] : by_key_) {
    if (keep(snapshot.info)) out.push_back(snapshot.info);
  }
  return out;
}

std::map<std::string, int64_t> SnapshotIndex::CountByKind(
    absl::string_view remote_label) const {
  std::map<std::string, int64_t> counts = {
      {"active", 0}, {"view", 0}, {"committed", 0}, {"guest_pulled", 0}};
  const std::string remote(remote_label);
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [key, snapshot] : by_key_) {
    if (snapshot.info.kind != Kind::kUnknown) {
      ++counts[std::string(KindName(snapshot.info.kind))];
    }
    auto label = snapshot.info.labels.find(remote);
    if (label != snapshot.info.labels.end() && label->second == "true") {
      ++counts["guest_pulled"];
    }
  }
  return counts;
}

size_t SnapshotIndex::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return by_key_.size();
}

void SnapshotIndex::Put(IndexedSnapshot snapshot) {
  snapshot.info.labels = StoredLabels(std::move(snapshot.info.labels));
  snapshot.info.created = StoredTime(snapshot.info.created);
  snapshot.info.updated = StoredTime(snapshot.info.updated);
  std::string key = snapshot.info.name;
  absl::MutexLock lock(&mu_);
  by_key_.insert_or_assign(std::move(key), std::move(snapshot));
}

void SnapshotIndex::Erase(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) by_key_.erase(it);
}

void SnapshotIndex::ReplaceInfo(const Info& info) {
  Info copy = info;
  copy.labels = StoredLabels(std::move(copy.labels));
  copy.created = StoredTime(copy.created);
  copy.updated = StoredTime(copy.updated);
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(info.name);
  if (it != by_key_.end()) it->second.info = std::move(copy);
}

}  // namespace snapshotter
