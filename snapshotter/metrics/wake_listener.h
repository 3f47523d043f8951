// Waking the metrics HTTP server's listener (civetweb polls its listening
// socket 2 s at a time and looks at its stop flag only between polls) with a
// connection of our own, so that its stop does not wait out a poll.
#ifndef SNAPSHOTTER_METRICS_WAKE_LISTENER_H_
#define SNAPSHOTTER_METRICS_WAKE_LISTENER_H_

#include <string>

#include "absl/time/time.h"

namespace snapshotter {

// Opens a TCP connection to `ipv4`:`port` and closes it, waiting at most
// `timeout` for the handshake: a SYN nobody answers (a firewall rule that
// drops packets to the port, a full accept queue) would hold a blocking
// connect for tcp_syn_retries' two minutes, and the exporter's stop with
// it. Returns whether the connection was established. An address that is
// not an IPv4 literal is not connected to (false).
bool WakeListener(const std::string& ipv4, int port, absl::Duration timeout);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_WAKE_LISTENER_H_
