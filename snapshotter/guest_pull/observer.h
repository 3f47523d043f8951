// Events of the guest-pull logic that metrics count; implemented by the
// Prometheus exporter, absent (null) when metrics are off.
#ifndef SNAPSHOTTER_GUEST_PULL_OBSERVER_H_
#define SNAPSHOTTER_GUEST_PULL_OBSERVER_H_

#include "absl/strings/string_view.h"

namespace guest_pull {

// Receives guest-pull events.
class GuestPullObserver {
 public:
  virtual ~GuestPullObserver() = default;
  // One per CRI layer Prepare: `skip` when the host does not unpack it;
  // `reason` is a short stable word ("guest-pull", "policy", "disabled",
  // "not-cri", "unsupported").
  virtual void ObserveDecision(bool skip, absl::string_view reason) = 0;
  // One per layer looked up in the layer cache when building a rootfs.
  virtual void ObserveLayerCacheLookup(bool hit) = 0;
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_OBSERVER_H_
