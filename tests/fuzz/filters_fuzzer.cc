// libFuzzer target: containerd's List/Walk filter language
// (snapshotter/filters.h). Input: newline-separated filter strings; what
// parses is matched against two snapshots.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "snapshotter/filters.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> filters = absl::StrSplit(input, '\n');
  auto filter = snapshotter::SnapshotFilter::Parse(filters);
  if (!filter.ok()) return 0;
  snapshotter::Info committed;
  committed.name = "sha256:abc";
  committed.kind = snapshotter::Kind::kCommitted;
  committed.labels = {{"containerd.io/snapshot.ref", "sha256:abc"},
                      {"a", ""}};
  snapshotter::Info active;
  active.name = "k8s.io/1/ctr";
  active.parent = "sha256:abc";
  active.kind = snapshotter::Kind::kActive;
  (void)filter->Matches(committed);
  (void)filter->Matches(active);
  return 0;
}
