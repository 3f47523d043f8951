// The user-namespace id maps containerd puts on a container's rootfs
// Prepare (client.WithRemapperLabels: CRI userns_options, `ctr run
// --uidmap --remap-labels`), and what containerd's overlayfs snapshotter
// does with them: the new upper directory belongs to the container's root,
// and the mounts carry "uidmap="/"gidmap=" options, from which containerd's
// mount code makes idmapped lower layers (or an idmapped bind mount).
#ifndef SNAPSHOTTER_ID_MAPPING_H_
#define SNAPSHOTTER_ID_MAPPING_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// "ctr:host:size[,ctr:host:size...]", as containerd's userns.IDMap writes it.
inline constexpr char kLabelUidMapping[] = "containerd.io/snapshot/uidmapping";
inline constexpr char kLabelGidMapping[] = "containerd.io/snapshot/gidmapping";

struct IdMapping {
  uint32_t container_id = 0, host_id = 0, size = 0;
};

struct IdMaps {
  // The labels' values as given, when set (the mount options repeat them).
  std::optional<std::string> uid_label, gid_label;
  // The ranges (none: every id maps to itself).
  std::vector<IdMapping> uids, gids;
  // Host ids of the container's root (uid 0, gid 0).
  uint32_t root_uid = 0, root_gid = 0;
};

// The host id of container id `id` in `maps` (the first range holding it;
// `id` itself without ranges), or nullopt when no range holds it; as
// containerd's userns.IDMap.ToHost.
std::optional<uint32_t> ToHost(const std::vector<IdMapping>& maps, uint32_t id);

// The id maps of a snapshot's labels: nullopt when it has neither label
// (one with an empty value counts as absent, as containerd drops it);
// InvalidArgument naming the label when one is not a list of
// "ctr:host:size" (decimal, each below 2^32-1, the container's range within
// 32 bits) or maps no host id to the container's root (as containerd's
// overlayfs requires).
absl::StatusOr<std::optional<IdMaps>> IdMapsOf(const Labels& labels);

// The options containerd's overlayfs adds to a snapshot's mounts for them:
// "uidmap=<label>" and "gidmap=<label>", each when its label is set
// (containerd's mount code idmaps only with both).
std::vector<std::string> IdMapOptions(const IdMaps& maps);

// Whether `name` is the name containerd's client commits its copy of the
// snapshot `parent` under, chowned on the host for `maps`, when the
// snapshotter lacks the remap-ids capability (client's
// resolveSnapshotOptions): 2.x "sha256:" and the digest of
// {"Parent":<parent>,"IDMap":{"UidMap":[...],"GidMap":[...]}} as Go's
// encoding/json writes it (2.0: the first range of each map; 2.2+: every
// range, sorted by container id), 1.7 "<parent>-<host uid>-<host gid>" (of
// the first ranges). `name` and `parent` are containerd's names, without
// the backend's "<namespace>/<n>/".
bool IsRemapCopyName(absl::string_view name, absl::string_view parent, const IdMaps& maps);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_ID_MAPPING_H_
