// The Snapshots gRPC service.
#include "snapshotter/service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
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
std::function<absl::Status()> CallAlive(grpc::ServerContext* ctx) {
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

SnapshotsService::SnapshotsService(Snapshotter* snapshotter,
                                   RpcObserver* observer)
    : snapshotter_(snapshotter), observer_(observer) {}

grpc::Status SnapshotsService::Finish(absl::string_view rpc, absl::Time start,
                                      const absl::Status& status) {
  if (observer_ != nullptr) {
    observer_->ObserveRpc(rpc, status.code(), absl::Now() - start);
  }
  return ToGrpcStatus(status);
}

grpc::Status SnapshotsService::Prepare(
    grpc::ServerContext* ctx, const snapshots_v1::PrepareSnapshotRequest* req,
    snapshots_v1::PrepareSnapshotResponse* resp) {
  absl::Time start = absl::Now();
  ScopedCallCheck alive(CallAlive(ctx));
  auto mounts = snapshotter_->Prepare(req->key(), req->parent(),
                                      ToLabels(req->labels()));
  if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
  LogMutation("Prepare",
              absl::StrCat("key=", Q(req->key()), " parent=", Q(req->parent())),
              mounts.status());
  return Finish("Prepare", start, mounts.status());
}

grpc::Status SnapshotsService::View(
    grpc::ServerContext* ctx, const snapshots_v1::ViewSnapshotRequest* req,
    snapshots_v1::ViewSnapshotResponse* resp) {
  absl::Time start = absl::Now();
  ScopedCallCheck alive(CallAlive(ctx));
  auto mounts =
      snapshotter_->View(req->key(), req->parent(), ToLabels(req->labels()));
  if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
  LogMutation("View",
              absl::StrCat("key=", Q(req->key()), " parent=", Q(req->parent())),
              mounts.status());
  return Finish("View", start, mounts.status());
}

grpc::Status SnapshotsService::Mounts(grpc::ServerContext*,
                                      const snapshots_v1::MountsRequest* req,
                                      snapshots_v1::MountsResponse* resp) {
  absl::Time start = absl::Now();
  auto mounts = snapshotter_->Mounts(req->key());
  if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
  return Finish("Mounts", start, mounts.status());
}

grpc::Status SnapshotsService::Commit(
    grpc::ServerContext* ctx, const snapshots_v1::CommitSnapshotRequest* req,
    google::protobuf::Empty*) {
  absl::Time start = absl::Now();
  ScopedCallCheck alive(CallAlive(ctx));
  absl::Status s =
      snapshotter_->Commit(req->name(), req->key(), ToLabels(req->labels()));
  LogMutation("Commit",
              absl::StrCat("key=", Q(req->key()), " name=", Q(req->name())),
              s);
  return Finish("Commit", start, s);
}

grpc::Status SnapshotsService::Remove(
    grpc::ServerContext* ctx, const snapshots_v1::RemoveSnapshotRequest* req,
    google::protobuf::Empty*) {
  absl::Time start = absl::Now();
  ScopedCallCheck alive(CallAlive(ctx));
  absl::Status s = snapshotter_->Remove(req->key());
  LogMutation("Remove", absl::StrCat("key=", Q(req->key())), s);
  return Finish("Remove", start, s);
}

grpc::Status SnapshotsService::Stat(
    grpc::ServerContext*, const snapshots_v1::StatSnapshotRequest* req,
    snapshots_v1::StatSnapshotResponse* resp) {
  absl::Time start = absl::Now();
  auto info = snapshotter_->Stat(req->key());
  if (info.ok()) ToProtoInfo(*info, resp->mutable_info());
  return Finish("Stat", start, info.status());
}

grpc::Status SnapshotsService::Update(
    grpc::ServerContext* ctx, const snapshots_v1::UpdateSnapshotRequest* req,
    snapshots_v1::UpdateSnapshotResponse* resp) {
  absl::Time start = absl::Now();
  ScopedCallCheck alive(CallAlive(ctx));
  Info info;
  info.name = req->info().name();
  info.parent = req->info().parent();
  info.kind = static_cast<Kind>(req->info().kind());
  info.labels = ToLabels(req->info().labels());
  std::vector<std::string> paths(req->update_mask().paths().begin(),
                                 req->update_mask().paths().end());
  auto updated = snapshotter_->Update(info, paths);
  if (updated.ok()) ToProtoInfo(*updated, resp->mutable_info());
  LogMutation("Update", absl::StrCat("key=", Q(info.name)), updated.status());
  return Finish("Update", start, updated.status());
}

grpc::Status SnapshotsService::List(
    grpc::ServerContext* ctx, const snapshots_v1::ListSnapshotsRequest* req,
    grpc::ServerWriter<snapshots_v1::ListSnapshotsResponse>* writer) {
  absl::Time start = absl::Now();
  std::vector<std::string> filters(req->filters().begin(),
                                   req->filters().end());
  auto filter = SnapshotFilter::Parse(filters);
  if (!filter.ok()) return Finish("List", start, filter.status());
  constexpr int kBatch = 100;
  snapshots_v1::ListSnapshotsResponse batch;
  // Cancellation is checked per batch: IsCancelled() costs ~20us a call.
  auto flush = [&]() -> absl::Status {
    if (batch.info_size() == 0) return absl::OkStatus();
    if (ctx->IsCancelled()) return absl::CancelledError("List cancelled");
    if (!writer->Write(batch)) {
      return absl::CancelledError("List: client went away");
    }
    batch.Clear();
    return absl::OkStatus();
  };
  absl::Status s = snapshotter_->Walk(*filter, [&](const Info& info) {
    ToProtoInfo(info, batch.add_info());
    return batch.info_size() >= kBatch ? flush() : absl::OkStatus();
  });
  if (s.ok()) s = flush();
  return Finish("List", start, s);
}

grpc::Status SnapshotsService::Usage(grpc::ServerContext*,
                                     const snapshots_v1::UsageRequest* req,
                                     snapshots_v1::UsageResponse* resp) {
  absl::Time start = absl::Now();
  auto usage = snapshotter_->GetUsage(req->key());
  if (usage.ok()) {
    resp->set_size(usage->size);
    resp->set_inodes(usage->inodes);
  }
  return Finish("Usage", start, usage.status());
}

grpc::Status SnapshotsService::Cleanup(grpc::ServerContext*,
                                       const snapshots_v1::CleanupRequest*,
                                       google::protobuf::Empty*) {
  absl::Time start = absl::Now();
  auto removed = snapshotter_->Cleanup();
  LogMutation("Cleanup",
              absl::StrCat("removed=", removed.ok() ? *removed : 0),
              removed.status());
  return Finish("Cleanup", start, removed.status());
}

}  // namespace snapshotter
