// The gRPC name of a status code ("NotFound", "FailedPrecondition"), the form
// used by the `code` label of guest_pull_rpc_errors_total, as in
// go-grpc-prometheus and grpc-go's codes.Code.String().
#ifndef SNAPSHOTTER_METRICS_GRPC_CODE_NAME_H_
#define SNAPSHOTTER_METRICS_GRPC_CODE_NAME_H_

#include <string>

#include "absl/status/status.h"

namespace snapshotter {

// "OK", "Canceled", ..., "Unauthenticated"; "Code(N)" for a code outside the
// 17 canonical ones.
std::string GrpcCodeName(absl::StatusCode code);

}  // namespace snapshotter

#endif  // SNAPSHOTTER_METRICS_GRPC_CODE_NAME_H_
