// Reference-counted string interning.
#include "snapshotter/string_pool.h"

namespace snapshotter {

const std::string* StringPool::Acquire(absl::string_view s) {
  auto it = refs_.find(s);
  if (it == refs_.end()) it = refs_.emplace(std::string(s), 0).first;
  ++it->second;
  return &it->first;
}

void StringPool::Release(const std::string* s) {
  auto it = refs_.find(*s);
  if (it == refs_.end()) return;
  if (--it->second == 0) refs_.erase(it);
}

}  // namespace snapshotter
