// Overlay and bind mounts for snapshots.
#include "snapshotter/overlay_mounts.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace snapshotter {

std::vector<Mount> OverlayMounts(const SnapshotDirs& dirs,
                                 const SnapshotRecord& snapshot,
                                 bool index_off, bool awaits_rebase) {
  bool rebased = awaits_rebase && snapshot.kind == Kind::kActive;
  if (snapshot.parent_ids.empty() && !rebased) {
    const char* mode = snapshot.kind == Kind::kView ? "ro" : "rw";
    return {Mount{"bind", dirs.FsPath(snapshot.id), "", {mode, "rbind"}}};
  }
  std::vector<std::string> options;
  if (index_off) options.push_back("index=off");
  if (snapshot.kind == Kind::kActive) {
    options.push_back("workdir=" + dirs.WorkPath(snapshot.id));
    options.push_back("upperdir=" + dirs.FsPath(snapshot.id));
  } else if (snapshot.parent_ids.size() == 1) {
    return {Mount{"bind", dirs.FsPath(snapshot.parent_ids[0]), "",
                  {"ro", "rbind"}}};
  }
  std::vector<std::string> lowers;
  lowers.reserve(snapshot.parent_ids.size());
  for (int64_t id : snapshot.parent_ids) lowers.push_back(dirs.FsPath(id));
  if (lowers.empty()) lowers.push_back(dirs.EmptyLowerPath());
  options.push_back("lowerdir=" + absl::StrJoin(lowers, ":"));
  return {Mount{"overlay", "overlay", "", std::move(options)}};
}

bool KernelOverlayHasIndex() {
  return access("/sys/module/overlay/parameters/index", F_OK) == 0;
}

}  // namespace snapshotter
