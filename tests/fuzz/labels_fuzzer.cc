// libFuzzer target: what a Prepare's request carries before anything is
// made: its key and parent (snapshotter/key_validation.h) and its labels,
// among them the user-namespace id maps (snapshotter/id_mapping.h).
// Input: the key, the parent, then one "name=value" label per line.
// Aborts when maps that parse break what the rest of the daemon relies on:
// ids within 32 bits, and the text containerd writes for them reading back
// the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snapshotter/id_mapping.h"
#include "snapshotter/key_validation.h"

namespace {

using snapshotter::IdMapping;

constexpr uint64_t kInvalidId = (uint64_t{1} << 32) - 1;

void Require(bool ok) {
  if (!ok) std::abort();
}

// Each range stays below the invalid id on both sides, and its last id
// maps to a valid host id (through it, or an earlier range that overlaps
// it).
void CheckRanges(const std::vector<IdMapping>& ranges) {
  for (const IdMapping& m : ranges) {
    Require(uint64_t{m.container_id} + m.size <= kInvalidId);
    Require(uint64_t{m.host_id} + m.size <= kInvalidId);
    if (m.size == 0) continue;
    auto last = snapshotter::ToHost(ranges, m.container_id + (m.size - 1));
    Require(last.has_value() && *last < kInvalidId);
  }
}

// The ranges written back as containerd writes them parse to the same
// (none: the empty label reads as absent).
void CheckRewrite(const char* label, const std::vector<IdMapping>& ranges) {
  std::vector<std::string> parts;
  for (const IdMapping& m : ranges) {
    parts.push_back(absl::StrCat(m.container_id, ":", m.host_id, ":", m.size));
  }
  auto again = snapshotter::IdMapsOf({{label, absl::StrJoin(parts, ",")}});
  // No ranges write an empty label, which counts as no label at all.
  Require(again.ok() && again->has_value() == !ranges.empty());
  if (ranges.empty()) return;
  const std::vector<IdMapping>& back =
      std::string(label) == snapshotter::kLabelUidMapping ? (*again)->uids : (*again)->gids;
  Require(back.size() == ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    Require(back[i].container_id == ranges[i].container_id &&
            back[i].host_id == ranges[i].host_id && back[i].size == ranges[i].size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines = absl::StrSplit(input, '\n');
  lines.resize(std::max<size_t>(lines.size(), 2));
  const std::string& key = lines[0];
  const std::string& parent = lines[1];
  snapshotter::Labels labels;
  for (size_t i = 2; i < lines.size(); ++i) {
    std::vector<std::string> kv = absl::StrSplit(lines[i], absl::MaxSplits('=', 1));
    labels[kv[0]] = kv.size() > 1 ? kv[1] : "";
  }
  (void)snapshotter::ValidateKey(key, "key");
  (void)snapshotter::ValidateLookupKey(parent, "parent");
  (void)snapshotter::ValidateLabels(labels);
  auto maps = snapshotter::IdMapsOf(labels);
  if (!maps.ok() || !maps->has_value()) return 0;
  const snapshotter::IdMaps& m = **maps;
  CheckRanges(m.uids);
  CheckRanges(m.gids);
  CheckRewrite(snapshotter::kLabelUidMapping, m.uids);
  CheckRewrite(snapshotter::kLabelGidMapping, m.gids);
  (void)snapshotter::IdMapOptions(m);
  (void)snapshotter::IsRemapCopyName(key, parent, m);
  return 0;
}
