// Chain IDs from backend snapshot names. containerd's metadata layer names
// backend snapshots "<namespace>/<n>/<name>"; for image layers <name> is the
// layer's chain ID ("sha256:<hex>").
#ifndef SNAPSHOTTER_GUEST_PULL_CHAIN_ID_H_
#define SNAPSHOTTER_GUEST_PULL_CHAIN_ID_H_

#include "absl/strings/string_view.h"

namespace guest_pull {

// The <name> part of "<namespace>/<n>/<name>", or `key` itself when it does
// not have that form.
absl::string_view ChainIdOf(absl::string_view key);

// The <namespace> of "<namespace>/<n>/<name>", or "" when `key` does not
// have that form (a key no containerd named).
absl::string_view NamespaceOf(absl::string_view key);

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_CHAIN_ID_H_
