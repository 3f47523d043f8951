// An observer of finished RPCs (name, outcome, latency), implemented by the
// metrics exporter; the service calls it without knowing about Prometheus.
#ifndef SNAPSHOTTER_RPC_OBSERVER_H_
#define SNAPSHOTTER_RPC_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace snapshotter {

// Receives one call per finished RPC.
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  virtual void ObserveRpc(absl::string_view rpc, absl::StatusCode code,
                          absl::Duration latency) = 0;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_RPC_OBSERVER_H_
