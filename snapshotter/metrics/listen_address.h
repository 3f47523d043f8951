// Validating the `[metrics] address` setting ("host:port") and turning it into
// the listening spec of the embedded HTTP server (civetweb). civetweb's own
// parser is lax (it accepts "999.1.1.1:80" and suffixes such as "s" for TLS),
// so every value is checked here first.
#ifndef SNAPSHOTTER_METRICS_LISTEN_ADDRESS_H_
#define SNAPSHOTTER_METRICS_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace snapshotter {

// Returns "a.b.c.d:port" for `address`. Accepted hosts: an IPv4 literal,
// "localhost" (127.0.0.1) or empty (":9100", all interfaces, 0.0.0.0).
// Port: decimal 0..65535; 0 picks a free port. IPv6 (the civetweb build
// cannot listen on it) and other host names are refused. Errors are
// InvalidArgument naming `address`. The config check of `metrics.address`
// is this function, so the config accepts exactly what the exporter can use.
absl::StatusOr<std::string> ListenSpec(absl::string_view address);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_LISTEN_ADDRESS_H_
