// User-namespace id maps of a rootfs's labels.
#include "snapshotter/id_mapping.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kata_volume/verity/sha256.h"

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

// A map as Go's encoding/json writes a []specs.LinuxIDMapping.
std::string MappingsJson(std::vector<IdMapping> maps, bool sort) {
  if (maps.empty()) return "null";
  if (sort) {
    std::stable_sort(maps.begin(), maps.end(), [](const IdMapping& a, const IdMapping& b) {
      return a.container_id < b.container_id;
    });
  }
  std::string out = "[";
  for (const IdMapping& m : maps) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "{\"containerID\":", m.container_id,
                    ",\"hostID\":", m.host_id, ",\"size\":", m.size, "}");
  }
  return out + "]";
}

// containerd 2.x's remappedSnapshot.ID().
std::string RemapCopyName2x(absl::string_view parent, const std::vector<IdMapping>& uids,
                            const std::vector<IdMapping>& gids, bool sort) {
  return absl::StrCat("sha256:", guest_pull::verity::Sha256Hex(absl::StrCat(
                                     "{\"Parent\":\"", parent, "\",\"IDMap\":{\"UidMap\":",
                                     MappingsJson(uids, sort), ",\"GidMap\":",
                                     MappingsJson(gids, sort), "}}")));
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
  // A label with an empty value is no label (a snapshot stores none).
  auto find = [&labels](const char* key) {
    auto it = labels.find(key);
    return it != labels.end() && it->second.empty() ? labels.end() : it;
  };
  auto uid = find(kLabelUidMapping);
  auto gid = find(kLabelGidMapping);
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

bool IsRemapCopyName(absl::string_view name, absl::string_view parent, const IdMaps& maps) {
  if (parent.empty()) return false;
  // 1.7 and 2.0 read one "%d:%d:%d" range of each label; 1.7 and 2.0
  // want container id 0 in both.
  const bool first_ranges = !maps.uids.empty() && !maps.gids.empty() &&
                            maps.uids[0].container_id == 0 && maps.gids[0].container_id == 0;
  if (first_ranges &&
      name == absl::StrCat(parent, "-", maps.uids[0].host_id, "-", maps.gids[0].host_id)) {
    return true;
  }
  if (!absl::StartsWith(name, "sha256:")) return false;
  // The parent is written as a JSON string as is: a name Go would escape
  // (which no chain ID holds) is never taken for a copy's parent.
  for (char c : parent) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&') {
      return false;
    }
  }
  if (name == RemapCopyName2x(parent, maps.uids, maps.gids, /*sort=*/true)) return true;
  return first_ranges && (maps.uids.size() > 1 || maps.gids.size() > 1) &&
         name == RemapCopyName2x(parent, {maps.uids[0]}, {maps.gids[0]}, /*sort=*/false);
}

}  // namespace snapshotter
