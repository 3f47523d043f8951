// The Snapshots gRPC service.
#include "snapshotter/service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "base/status_macros.h"
#include "snapshotter/call_check.h"

namespace snapshotter {
namespace {

Labels ToLabels(const google::protobuf::Map<std::string, std::string>& in) {
  return Labels(in.begin(), in.end());
}

void ToProtoMounts(
    const std::vector<Mount>& mounts,
    google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const Mount& m : mounts) {
    containerd::types::Mount* pm = out->Add();
    pm->set_type(m.type);
    pm->set_source(m.source);
    pm->set_target(m.target);
    for (const std::string& o : m.options) pm->add_options(o);
  }
}

void ToProtoTime(absl::Time t, google::protobuf::Timestamp* out) {
  timespec ts = absl::ToTimespec(t);
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

// About the serialized size of `info` (a List message is cut by it).
size_t EstimatedBytes(const Info& info) {
  constexpr size_t kFixed = 48;     // kind, timestamps, tags and lengths
  constexpr size_t kPerLabel = 8;   // map entry tags and lengths
  size_t bytes = kFixed + info.name.size() + info.parent.size();
  for (const auto& [k, v] : info.labels) bytes += kPerLabel + k.size() + v.size();
  return bytes;
}

void ToProtoInfo(const Info& info, snapshots_v1::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  out->set_kind(static_cast<snapshots_v1::Kind>(info.kind));
  ToProtoTime(info.created, out->mutable_created_at());
  ToProtoTime(info.updated, out->mutable_updated_at());
  for (const auto& [k, v] : info.labels) (*out->mutable_labels())[k] = v;
}

// Log-safe rendering of a key (quoted, cut at a sane length).
std::string Q(absl::string_view s) {
  constexpr size_t kMax = 256;
  if (s.size() > kMax) return absl::StrCat("\"", s.substr(0, kMax), "...\"");
  return absl::StrCat("\"", s, "\"");
}

void LogMutation(absl::string_view rpc, absl::string_view detail,
                 const absl::Status& status) {
  if (status.ok()) {
    LOG(INFO) << rpc << " " << detail << " result=ok";
  } else {
    LOG(INFO) << rpc << " " << detail << " result="
              << absl::StatusCodeToString(status.code()) << " error=\""
              << status.message() << "\"";
  }
}

// The liveness of a mutation's call, asked by the core after it waited for
// the store (call_check.h): a client that gave up gets no change.
std::function<absl::Status()> CallAlive(grpc::ServerContextBase* ctx) {
  return [ctx]() -> absl::Status {
    if (ctx == nullptr) return absl::OkStatus();
    if (ctx->deadline() <= std::chrono::system_clock::now()) {
      return absl::DeadlineExceededError(
          "the client's deadline passed before the call could run; nothing "
          "was changed");
    }
    if (ctx->IsCancelled()) {
      return absl::CancelledError(
          "the client cancelled the call before it could run; nothing was "
          "changed");
    }
    return absl::OkStatus();
  };
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// One List call: the matching Infos, packed into messages of about
// Options::list_message_bytes, written one after the other as the client
// reads them (a client that stops reading holds only its own call).
class SnapshotsService::ListReactor final
    : public grpc::ServerWriteReactor<snapshots_v1::ListSnapshotsResponse> {
 public:
  ListReactor(SnapshotsService* service,
              const snapshots_v1::ListSnapshotsRequest& req)
      : service_(service), start_(absl::Now()) {
    absl::Status collected = Collect(req);
    if (!collected.ok()) {
      Finish(service_->Finish("List", start_, collected));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(service_->Finish(
          "List", start_, absl::CancelledError("List: client went away")));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Collect(const snapshots_v1::ListSnapshotsRequest& req) {
    std::vector<std::string> filters(req.filters().begin(),
                                     req.filters().end());
    ASSIGN_OR_RETURN(SnapshotFilter filter, SnapshotFilter::Parse(filters));
    const size_t limit = service_->options_.list_message_bytes;
    size_t bytes = 0;
    return service_->snapshotter_->Walk(filter, [&](const Info& info) {
      if (messages_.empty() || bytes >= limit) {
        messages_.emplace_back();
        bytes = 0;
      }
      ToProtoInfo(info, messages_.back().add_info());
      bytes += EstimatedBytes(info);
      return absl::OkStatus();
    });
  }

  // Writes the next message; the last one goes out with the status.
  void Next() {
    if (next_ + 1 < messages_.size()) {
      StartWrite(&messages_[next_++]);
      return;
    }
    grpc::Status ok = service_->Finish("List", start_, absl::OkStatus());
    if (next_ < messages_.size()) {
      StartWriteAndFinish(&messages_[next_++], grpc::WriteOptions(), ok);
    } else {
      Finish(ok);
    }
  }

  SnapshotsService* const service_;
  const absl::Time start_;
  std::vector<snapshots_v1::ListSnapshotsResponse> messages_;
  size_t next_ = 0;
};

SnapshotsService::SnapshotsService(Snapshotter* snapshotter,
                                   RpcObserver* observer)
    : SnapshotsService(snapshotter, observer, Options()) {}

SnapshotsService::SnapshotsService(Snapshotter* snapshotter,
                                   RpcObserver* observer, Options options)
    : snapshotter_(snapshotter),
      observer_(observer),
      options_(options),
      pool_(options.max_write_threads, options.max_queued_writes) {}

grpc::Status SnapshotsService::Finish(absl::string_view rpc, absl::Time start,
                                      const absl::Status& status) {
  if (observer_ != nullptr) {
    observer_->ObserveRpc(rpc, status.code(), absl::Now() - start);
  }
  return ToGrpcStatus(status);
}

grpc::ServerUnaryReactor* SnapshotsService::Answer(
    grpc::CallbackServerContext* ctx, absl::string_view rpc, absl::Time start,
    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(Finish(rpc, start, status));
  return reactor;
}

grpc::ServerUnaryReactor* SnapshotsService::RunMutation(
    grpc::CallbackServerContext* ctx, absl::string_view rpc,
    std::function<absl::Status()> mutation) {
  absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  bool queued = pool_.TrySubmit(
      [this, ctx, reactor, rpc, start, mutation = std::move(mutation)] {
        absl::Status status;
        {
          ScopedCallCheck alive(CallAlive(ctx));
          status = mutation();
        }
        reactor->Finish(Finish(rpc, start, status));
      });
  if (!queued) {
    LOG_EVERY_N(WARNING, 100)
        << rpc << " refused: every one of the " << options_.max_write_threads
        << " write threads is busy and " << options_.max_queued_writes
        << " calls wait (logged every 100 refusals)";
    reactor->Finish(Finish(
        rpc, start,
        absl::ResourceExhaustedError(absl::StrCat(
            "too many mutations in flight; nothing was changed, retry "
            "later (", rpc, ")"))));
  }
  return reactor;
}

grpc::ServerUnaryReactor* SnapshotsService::Prepare(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::PrepareSnapshotRequest* req,
    snapshots_v1::PrepareSnapshotResponse* resp) {
  return RunMutation(ctx, "Prepare", [this, req, resp] {
    auto mounts = snapshotter_->Prepare(req->key(), req->parent(),
                                        ToLabels(req->labels()));
    if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
    LogMutation(
        "Prepare",
        absl::StrCat("key=", Q(req->key()), " parent=", Q(req->parent())),
        mounts.status());
    return mounts.status();
  });
}

grpc::ServerUnaryReactor* SnapshotsService::View(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::ViewSnapshotRequest* req,
    snapshots_v1::ViewSnapshotResponse* resp) {
  return RunMutation(ctx, "View", [this, req, resp] {
    auto mounts =
        snapshotter_->View(req->key(), req->parent(), ToLabels(req->labels()));
    if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
    LogMutation(
        "View",
        absl::StrCat("key=", Q(req->key()), " parent=", Q(req->parent())),
        mounts.status());
    return mounts.status();
  });
}

grpc::ServerUnaryReactor* SnapshotsService::Mounts(
    grpc::CallbackServerContext* ctx, const snapshots_v1::MountsRequest* req,
    snapshots_v1::MountsResponse* resp) {
  absl::Time start = absl::Now();
  auto mounts = snapshotter_->Mounts(req->key());
  if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
  return Answer(ctx, "Mounts", start, mounts.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Commit(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::CommitSnapshotRequest* req, google::protobuf::Empty*) {
  return RunMutation(ctx, "Commit", [this, req] {
    absl::Status s =
        snapshotter_->Commit(req->name(), req->key(), ToLabels(req->labels()));
    LogMutation("Commit",
                absl::StrCat("key=", Q(req->key()), " name=", Q(req->name())),
                s);
    return s;
  });
}

grpc::ServerUnaryReactor* SnapshotsService::Remove(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::RemoveSnapshotRequest* req, google::protobuf::Empty*) {
  return RunMutation(ctx, "Remove", [this, req] {
    absl::Status s = snapshotter_->Remove(req->key());
    LogMutation("Remove", absl::StrCat("key=", Q(req->key())), s);
    return s;
  });
}

grpc::ServerUnaryReactor* SnapshotsService::Stat(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::StatSnapshotRequest* req,
    snapshots_v1::StatSnapshotResponse* resp) {
  absl::Time start = absl::Now();
  auto info = snapshotter_->Stat(req->key());
  if (info.ok()) ToProtoInfo(*info, resp->mutable_info());
  return Answer(ctx, "Stat", start, info.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Update(
    grpc::CallbackServerContext* ctx,
    const snapshots_v1::UpdateSnapshotRequest* req,
    snapshots_v1::UpdateSnapshotResponse* resp) {
  return RunMutation(ctx, "Update", [this, req, resp] {
    Info info;
    info.name = req->info().name();
    info.parent = req->info().parent();
    info.kind = static_cast<Kind>(req->info().kind());
    info.labels = ToLabels(req->info().labels());
    std::vector<std::string> paths(req->update_mask().paths().begin(),
                                   req->update_mask().paths().end());
    auto updated = snapshotter_->Update(info, paths);
    if (updated.ok()) ToProtoInfo(*updated, resp->mutable_info());
    LogMutation("Update", absl::StrCat("key=", Q(info.name)),
                updated.status());
    return updated.status();
  });
}

grpc::ServerWriteReactor<snapshots_v1::ListSnapshotsResponse>*
SnapshotsService::List(grpc::CallbackServerContext*,
                       const snapshots_v1::ListSnapshotsRequest* req) {
  return new ListReactor(this, *req);
}

grpc::ServerUnaryReactor* SnapshotsService::Usage(
    grpc::CallbackServerContext* ctx, const snapshots_v1::UsageRequest* req,
    snapshots_v1::UsageResponse* resp) {
  absl::Time start = absl::Now();
  auto usage = snapshotter_->GetUsage(req->key());
  if (usage.ok()) {
    resp->set_size(usage->size);
    resp->set_inodes(usage->inodes);
  }
  return Answer(ctx, "Usage", start, usage.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Cleanup(
    grpc::CallbackServerContext* ctx, const snapshots_v1::CleanupRequest*,
    google::protobuf::Empty*) {
  return RunMutation(ctx, "Cleanup", [this] {
    auto removed = snapshotter_->Cleanup();
    LogMutation("Cleanup",
                absl::StrCat("removed=", removed.ok() ? *removed : 0),
                removed.status());
    return removed.status();
  });
}

}  // namespace snapshotter
