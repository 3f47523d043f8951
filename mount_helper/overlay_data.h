// Fits overlay mount data into mount(2)'s one-page limit. When the joined
// options are too long, the lowerdir/upperdir/workdir paths are rewritten
// relative to their longest common parent directory, and the mount must be
// made with that directory as the working directory (mount(2) resolves
// relative paths against the caller's cwd) - the technique containerd's
// mount_linux.go and nydus-overlayfs use for deep images.
#ifndef MOUNT_HELPER_OVERLAY_DATA_H_
#define MOUNT_HELPER_OVERLAY_DATA_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mount_helper {

// Mount data ready for mount(2).
struct OverlayData {
  std::string data;         // comma-joined options, at most `limit` bytes
  std::string working_dir;  // chdir here before mount(2); empty: no chdir
};

// The data limit of mount(2): one page minus the terminating NUL.
size_t MountDataLimit();

// Joins `options`; if longer than `limit`, compacts as described above: first
// all lowerdir/upperdir/workdir paths relative to their common parent, and
// if that does not fit, only the lowerdirs (upperdir/workdir stay absolute).
// ResourceExhausted naming both sizes and the limit if it still does not
// fit, or if the paths cannot be made relative (not absolute, "." or ".."
// components).
absl::StatusOr<OverlayData> FitOverlayData(
    const std::vector<std::string>& options, size_t limit);

}  // namespace mount_helper

#endif  // MOUNT_HELPER_OVERLAY_DATA_H_
