// The per-call state machines of the Snapshots service on gRPC's async API
// (service.h): a call object asks gRPC for the next call of its method,
// runs it when it arrives (inline on the completion-queue thread, or on
// the service's CallPool) and deletes itself when gRPC is done with it.
// Internal to service.cc.
#ifndef SNAPSHOTTER_SERVICE_CALLS_H_
#define SNAPSHOTTER_SERVICE_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"

namespace snapshotter {
namespace service_calls {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;
using AsyncService = snapshots_v1::Snapshots::AsyncService;

// What a completion-queue event's tag points to.
class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// What the calls need from the service.
class Host {
 public:
  virtual ~Host() = default;
  virtual AsyncService* async_service() = 0;
  // Queues `run` on the bounded pool; false when it is full or stopped.
  // `drop` runs instead if the pool stops before `run` started.
  virtual bool Offload(std::function<void()> run,
                       std::function<void()> drop) = 0;
  // Records (and at log_level=debug logs) the outcome of an RPC on `key`
  // ("" when it has none) and converts it for the wire.
  virtual grpc::Status Finish(absl::string_view rpc, absl::string_view key,
                              absl::Time start, const absl::Status& status) = 0;
  // The status of a call the pool refused or dropped: full, or stopped
  // (shutting down).
  virtual absl::Status Refused(absl::string_view rpc) = 0;
  // A call the pool ran owes its client a reply (ReplyOwed, before the
  // reply is handed to gRPC) until gRPC reports it sent (ReplySent: it is
  // encoded; the bytes follow, see ConnectionListener::WaitUntilRead).
  virtual void ReplyOwed() = 0;
  virtual void ReplySent() = 0;
  // A List starts (OK: counted until ListEnded) or is refused, with the
  // status to answer: too many in progress, or the stop began
  // (SnapshotsService::FinishLists).
  virtual absl::Status ListStarted() = 0;
  virtual void ListEnded() = 0;
  // Queues the making of a List's next message on the pool of slow Lists
  // (their own threads, apart from the mutations'); OK, or the status to
  // close the List with (stopped). `drop` gets that status if the pool
  // stops before `run` started.
  virtual absl::Status OffloadListPage(
      std::function<void()> run,
      std::function<void(const absl::Status&)> drop) = 0;
  // True once the queue is being shut down: no call may start an operation
  // on it then (gRPC aborts the process). Stable during a Proceed: the
  // service sets it only while no Proceed runs.
  virtual bool Stopping() const = 0;
};

// How a unary call is served: answered inline (`offload` returns false:
// reads from the index) or on the pool (it returns true: mutations, and
// reads that touch files: Usage of an active snapshot, Mounts of one on
// remote layers).
template <class Req, class Resp>
struct UnaryMethod {
  using Request = void (AsyncService::*)(
      grpc::ServerContext*, Req*, grpc::ServerAsyncResponseWriter<Resp>*,
      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  const char* name;
  Request request;
  std::function<bool(const Req&)> offload;
  // Runs the call; `ctx` tells whether its client is still there.
  std::function<absl::Status(grpc::ServerContext* ctx, const Req&, Resp*)>
      handler;
  // The snapshot key a request names, for the debug log; null: none.
  absl::string_view (*key)(const Req&) = nullptr;
};

// One unary call. Events: the arrival (request tag), the reply sent (the
// same tag again) and gRPC's done notification (the client may cancel
// while an offloaded call waits: ServerContext::IsCancelled is valid only
// with it), which another queue thread may deliver before the arrival's
// Proceed returns. Deleted after the last of them.
template <class Req, class Resp>
class UnaryCall final : public Tag {
 public:
  UnaryCall(Host* host, const UnaryMethod<Req, Resp>* method,
            grpc::ServerCompletionQueue* cq)
      : host_(host), method_(method), cq_(cq), responder_(&ctx_), done_(this) {
    ctx_.AsyncNotifyWhenDone(&done_);
    (host_->async_service()->*method_->request)(&ctx_, &req_, &responder_, cq_,
                                                cq_, this);
  }

  void Proceed(bool ok) override {
    if (replying_) {
      if (owed_) host_->ReplySent();
      return Release();
    }
    if (!ok) {  // shutting down: no call arrived, no done notification
      delete this;
      return;
    }
    replying_ = true;
    if (host_->Stopping()) {
      // Arrived as the queue shuts down: no operation may start on it, not
      // even the next call's request. Cancelled, so that its done
      // notification comes and releases the rest.
      ctx_.TryCancel();
      return Release();
    }
    new UnaryCall(host_, method_, cq_);  // be ready for the next call
    start_ = absl::Now();
    if (!method_->offload || !method_->offload(req_)) return Run();
    if (!host_->Offload(
            [this] {
              owed_ = true;
              host_->ReplyOwed();
              Run();
            },
            [this] { Drop(); })) {
      responder_.Finish(resp_,
                        host_->Finish(method_->name, Key(), start_,
                                      host_->Refused(method_->name)),
                        this);
    }
  }

 private:
  class Done final : public Tag {
   public:
    explicit Done(UnaryCall* call) : call_(call) {}
    void Proceed(bool) override { call_->Release(); }

   private:
    UnaryCall* call_;
  };

  void Run() {
    absl::Status status = method_->handler(&ctx_, req_, &resp_);
    responder_.Finish(
        resp_, host_->Finish(method_->name, Key(), start_, status), this);
  }

  // Still queued when the pool stopped taking calls (shutdown): refused as
  // one arriving then.
  void Drop() {
    responder_.Finish(resp_,
                      host_->Finish(method_->name, Key(), start_,
                                    host_->Refused(method_->name)),
                      this);
  }

  absl::string_view Key() const {
    return method_->key != nullptr ? method_->key(req_) : absl::string_view();
  }

  void Release() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  Host* const host_;
  const UnaryMethod<Req, Resp>* const method_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  Req req_;
  Resp resp_;
  grpc::ServerAsyncResponseWriter<Resp> responder_;
  Done done_;
  bool replying_ = false;
  bool owed_ = false;  // ran on the pool: ReplySent() when the reply went
  // The reply and the done notification. A call that never arrived (the
  // server shut down) is deleted directly and gets no done notification.
  std::atomic<int> refs_{2};
  absl::Time start_;
};

// One List call: each reply message is made when the previous one has been
// sent, so the client reads one while the next is made (a client that
// stops reading holds only its own call); the last goes out with the
// status.
class ListCall final : public Tag {
 public:
  // Makes one call's next reply message into `out`: true while more may
  // follow; on false `out` holds the last Infos (perhaps none).
  using Pager = std::function<absl::StatusOr<bool>(
      snapshots_v1::ListSnapshotsResponse* out)>;
  // A request's pager, and where it runs: inline on the queue thread, or
  // on the Host's pool of slow Lists when `offload` (filters with ~=
  // regexps, which may take seconds on one record: the queue thread
  // answers every read).
  struct Pages {
    Pager next;
    bool offload = false;
  };
  // The pages of a request (errors: a bad filter).
  using OpenPager = std::function<absl::StatusOr<Pages>(
      const snapshots_v1::ListSnapshotsRequest&)>;

  ListCall(Host* host, const OpenPager* open_pager,
           grpc::ServerCompletionQueue* cq)
      : host_(host), open_pager_(open_pager), cq_(cq), writer_(&ctx_) {
    host_->async_service()->RequestList(&ctx_, &req_, &writer_, cq_, cq_,
                                        this);
  }
  ~ListCall() override {
    if (counted_) host_->ListEnded();
  }

  void Proceed(bool ok) override {
    switch (state_) {
      case State::kWaiting:
        if (!ok || host_->Stopping()) {  // as UnaryCall::Proceed
          if (ok) ctx_.TryCancel();      // a call arrived: its client is told
          delete this;
          return;
        }
        new ListCall(host_, open_pager_, cq_);
        start_ = absl::Now();
        state_ = State::kWriting;
        if (absl::Status started = host_->ListStarted(); !started.ok()) {
          return Close(started);
        }
        counted_ = true;
        if (absl::StatusOr<Pages> pages = (*open_pager_)(req_); pages.ok()) {
          pages_ = *std::move(pages);
        } else {
          return Close(pages.status());
        }
        return Next();
      case State::kWriting:
        if (!ok || host_->Stopping()) {
          // The stream is dead (its client went away, or the server shut
          // down and cancelled it): nothing more can be sent, and no
          // operation is pending on it.
          host_->Finish("List", "", start_,
                        absl::CancelledError("List: the stream was closed"));
          delete this;
          return;
        }
        return Next();
      case State::kClosing:
        delete this;
        return;
    }
  }

 private:
  enum class State { kWaiting, kWriting, kClosing };

  // The next message, made here or on the pool of slow Lists. One
  // operation at a time is pending on the call, so its state passes from
  // thread to thread with the queue's events.
  void Next() {
    if (!pages_.offload) return MakeNext();
    absl::Status queued = host_->OffloadListPage(
        [this] { MakeNext(); },
        [this](const absl::Status& status) { Close(status); });
    if (!queued.ok()) Close(queued);
  }

  // Writes serialize the message at once: one is reused.
  void MakeNext() {
    message_.Clear();
    absl::StatusOr<bool> more = pages_.next(&message_);
    if (!more.ok()) return Close(more.status());
    if (*more) {
      writer_.Write(message_, this);
      return;
    }
    state_ = State::kClosing;
    grpc::Status ok = host_->Finish("List", "", start_, absl::OkStatus());
    if (message_.info_size() > 0) {
      writer_.WriteAndFinish(message_, grpc::WriteOptions(), ok, this);
    } else {
      writer_.Finish(ok, this);
    }
  }

  void Close(const absl::Status& status) {
    state_ = State::kClosing;
    writer_.Finish(host_->Finish("List", "", start_, status), this);
  }

  Host* const host_;
  const OpenPager* const open_pager_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  snapshots_v1::ListSnapshotsRequest req_;
  grpc::ServerAsyncWriter<snapshots_v1::ListSnapshotsResponse> writer_;
  State state_ = State::kWaiting;
  Pages pages_;
  snapshots_v1::ListSnapshotsResponse message_;
  absl::Time start_;
  bool counted_ = false;  // ListStarted: ListEnded when deleted
};

}  // namespace service_calls
}  // namespace snapshotter

#endif  // SNAPSHOTTER_SERVICE_CALLS_H_
