// The gRPC edge: containerd.services.snapshots.v1.Snapshots served over the
// Snapshotter core. Converts protos to core types and absl::Status to gRPC
// status (codes carry over: containerd maps InvalidArgument, NotFound,
// AlreadyExists, FailedPrecondition, Unavailable and Unimplemented back to
// its errdefs), and logs every mutating call with its outcome (INFO) and,
// at log_level=debug (VLOG(1)), every finished RPC, reads included.
#ifndef SNAPSHOTTER_SERVICE_H_
#define SNAPSHOTTER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "snapshotter/call_pool.h"
#include "snapshotter/rpc_observer.h"
#include "snapshotter/service_calls.h"
#include "snapshotter/snapshotter.h"

namespace snapshotter {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

// The longest error message sent, in bytes: it travels in a header, which
// gRPC C++ clients accept only up to 8 KiB (percent-encoded, up to 3 bytes
// per byte), and a message may quote a 32 KiB key or a whole filter.
inline constexpr size_t kMaxErrorMessageBytes = 1024;

// absl::Status -> grpc::Status with the same code and message, the message
// cut at kMaxErrorMessageBytes (on a UTF-8 boundary, "..." appended).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Serves all ten Snapshots RPCs on gRPC's async API. Reads from the
// in-memory index (Stat, List, Mounts of a snapshot without remote layers,
// Usage of a committed snapshot) are
// answered inline on the thread that took the call off the completion
// queue: no hand-off to another thread, which would cost more than the
// read. Mutations (and Cleanup, and Usage of an active snapshot, which
// walks its directory) may wait on the store or the disk, so they run on a
// bounded CallPool and never hold a thread that reads need; when the pool
// is full a call gets RESOURCE_EXHAUSTED at once and changes nothing. At
// most max_lists Lists stream at once; beyond, RESOURCE_EXHAUSTED too. A
// List whose filters have ~= regexps (their matching can take seconds on
// one record) makes its messages on a small pool of its own instead of the
// queue thread.
//
// Use: AddTo(builder), builder.BuildAndStart(), Start(); to stop,
// DrainMutations() and FinishLists() (graceful; then end the connections,
// see connection_listener.h), server->Shutdown(), then Stop() (or the
// destructor).
class SnapshotsService final : private service_calls::Host {
 public:
  // containerd runs a few Lists at once (one per client command or GC
  // pass); this leaves ample room and caps their memory at a few tens of MB.
  static constexpr int kMaxLists = 128;
  struct Options {
    // Threads taking calls off the completion queue (and answering reads).
    int queue_threads = 1;
    // Threads that run mutations, started on demand.
    int max_write_threads = 32;
    // Mutations that may wait for one of those beyond them.
    int max_queued_writes = 256;
    // A List reply message is cut once its Infos reach about this many
    // bytes serialized (clients accept 4 MiB by default); small, so that
    // the client decodes one while the next is made (docs/benchmarks.md,
    // "Session 4"): a Go client Walked 1000 plain snapshots in 0.8 ms
    // with 16 KiB messages, in 1.1-1.25 ms with 64 KiB ones ("Session
    // 48").
    size_t list_message_bytes = 16 * 1024;
    // List calls in progress at once; one beyond gets RESOURCE_EXHAUSTED.
    // Each holds the messages in flight (~170 KB measured with 64 KiB
    // messages) until its client reads, so Lists opened and never read
    // would otherwise grow the daemon's memory without end.
    int max_lists = kMaxLists;
    // Threads that make the messages of Lists with ~= regexps (at most
    // max_lists of those wait for them, one message each), apart from the
    // queue threads and the mutations' pool.
    int slow_list_threads = 2;
  };

  // Neither pointer is owned; `observer` may be null.
  SnapshotsService(Snapshotter* snapshotter, RpcObserver* observer);
  SnapshotsService(Snapshotter* snapshotter, RpcObserver* observer,
                   Options options);
  ~SnapshotsService() override;

  // Registers the service and its completion queue; before BuildAndStart.
  void AddTo(grpc::ServerBuilder& builder);
  // Starts serving; after BuildAndStart.
  void Start();
  // The first step of a graceful stop, before the connections end and the
  // server's Shutdown(): mutations queued for the pool still run until
  // `drain_until`, those queued then and every call for the pool that
  // arrives from now on get UNAVAILABLE without running (mutations, and
  // the reads the pool runs: Mounts on guest-pulled layers, Usage of an
  // active snapshot), and this returns once the running ones finished
  // (however long they take) and gRPC took their replies (until
  // `drain_until`; false if some had not then). Reads answered inline are
  // still answered.
  bool DrainMutations(absl::Time drain_until);
  // The next step: a List that arrives from now on gets UNAVAILABLE before
  // its first message, and this returns once every List in progress sent
  // its last message and status, or at `deadline` (false if some had not
  // then: the connections' end cuts those, UNAVAILABLE; a List still
  // matching ~= regexps then stops at its next selector).
  bool FinishLists(absl::Time deadline);
  // After the server's Shutdown() (which does not wait for the calls this
  // service took; DrainMutations and FinishLists may have run): mutations
  // queued for the pool still run until `drain_until`, those queued then
  // get UNAVAILABLE without running, and running ones finish; then the
  // queue is shut down and every thread joined.
  void Stop(absl::Time drain_until = absl::InfinitePast());

 private:
  service_calls::AsyncService* async_service() override { return &async_; }
  bool Offload(std::function<void()> run, std::function<void()> drop) override;
  grpc::Status Finish(absl::string_view rpc, absl::string_view key,
                      absl::Time start, const absl::Status& status) override;
  absl::Status Refused(absl::string_view rpc) override;
  bool Stopping() const override { return stopping_.load(); }
  void ReplyOwed() override;
  void ReplySent() override;
  absl::Status ListStarted() override;
  void ListEnded() override;
  absl::Status OffloadListPage(
      std::function<void()> run,
      std::function<void(const absl::Status&)> drop) override;

  // Asks for the first call of every method on the queue.
  void RequestCalls();
  // The matching Infos of a List, in key order, packed into reply messages
  // of about list_message_bytes.
  absl::StatusOr<service_calls::ListCall::Pages> StartList(
      const snapshots_v1::ListSnapshotsRequest& req);
  void DefineMethods();

  Snapshotter* snapshotter_;
  RpcObserver* observer_;
  Options options_;
  service_calls::AsyncService async_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  // Never reset (the queue threads use it until they are joined); stopped.
  const std::unique_ptr<CallPool> pool_;
  // The messages of Lists with ~= regexps (ListCall::Pages::offload);
  // stopped with the queue.
  const std::unique_ptr<CallPool> slow_lists_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
  // Held shared by every Proceed and exclusively to set stopping_, so no
  // Proceed that saw stopping_ false still runs when the queue shuts down.
  absl::Mutex proceed_mu_;
  std::atomic<bool> stopping_{false};
  absl::Mutex replies_mu_;
  // Replies of calls the pool ran that gRPC has not finished sending.
  int owed_replies_ ABSL_GUARDED_BY(replies_mu_) = 0;
  // List calls in progress; new ones refused beyond max_lists and once
  // FinishLists began.
  int lists_ ABSL_GUARDED_BY(replies_mu_) = 0;
  bool refuse_lists_ ABSL_GUARDED_BY(replies_mu_) = false;
  // Set when FinishLists runs out of time, and by Stop: the Lists with ~=
  // regexps end at their next selector (UNAVAILABLE).
  std::atomic<bool> cut_slow_lists_{false};

  // The methods (names, handlers); the calls point to them.
  template <class Req, class Resp>
  using Unary = service_calls::UnaryMethod<Req, Resp>;
  Unary<snapshots_v1::PrepareSnapshotRequest,
        snapshots_v1::PrepareSnapshotResponse> prepare_;
  Unary<snapshots_v1::ViewSnapshotRequest, snapshots_v1::ViewSnapshotResponse>
      view_;
  Unary<snapshots_v1::MountsRequest, snapshots_v1::MountsResponse> mounts_;
  Unary<snapshots_v1::CommitSnapshotRequest, google::protobuf::Empty> commit_;
  Unary<snapshots_v1::RemoveSnapshotRequest, google::protobuf::Empty> remove_;
  Unary<snapshots_v1::StatSnapshotRequest, snapshots_v1::StatSnapshotResponse>
      stat_;
  Unary<snapshots_v1::UpdateSnapshotRequest,
        snapshots_v1::UpdateSnapshotResponse> update_;
  Unary<snapshots_v1::UsageRequest, snapshots_v1::UsageResponse> usage_;
  Unary<snapshots_v1::CleanupRequest, google::protobuf::Empty> cleanup_;
  service_calls::ListCall::OpenPager list_;
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_SERVICE_H_
