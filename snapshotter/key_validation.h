// Validation of snapshot keys and labels received over the API, before
// anything touches storage or the filesystem.
#ifndef SNAPSHOTTER_KEY_VALIDATION_H_
#define SNAPSHOTTER_KEY_VALIDATION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "snapshotter/snapshot_types.h"

namespace snapshotter {

// containerd's metadata store (bbolt) refuses keys longer than this.
inline constexpr size_t kMaxKeyBytes = 32768;
// containerd limits a label's key plus value to this many bytes.
inline constexpr size_t kMaxLabelBytes = 4096;

// Checks a snapshot key or name: non-empty, at most kMaxKeyBytes, no NUL,
// and no "." or ".." path element. Real keys contain '/', ' ' and ':'
// ("k8s.io/12/extract-34 sha256:ab.."), which are fine: keys never become
// paths. `what` names the argument in the error ("key", "parent", ...).
// Errors are InvalidArgument.
absl::Status ValidateKey(absl::string_view key, absl::string_view what);

// ValidateKey for a key that names a snapshot to find (Stat, Mounts, Usage,
// Remove, the key of a Commit, the name of an Update): an empty one is
// NotFound, as in containerd's snapshotters, whose store cannot hold it
// either; the other refusals stay InvalidArgument.
absl::Status ValidateLookupKey(absl::string_view key, absl::string_view what);

// Checks every label: non-empty key without NUL, key plus value at most
// kMaxLabelBytes. Errors are InvalidArgument naming the label.
absl::Status ValidateLabels(const Labels& labels);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_KEY_VALIDATION_H_
