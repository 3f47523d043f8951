// The gRPC edge: containerd.services.snapshots.v1.Snapshots served over the
// Snapshotter core. Converts protos to core types and absl::Status to gRPC
// status (codes carry over: containerd maps InvalidArgument, NotFound,
// AlreadyExists, FailedPrecondition, Unavailable and Unimplemented back to
// its errdefs), and logs every mutating call with its outcome.
#ifndef SNAPSHOTTER_SERVICE_H_
#define SNAPSHOTTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "snapshotter/call_pool.h"
#include "snapshotter/rpc_observer.h"
#include "snapshotter/snapshotter.h"

namespace snapshotter {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Implements all ten Snapshots RPCs on gRPC's callback API. Reads (Stat,
// Mounts, Usage, List) are answered inline on the gRPC thread that received
// the call: they come from the in-memory index, and a hand-off to another
// thread would cost more than the read itself. Mutations (and Cleanup) wait
// on the store, so they run on a bounded CallPool; when it is full a call
// gets RESOURCE_EXHAUSTED at once.
class SnapshotsService final : public snapshots_v1::Snapshots::CallbackService {
 public:
  struct Options {
    // Threads that run mutations, started on demand.
    int max_write_threads = 32;
    // Mutations that may wait for a thread beyond those.
    int max_queued_writes = 256;
    // A List reply message is cut once its Infos reach this many bytes
    // serialized (clients accept 4 MiB by default).
    size_t list_message_bytes = 256 * 1024;
  };

  // Neither pointer is owned; `observer` may be null.
  SnapshotsService(Snapshotter* snapshotter, RpcObserver* observer);
  SnapshotsService(Snapshotter* snapshotter, RpcObserver* observer,
                   Options options);

  grpc::ServerUnaryReactor* Prepare(
      grpc::CallbackServerContext* ctx,
      const snapshots_v1::PrepareSnapshotRequest* req,
      snapshots_v1::PrepareSnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* View(grpc::CallbackServerContext* ctx,
                                 const snapshots_v1::ViewSnapshotRequest* req,
                                 snapshots_v1::ViewSnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* Mounts(grpc::CallbackServerContext* ctx,
                                   const snapshots_v1::MountsRequest* req,
                                   snapshots_v1::MountsResponse* resp) override;
  grpc::ServerUnaryReactor* Commit(
      grpc::CallbackServerContext* ctx,
      const snapshots_v1::CommitSnapshotRequest* req,
      google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* Remove(
      grpc::CallbackServerContext* ctx,
      const snapshots_v1::RemoveSnapshotRequest* req,
      google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* ctx,
                                 const snapshots_v1::StatSnapshotRequest* req,
                                 snapshots_v1::StatSnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* Update(
      grpc::CallbackServerContext* ctx,
      const snapshots_v1::UpdateSnapshotRequest* req,
      snapshots_v1::UpdateSnapshotResponse* resp) override;
  grpc::ServerWriteReactor<snapshots_v1::ListSnapshotsResponse>* List(
      grpc::CallbackServerContext* ctx,
      const snapshots_v1::ListSnapshotsRequest* req) override;
  grpc::ServerUnaryReactor* Usage(grpc::CallbackServerContext* ctx,
                                  const snapshots_v1::UsageRequest* req,
                                  snapshots_v1::UsageResponse* resp) override;
  grpc::ServerUnaryReactor* Cleanup(grpc::CallbackServerContext* ctx,
                                    const snapshots_v1::CleanupRequest* req,
                                    google::protobuf::Empty* resp) override;

 private:
  class ListReactor;

  // Records the outcome of an RPC and converts it for the wire.
  grpc::Status Finish(absl::string_view rpc, absl::Time start,
                      const absl::Status& status);
  // Finishes a read at once with `read`'s outcome.
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx,
                                   absl::string_view rpc, absl::Time start,
                                   const absl::Status& status);
  // Runs `mutation` on the pool under the call's liveness check, then
  // finishes the call with its outcome.
  grpc::ServerUnaryReactor* RunMutation(
      grpc::CallbackServerContext* ctx, absl::string_view rpc,
      std::function<absl::Status()> mutation);

  Snapshotter* snapshotter_;
  RpcObserver* observer_;
  Options options_;
  CallPool pool_;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SERVICE_H_
