// The Snapshots gRPC service.
#include "snapshotter/service.h"

#include <chrono>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/request_log.h"
#include "base/status_macros.h"
#include "glog/logging.h"
#include "snapshotter/call_check.h"

namespace snapshotter {
namespace {

// How long a message of a List with ~= regexps is looked for before it is
// sent as it is, so the Lists waiting for the pool of slow Lists take turns.
constexpr absl::Duration kSlowListPageTime = absl::Milliseconds(50);

// A List refused, or dropped unstarted, because the daemon is stopping.
absl::Status ListRefusedAtStop() {
  return absl::UnavailableError(
      "List: the daemon is shutting down; retry on its successor");
}

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

void ToProtoTime(int64_t unix_ns, google::protobuf::Timestamp* out) {
  timespec ts = absl::ToTimespec(absl::FromUnixNanos(unix_ns));
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

// About the serialized size of `info` (a List message is cut by it).
size_t EstimatedBytes(const InfoView& info) {
  constexpr size_t kFixed = 48;     // kind, timestamps, tags and lengths
  constexpr size_t kPerLabel = 8;   // map entry tags and lengths
  size_t bytes = kFixed + info.name.size() + info.parent.size();
  for (const auto& [k, v] : *info.labels)
    bytes += kPerLabel + k->size() + v->size();
  return bytes;
}

void ToProtoInfo(const InfoView& info, snapshots_v1::Info* out) {
  out->set_name(info.name.data(), info.name.size());
  out->set_parent(info.parent.data(), info.parent.size());
  out->set_kind(static_cast<snapshots_v1::Kind>(info.kind));
  ToProtoTime(info.created_ns, out->mutable_created_at());
  ToProtoTime(info.updated_ns, out->mutable_updated_at());
  auto& labels = *out->mutable_labels();
  for (const auto& [k, v] : *info.labels) labels[*k] = *v;
}

void ToProtoInfo(const Info& info, snapshots_v1::Info* out) {
  InfoView::LabelRefs labels;
  ToProtoInfo(InfoView::Of(info, &labels), out);
}

// Log-safe rendering of a key (quoted, escaped so that it cannot forge a
// line or a field, cut at a sane length).
std::string Q(absl::string_view s) {
  constexpr size_t kMax = 256;
  if (s.size() > kMax) return absl::StrCat("\"", absl::CEscape(s.substr(0, kMax)), "...\"");
  return absl::StrCat("\"", absl::CEscape(s), "\"");
}

void LogMutation(absl::string_view rpc, absl::string_view detail,
                 const absl::Status& status) {
  if (status.ok()) {
    REQUEST_LOG_INFO << rpc << " " << detail << " result=ok";
  } else {
    REQUEST_LOG_INFO << rpc << " " << detail
                     << " result=" << absl::StatusCodeToString(status.code())
                     << " error=" << Q(status.message());
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

// Runs `fn` with the liveness of `ctx`'s call installed (call_check.h).
template <class Fn>
auto Alive(grpc::ServerContext* ctx, Fn fn) {
  ScopedCallCheck alive(CallAlive(ctx));
  return fn();
}

// The key a request names (for the debug log of finished RPCs).
template <class Req>
absl::string_view KeyOf(const Req& req) {
  return req.key();
}

bool Never(const google::protobuf::Message&) { return false; }
bool Always(const google::protobuf::Message&) { return true; }

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  absl::string_view message = status.message();
  std::string cut;
  if (message.size() > kMaxErrorMessageBytes) {
    size_t n = kMaxErrorMessageBytes - 3;
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
    cut = absl::StrCat(message.substr(0, n), "...");
    message = cut;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(message));
}

SnapshotsService::SnapshotsService(Snapshotter* snapshotter,
                                   RpcObserver* observer)
    : SnapshotsService(snapshotter, observer, Options()) {}

SnapshotsService::SnapshotsService(Snapshotter* snapshotter,
                                   RpcObserver* observer, Options options)
    : snapshotter_(snapshotter),
      observer_(observer),
      options_(options),
      pool_(std::make_unique<CallPool>(options.max_write_threads,
                                       options.max_queued_writes)),
      slow_lists_(std::make_unique<CallPool>(
          std::max(1, options.slow_list_threads), options.max_lists)) {
  DefineMethods();
}

SnapshotsService::~SnapshotsService() { Stop(); }

void SnapshotsService::AddTo(grpc::ServerBuilder& builder) {
  builder.RegisterService(&async_);
  cq_ = builder.AddCompletionQueue();
}

void SnapshotsService::Start() {
  RequestCalls();
  for (int i = 0; i < std::max(1, options_.queue_threads); ++i) {
    threads_.emplace_back([this] {
      void* tag = nullptr;
      bool ok = false;
      while (cq_->Next(&tag, &ok)) {
        absl::ReaderMutexLock lock(&proceed_mu_);
        static_cast<service_calls::Tag*>(tag)->Proceed(ok);
      }
    });
  }
}

bool SnapshotsService::DrainMutations(absl::Time drain_until) {
  pool_->Stop(drain_until);
  // Nothing runs on the pool any more: the count only falls.
  bool taken = replies_mu_.LockWhenWithDeadline(
      absl::Condition(
          +[](int* owed) { return *owed == 0; }, &owed_replies_),
      drain_until);
  replies_mu_.Unlock();
  return taken;
}

bool SnapshotsService::FinishLists(absl::Time deadline) {
  absl::MutexLock lock(&replies_mu_);
  refuse_lists_ = true;
  bool finished = replies_mu_.AwaitWithDeadline(
      absl::Condition(
          +[](int* lists) { return *lists == 0; }, &lists_),
      deadline);
  if (!finished) cut_slow_lists_.store(true);
  return finished;
}

absl::Status SnapshotsService::ListStarted() {
  absl::MutexLock lock(&replies_mu_);
  if (refuse_lists_) return ListRefusedAtStop();
  if (lists_ >= options_.max_lists) {
    LOG_EVERY_N(WARNING, 100)
        << "List refused: " << options_.max_lists
        << " List calls already in progress, perhaps unread by their "
           "clients (logged every 100 refusals)";
    return absl::ResourceExhaustedError(absl::StrCat(
        "List: too many List calls in progress (", options_.max_lists,
        "); retry when one has finished"));
  }
  ++lists_;
  return absl::OkStatus();
}

void SnapshotsService::ListEnded() {
  absl::MutexLock lock(&replies_mu_);
  --lists_;
}

void SnapshotsService::ReplyOwed() {
  absl::MutexLock lock(&replies_mu_);
  ++owed_replies_;
}

void SnapshotsService::ReplySent() {
  absl::MutexLock lock(&replies_mu_);
  --owed_replies_;
}

void SnapshotsService::Stop(absl::Time drain_until) {
  if (stopped_ || cq_ == nullptr) return;
  stopped_ = true;
  // Queued calls run until `drain_until`, then are dropped (UNAVAILABLE);
  // running ones finish: their replies go to the queue, which is still up.
  pool_->Stop(drain_until);
  cut_slow_lists_.store(true);
  slow_lists_->Stop(drain_until);
  {
    absl::WriterMutexLock lock(&proceed_mu_);
    stopping_.store(true);
  }
  cq_->Shutdown();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool SnapshotsService::Offload(std::function<void()> run,
                               std::function<void()> drop) {
  return pool_->TrySubmit(std::move(run), std::move(drop));
}

absl::Status SnapshotsService::OffloadListPage(
    std::function<void()> run, std::function<void(const absl::Status&)> drop) {
  // Each List has at most one message waiting, so only a stopped pool
  // refuses one.
  if (slow_lists_->TrySubmit(std::move(run),
                             [drop] { drop(ListRefusedAtStop()); })) {
    return absl::OkStatus();
  }
  return slow_lists_->stopped()
             ? ListRefusedAtStop()
             : absl::ResourceExhaustedError(
                   "List: no thread to match its ~= filters (too many "
                   "waiting, or none could be started); retry later");
}

grpc::Status SnapshotsService::Finish(absl::string_view rpc,
                                      absl::string_view key, absl::Time start,
                                      const absl::Status& status) {
  absl::Duration took = absl::Now() - start;
  if (observer_ != nullptr) observer_->ObserveRpc(rpc, status.code(), took);
  // log_level=debug: one line per finished RPC; nothing is built otherwise.
  if (VLOG_IS_ON(1)) {
    std::string line = absl::StrCat("rpc=", rpc);
    if (!key.empty()) absl::StrAppend(&line, " key=", Q(key));
    absl::StrAppend(&line, " code=", absl::StatusCodeToString(status.code()),
                    " duration=", absl::FormatDuration(took));
    if (!status.ok()) absl::StrAppend(&line, " error=", Q(status.message()));
    LOG(INFO) << line;
  }
  return ToGrpcStatus(status);
}

absl::Status SnapshotsService::Refused(absl::string_view rpc) {
  if (pool_->stopped()) {
    return absl::UnavailableError(absl::StrCat(
        rpc, ": the daemon is shutting down; nothing was changed"));
  }
  LOG_EVERY_N(WARNING, 100)
      << rpc << " refused: " << options_.max_write_threads
      << " write threads busy and " << options_.max_queued_writes
      << " calls waiting (logged every 100 refusals)";
  return absl::ResourceExhaustedError(absl::StrCat(
      rpc, ": too many mutations in flight; nothing was changed, retry later"));
}

void SnapshotsService::RequestCalls() {
  grpc::ServerCompletionQueue* cq = cq_.get();
  new service_calls::UnaryCall(this, &prepare_, cq);
  new service_calls::UnaryCall(this, &view_, cq);
  new service_calls::UnaryCall(this, &mounts_, cq);
  new service_calls::UnaryCall(this, &commit_, cq);
  new service_calls::UnaryCall(this, &remove_, cq);
  new service_calls::UnaryCall(this, &stat_, cq);
  new service_calls::UnaryCall(this, &update_, cq);
  new service_calls::UnaryCall(this, &usage_, cq);
  new service_calls::UnaryCall(this, &cleanup_, cq);
  new service_calls::ListCall(this, &list_, cq);
}

absl::StatusOr<service_calls::ListCall::Pages> SnapshotsService::StartList(
    const snapshots_v1::ListSnapshotsRequest& req) {
  std::vector<std::string> filters(req.filters().begin(), req.filters().end());
  ASSIGN_OR_RETURN(SnapshotFilter filter, SnapshotFilter::Parse(filters));
  // Each message is built from the index after the last key seen, a batch
  // at a time under its read lock: a snapshot created or removed meanwhile
  // may or may not be listed, as with Walk. With ~= regexps, on the pool of
  // slow Lists, a message also ends after the batch that took it past
  // kSlowListPageTime (perhaps with no Info), so Lists waiting there take
  // turns.
  const bool slow = filter.HasRegexps();
  struct Cursor {
    SnapshotFilter filter;
    std::string after;
  };
  auto cursor = std::make_shared<Cursor>(Cursor{std::move(filter)});
  auto next = [this, cursor, slow](snapshots_v1::ListSnapshotsResponse* out)
      -> absl::StatusOr<bool> {
    Cursor& c = *cursor;
    const absl::Time page_start = slow ? absl::Now() : absl::InfinitePast();
    // At least one Info per message, whatever the size limit.
    size_t bytes = 0;
    bool full = false;
    while (!full) {
      VisitEnd end =
          snapshotter_->Visit(
              c.filter, c.after,
              [&](const InfoView& info) {
                ToProtoInfo(info, out->add_info());
                bytes += EstimatedBytes(info);
                full = bytes >= options_.list_message_bytes;
                return !full;
              },
              &cut_slow_lists_);
      if (slow && cut_slow_lists_.load()) {
        return absl::UnavailableError(
            "List: cut by the daemon's stop while matching its ~= filters; "
            "retry on its successor");
      }
      if (end.exhausted) return false;
      c.after = std::move(end.last_key);
      if (slow && absl::Now() - page_start > kSlowListPageTime) break;
    }
    return true;
  };
  return service_calls::ListCall::Pages{std::move(next), slow};
}

void SnapshotsService::DefineMethods() {
  using service_calls::AsyncService;
  // Prepare and View: a new snapshot and its mounts.
  auto create = [this](const char* rpc, bool view) {
    return [this, rpc, view](grpc::ServerContext* ctx, const auto& req,
                             auto* resp) {
      auto mounts = Alive(ctx, [&] {
        Labels labels = ToLabels(req.labels());
        return view ? snapshotter_->View(req.key(), req.parent(), labels)
                    : snapshotter_->Prepare(req.key(), req.parent(), labels);
      });
      if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
      LogMutation(rpc,
                  absl::StrCat("key=", Q(req.key()), " parent=",
                               Q(req.parent())),
                  mounts.status());
      return mounts.status();
    };
  };
  prepare_ = {"Prepare", &AsyncService::RequestPrepare, Always,
              create("Prepare", /*view=*/false), KeyOf};
  view_ = {"View", &AsyncService::RequestView, Always,
           create("View", /*view=*/true), KeyOf};
  // Mounts of a snapshot on remote layers refreshes the layer cache (file
  // I/O under its reload lock, which a Prepare may hold): on the pool then.
  mounts_ = {
      "Mounts", &AsyncService::RequestMounts,
      [this](const snapshots_v1::MountsRequest& req) {
        return snapshotter_->MountsRefreshes(req.key());
      },
      [this](grpc::ServerContext*, const snapshots_v1::MountsRequest& req,
             snapshots_v1::MountsResponse* resp) {
        auto mounts = snapshotter_->Mounts(req.key());
        if (mounts.ok()) ToProtoMounts(*mounts, resp->mutable_mounts());
        return mounts.status();
      },
      KeyOf};
  commit_ = {"Commit", &AsyncService::RequestCommit, Always,
             [this](grpc::ServerContext* ctx,
                    const snapshots_v1::CommitSnapshotRequest& req,
                    google::protobuf::Empty*) {
               absl::Status s = Alive(ctx, [&] {
                 return snapshotter_->Commit(req.name(), req.key(),
                                             ToLabels(req.labels()),
                                             req.parent());
               });
               LogMutation("Commit",
                           absl::StrCat("key=", Q(req.key()),
                                        " name=", Q(req.name()),
                                        req.parent().empty() ? "" : " parent=",
                                        req.parent().empty() ? "" : Q(req.parent())),
                           s);
               return s;
             },
             KeyOf};
  remove_ = {"Remove", &AsyncService::RequestRemove, Always,
             [this](grpc::ServerContext* ctx,
                    const snapshots_v1::RemoveSnapshotRequest& req,
                    google::protobuf::Empty*) {
               absl::Status s =
                   Alive(ctx, [&] { return snapshotter_->Remove(req.key()); });
               LogMutation("Remove", absl::StrCat("key=", Q(req.key())), s);
               return s;
             },
             KeyOf};
  stat_ = {
      "Stat", &AsyncService::RequestStat, Never,
      [this](grpc::ServerContext*, const snapshots_v1::StatSnapshotRequest& req,
             snapshots_v1::StatSnapshotResponse* resp) {
        auto info = snapshotter_->Stat(req.key());
        if (info.ok()) ToProtoInfo(*info, resp->mutable_info());
        return info.status();
      },
      KeyOf};
  update_ = {"Update", &AsyncService::RequestUpdate, Always,
             [this](grpc::ServerContext* ctx,
                    const snapshots_v1::UpdateSnapshotRequest& req,
                    snapshots_v1::UpdateSnapshotResponse* resp) {
               Info info;
               info.name = req.info().name();
               info.parent = req.info().parent();
               info.kind = static_cast<Kind>(req.info().kind());
               info.labels = ToLabels(req.info().labels());
               std::vector<std::string> paths(
                   req.update_mask().paths().begin(),
                   req.update_mask().paths().end());
               auto updated = Alive(
                   ctx, [&] { return snapshotter_->Update(info, paths); });
               if (updated.ok()) ToProtoInfo(*updated, resp->mutable_info());
               LogMutation("Update", absl::StrCat("key=", Q(info.name)),
                           updated.status());
               return updated.status();
             },
             [](const snapshots_v1::UpdateSnapshotRequest& req) {
               return absl::string_view(req.info().name());
             }};
  // Usage of an active snapshot walks its directory: on the pool.
  usage_ = {"Usage", &AsyncService::RequestUsage,
            [this](const snapshots_v1::UsageRequest& req) {
              auto info = snapshotter_->Stat(req.key());
              return info.ok() && info->kind == Kind::kActive;
            },
            [this](grpc::ServerContext*, const snapshots_v1::UsageRequest& req,
                   snapshots_v1::UsageResponse* resp) {
              auto usage = snapshotter_->GetUsage(req.key());
              if (usage.ok()) {
                resp->set_size(usage->size);
                resp->set_inodes(usage->inodes);
              }
              return usage.status();
            },
            KeyOf};
  cleanup_ = {"Cleanup", &AsyncService::RequestCleanup, Always,
              [this](grpc::ServerContext*, const snapshots_v1::CleanupRequest&,
                     google::protobuf::Empty*) {
                auto removed = snapshotter_->Cleanup();
                LogMutation(
                    "Cleanup",
                    absl::StrCat("removed=", removed.ok() ? *removed : 0),
                    removed.status());
                return removed.status();
              }};
  list_ = [this](const snapshots_v1::ListSnapshotsRequest& req) {
    return StartList(req);
  };
}

}  // namespace snapshotter
