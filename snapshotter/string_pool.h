// Reference-counted interning of strings: equal strings held by many
// records (label keys, the CRI labels' image references and digests, parent
// keys) are stored once. Not thread-safe: the owner's lock guards it.
#ifndef SNAPSHOTTER_STRING_POOL_H_
#define SNAPSHOTTER_STRING_POOL_H_

#include <cstdint>
#include <string>

#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"

namespace snapshotter {

class StringPool {
 public:
  StringPool() = default;
  StringPool(const StringPool&) = delete;
  StringPool& operator=(const StringPool&) = delete;

  // The pooled copy of `s` (stable until its last Release); one reference
  // more.
  const std::string* Acquire(absl::string_view s);
  // One reference less; the copy is freed with its last one. `s` must come
  // from Acquire of this pool.
  void Release(const std::string* s);
  // Distinct strings held.
  size_t size() const { return refs_.size(); }
  // Exchanges the contents (the strings stay where they are).
  void Swap(StringPool& other) { refs_.swap(other.refs_); }

 private:
  // Node-based: the strings do not move when the table grows.
  absl::node_hash_map<std::string, int64_t> refs_;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_STRING_POOL_H_
