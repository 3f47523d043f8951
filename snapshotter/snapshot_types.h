// Plain value types shared by the snapshotter core, its storage and the
// gRPC edge: snapshot kinds, info records, usage and mounts. They mirror
// containerd's snapshots.Info / snapshots.Usage / mount.Mount.
#ifndef SNAPSHOTTER_SNAPSHOT_TYPES_H_
#define SNAPSHOTTER_SNAPSHOT_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace snapshotter {

using Labels = std::map<std::string, std::string>;

// The lifecycle state of a snapshot, numbered as containerd's Kind enum.
enum class Kind : int { kUnknown = 0, kView = 1, kActive = 2, kCommitted = 3 };

// "view", "active", "committed" (the names containerd's filters use).
absl::string_view KindName(Kind kind);

// Metadata of one snapshot as containerd sees it.
struct Info {
  std::string name;
  std::string parent;  // empty for a base snapshot
  Kind kind = Kind::kUnknown;
  absl::Time created = absl::UnixEpoch();
  absl::Time updated = absl::UnixEpoch();
  Labels labels;
};

// An Info by reference, without copies (e.g. a record of the index, valid
// only inside the SnapshotIndex::Visit callback that receives it).
struct InfoView {
  using LabelRefs =
      std::vector<std::pair<const std::string*, const std::string*>>;
  absl::string_view name;
  absl::string_view parent;
  Kind kind = Kind::kUnknown;
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
  static inline const LabelRefs kNoLabels;
  // Sorted by key (a record of the index has no empty values).
  const LabelRefs* labels = &kNoLabels;

  // A view of `info`; `refs` receives its label pointers and, like `info`,
  // must outlive the view.
  static InfoView Of(const Info& info, LabelRefs* refs);
  Info ToInfo() const;
  // The value of label `key`, or nullptr.
  const std::string* Label(absl::string_view key) const;
};

// Disk usage of a snapshot's own layer (not its parents).
struct Usage {
  int64_t size = 0;    // bytes
  int64_t inodes = 0;  // distinct inodes
};

// One mount a client performs to see a snapshot (containerd.types.Mount).
struct Mount {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SNAPSHOT_TYPES_H_
