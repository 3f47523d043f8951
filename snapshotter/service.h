// The gRPC edge: containerd.services.snapshots.v1.Snapshots served over the
// Snapshotter core. Converts protos to core types and absl::Status to gRPC
// status (codes carry over: containerd maps InvalidArgument, NotFound,
// AlreadyExists, FailedPrecondition, Unavailable and Unimplemented back to
// its errdefs), and logs every mutating call with its outcome.
#ifndef SNAPSHOTTER_SERVICE_H_
#define SNAPSHOTTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "snapshotter/rpc_observer.h"
#include "snapshotter/snapshotter.h"

namespace snapshotter {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Implements all ten Snapshots RPCs.
class SnapshotsService final : public snapshots_v1::Snapshots::Service {
 public:
  // Neither pointer is owned; `observer` may be null.
  SnapshotsService(Snapshotter* snapshotter, RpcObserver* observer);

  grpc::Status Prepare(grpc::ServerContext* ctx,
                       const snapshots_v1::PrepareSnapshotRequest* req,
                       snapshots_v1::PrepareSnapshotResponse* resp) override;
  grpc::Status View(grpc::ServerContext* ctx,
                    const snapshots_v1::ViewSnapshotRequest* req,
                    snapshots_v1::ViewSnapshotResponse* resp) override;
  grpc::Status Mounts(grpc::ServerContext* ctx,
                      const snapshots_v1::MountsRequest* req,
                      snapshots_v1::MountsResponse* resp) override;
  grpc::Status Commit(grpc::ServerContext* ctx,
                      const snapshots_v1::CommitSnapshotRequest* req,
                      google::protobuf::Empty* resp) override;
  grpc::Status Remove(grpc::ServerContext* ctx,
                      const snapshots_v1::RemoveSnapshotRequest* req,
                      google::protobuf::Empty* resp) override;
  grpc::Status Stat(grpc::ServerContext* ctx,
                    const snapshots_v1::StatSnapshotRequest* req,
                    snapshots_v1::StatSnapshotResponse* resp) override;
  grpc::Status Update(grpc::ServerContext* ctx,
                      const snapshots_v1::UpdateSnapshotRequest* req,
                      snapshots_v1::UpdateSnapshotResponse* resp) override;
  grpc::Status List(
      grpc::ServerContext* ctx, const snapshots_v1::ListSnapshotsRequest* req,
      grpc::ServerWriter<snapshots_v1::ListSnapshotsResponse>* writer) override;
  grpc::Status Usage(grpc::ServerContext* ctx,
                     const snapshots_v1::UsageRequest* req,
                     snapshots_v1::UsageResponse* resp) override;
  grpc::Status Cleanup(grpc::ServerContext* ctx,
                       const snapshots_v1::CleanupRequest* req,
                       google::protobuf::Empty* resp) override;

 private:
  // Records the outcome of an RPC and converts it for the wire.
  grpc::Status Finish(absl::string_view rpc, absl::Time start,
                      const absl::Status& status);

  Snapshotter* snapshotter_;
  RpcObserver* observer_;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SERVICE_H_
