// User-namespace id maps of a rootfs's labels.
#include "snapshotter/id_mapping.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace snapshotter {
namespace {

constexpr uint64_t kInvalidId = (uint64_t{1} << 32) - 1;

bool ParseId(absl::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(s, &out) && out < kInvalidId;
}

// The ranges of `value` (empty: none, every id maps to itself, as
// containerd reads it).
absl::StatusOr<std::vector<IdMapping>> RangesOf(const char* label, absl::string_view value) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label ", label, " is \"", absl::CEscape(value), "\": ", why,
        " (a list of container:host:size id ranges, e.g. \"0:65536:65536\")"));
  };
  std::vector<IdMapping> ranges;
  if (value.empty()) return ranges;
  for (absl::string_view range : absl::StrSplit(value, ',')) {
    std::vector<absl::string_view> f = absl::StrSplit(range, ':');
    uint64_t ctr, host, size;
    if (f.size() != 3 || !ParseId(f[0], ctr) || !ParseId(f[1], host) ||
        !ParseId(f[2], size)) {
      return invalid(absl::StrCat("\"", absl::CEscape(range), "\" is not an id range"));
    }
    if (ctr + size > kInvalidId || host + size > kInvalidId) {
      return invalid(absl::StrCat("range \"", range, "\" goes past the last id"));
    }
    ranges.push_back({static_cast<uint32_t>(ctr), static_cast<uint32_t>(host),
                      static_cast<uint32_t>(size)});
  }
  if (!ToHost(ranges, 0).has_value()) {
    return invalid("it maps no host id to the container's root (id 0)");
  }
  return ranges;
}

}  // namespace

std::optional<uint32_t> ToHost(const std::vector<IdMapping>& maps, uint32_t id) {
  if (maps.empty()) return id;
  for (const IdMapping& m : maps) {
    if (id >= m.container_id && uint64_t{id} < uint64_t{m.container_id} + m.size) {
      return m.host_id + (id - m.container_id);
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<IdMaps>> IdMapsOf(const Labels& labels) {
  auto uid = labels.find(kLabelUidMapping);
  auto gid = labels.find(kLabelGidMapping);
  if (uid == labels.end() && gid == labels.end()) return std::nullopt;
  IdMaps maps;
  if (uid != labels.end()) maps.uid_label = uid->second;
  if (gid != labels.end()) maps.gid_label = gid->second;
  absl::StatusOr<std::vector<IdMapping>> uids =
      RangesOf(kLabelUidMapping, maps.uid_label.value_or(""));
  if (!uids.ok()) return uids.status();
  absl::StatusOr<std::vector<IdMapping>> gids =
      RangesOf(kLabelGidMapping, maps.gid_label.value_or(""));
  if (!gids.ok()) return gids.status();
  maps.uids = *std::move(uids);
  maps.gids = *std::move(gids);
  maps.root_uid = *ToHost(maps.uids, 0);
  maps.root_gid = *ToHost(maps.gids, 0);
  return maps;
}

std::vector<std::string> IdMapOptions(const IdMaps& maps) {
  std::vector<std::string> options;
  if (maps.uid_label.has_value()) options.push_back("uidmap=" + *maps.uid_label);
  if (maps.gid_label.has_value()) options.push_back("gidmap=" + *maps.gid_label);
  return options;
}

}  // namespace snapshotter
