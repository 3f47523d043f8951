// Tests for the gRPC edge over a real in-process channel: status codes on
// the wire, timestamps, List filters and batching, Update masks.
#include "snapshotter/service.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/filters.h"
#include "snapshotter/key_validation.h"

namespace snapshotter {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
// The stop flag a remove_all is given (unused by these tests).
using Stop = const std::atomic<bool>*;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(SnapshotsService::Options(), RemoveAll); }

  // Opens a snapshotter on a fresh root and serves it with `options`.
  void Start(SnapshotsService::Options options,
             decltype(Snapshotter::Options::remove_all) remove_all,
             RemoteLayers* remote = nullptr) {
    if (server_ != nullptr) TearDown();
    // Closed before its root is emptied: an open one's spare thread keeps
    // making directories there, which can leave half a store behind.
    service_.reset();
    sn_.reset();
    root_ = std::string(getenv("TEST_TMPDIR") ?: "/tmp") + "/svc-" +
            std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    RemoveAll(root_).IgnoreError();
    Snapshotter::Options opts;
    opts.root = root_;
    opts.remove_all = std::move(remove_all);
    opts.remote = remote;
    auto sn = Snapshotter::Open(opts);
    ASSERT_TRUE(sn.ok()) << sn.status();
    sn_ = *std::move(sn);
    service_ =
        std::make_unique<SnapshotsService>(sn_.get(), observer_, options);
    grpc::ServerBuilder builder;
    service_->AddTo(builder);
    server_ = builder.BuildAndStart();
    service_->Start();
    stub_ = snapshots_v1::Snapshots::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    if (server_ == nullptr) return;
    server_->Shutdown();
    service_->Stop();
    server_.reset();
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       snapshots_v1::PrepareSnapshotResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    snapshots_v1::PrepareSnapshotRequest req;
    req.set_key(key);
    req.set_parent(parent);
    snapshots_v1::PrepareSnapshotResponse local;
    return stub_->Prepare(&ctx, req, resp ? resp : &local);
  }
  // Prepares `key` with `count` labels of `bytes` bytes each.
  grpc::Status PrepareLabelled(const std::string& key, int count,
                               size_t bytes) {
    grpc::ClientContext ctx;
    snapshots_v1::PrepareSnapshotRequest req;
    req.set_key(key);
    for (int l = 0; l < count; ++l) {
      (*req.mutable_labels())["l" + std::to_string(l)] =
          std::string(bytes, 'x');
    }
    snapshots_v1::PrepareSnapshotResponse resp;
    return stub_->Prepare(&ctx, req, &resp);
  }
  grpc::Status Commit(const std::string& name, const std::string& key) {
    grpc::ClientContext ctx;
    snapshots_v1::CommitSnapshotRequest req;
    req.set_name(name);
    req.set_key(key);
    google::protobuf::Empty resp;
    return stub_->Commit(&ctx, req, &resp);
  }
  std::vector<std::string> List(const std::vector<std::string>& filters,
                                std::vector<size_t>* message_bytes = nullptr) {
    grpc::ClientContext ctx;
    snapshots_v1::ListSnapshotsRequest req;
    for (const auto& f : filters) req.add_filters(f);
    auto reader = stub_->List(&ctx, req);
    snapshots_v1::ListSnapshotsResponse resp;
    std::vector<std::string> names;
    while (reader->Read(&resp)) {
      for (const auto& info : resp.info()) names.push_back(info.name());
      if (message_bytes != nullptr) message_bytes->push_back(resp.ByteSizeLong());
    }
    last_list_status_ = reader->Finish();
    return names;
  }

  // `call()` again while the pool refuses it (a write thread is counted busy
  // until just after its previous reply left), bounded.
  template <class Call>
  grpc::Status WhenFree(Call call) {
    grpc::Status s = call();
    for (int i = 0; i < 200 && s.error_code() == grpc::RESOURCE_EXHAUSTED;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      s = call();
    }
    return s;
  }

  // A Remove issued without waiting for its reply.
  struct AsyncRemove {
    grpc::ClientContext ctx;
    snapshots_v1::RemoveSnapshotRequest req;
    google::protobuf::Empty resp;
    grpc::Status status;
    absl::Notification done;
  };
  // Removes `key` until its directory deletion is stuck (`stuck` notified
  // by the test's remove_all). A write thread is counted busy until just
  // after its reply left, so a call right after another may be refused:
  // such an attempt is repeated (bounded).
  std::unique_ptr<AsyncRemove> StartStuckRemove(const std::string& key,
                                                absl::Notification& stuck) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto call = std::make_unique<AsyncRemove>();
      call->req.set_key(key);
      AsyncRemove* c = call.get();
      stub_->async()->Remove(&c->ctx, &c->req, &c->resp,
                             [c](grpc::Status s) {
                               c->status = s;
                               c->done.Notify();
                             });
      while (!stuck.HasBeenNotified() &&
             !c->done.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
      }
      if (stuck.HasBeenNotified()) return call;
      EXPECT_EQ(c->status.error_code(), grpc::RESOURCE_EXHAUSTED);
    }
    ADD_FAILURE() << "the Remove of " << key << " never ran";
    return nullptr;
  }

  std::string root_;
  std::unique_ptr<Snapshotter> sn_;
  RpcObserver* observer_ = nullptr;  // for the next Start()
  std::unique_ptr<SnapshotsService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<snapshots_v1::Snapshots::Stub> stub_;
  grpc::Status last_list_status_;
};

TEST_F(ServiceTest, PrepareCommitStatOverTheWire) {
  snapshots_v1::PrepareSnapshotResponse resp;
  ASSERT_TRUE(Prepare("k8s.io/1/extract-1 sha256:aa", "", &resp).ok());
  ASSERT_EQ(resp.mounts_size(), 1);
  EXPECT_EQ(resp.mounts(0).type(), "bind");
  ASSERT_TRUE(Commit("sha256:aa", "k8s.io/1/extract-1 sha256:aa").ok());
  grpc::ClientContext ctx;
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("sha256:aa");
  snapshots_v1::StatSnapshotResponse stat;
  ASSERT_TRUE(stub_->Stat(&ctx, req, &stat).ok());
  EXPECT_EQ(stat.info().kind(), snapshots_v1::COMMITTED);
  EXPECT_GT(stat.info().created_at().seconds(), 1600000000);
  EXPECT_GE(stat.info().updated_at().seconds(),
            stat.info().created_at().seconds());
}

TEST_F(ServiceTest, ErrorCodesReachTheClient) {
  EXPECT_EQ(Prepare("a/../b", "").error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(Prepare("x", "missing").error_code(), grpc::NOT_FOUND);
  ASSERT_TRUE(Prepare("x", "").ok());
  grpc::Status dup = Prepare("x", "");
  EXPECT_EQ(dup.error_code(), grpc::ALREADY_EXISTS);
  EXPECT_THAT(dup.error_message(), HasSubstr("x"));
  ASSERT_TRUE(Commit("c", "x").ok());
  EXPECT_EQ(Commit("d", "c").error_code(), grpc::FAILED_PRECONDITION);
  ASSERT_TRUE(Prepare("y", "c").ok());
  grpc::ClientContext ctx;
  snapshots_v1::RemoveSnapshotRequest rm;
  rm.set_key("c");
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->Remove(&ctx, rm, &empty).error_code(),
            grpc::FAILED_PRECONDITION);
}

// Collects the lines glog writes while it is installed.
class CapturedLog : public google::LogSink {
 public:
  CapturedLog() { google::AddLogSink(this); }
  ~CapturedLog() override { google::RemoveLogSink(this); }
  void send(google::LogSeverity, const char*, const char*, int,
            const google::LogMessageTime&, const char* message,
            size_t length) override {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(message, length);
  }
  std::vector<std::string> All() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  // The lines about `rpc` (lines of the debug log start with "rpc=").
  std::vector<std::string> Of(absl::string_view rpc) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const std::string& l : lines_) {
      if (absl::StartsWith(l, absl::StrCat("rpc=", rpc, " "))) out.push_back(l);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

// log_level=debug (-v=1): one line per finished RPC, reads included; none
// at info.
TEST_F(ServiceTest, DebugLogsEveryFinishedRpc) {
  CapturedLog log;
  ASSERT_TRUE(Prepare("quiet", "").ok());
  EXPECT_THAT(log.Of("Prepare"), IsEmpty());

  const int saved_v = FLAGS_v;
  FLAGS_v = 1;
  ASSERT_TRUE(Prepare("a", "").ok());
  grpc::ClientContext ctx;
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("missing");
  snapshots_v1::StatSnapshotResponse resp;
  EXPECT_EQ(stub_->Stat(&ctx, req, &resp).error_code(), grpc::NOT_FOUND);
  List({});
  FLAGS_v = saved_v;

  EXPECT_THAT(log.Of("Prepare"),
              Contains(AllOf(StartsWith("rpc=Prepare key=\"a\" code=OK "
                                        "duration="),
                             Not(HasSubstr("error=")))));
  EXPECT_THAT(log.Of("Stat"),
              Contains(AllOf(StartsWith("rpc=Stat key=\"missing\" "
                                        "code=NOT_FOUND duration="),
                             HasSubstr(" error=\""))));
  EXPECT_THAT(log.Of("List"), Contains(StartsWith("rpc=List code=OK ")));
}

// A key (and the error text naming it) cannot forge a log line.
TEST_F(ServiceTest, MutationLogEscapesKeyAndErrorText) {
  CapturedLog log;
  grpc::ClientContext ctx;
  snapshots_v1::RemoveSnapshotRequest rm;
  rm.set_key("gone\nForged line");
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->Remove(&ctx, rm, &empty).error_code(), grpc::NOT_FOUND);
  int lines = 0;
  for (const std::string& line : log.All()) {
    if (!absl::StartsWith(line, "Remove ")) continue;
    ++lines;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_THAT(line, HasSubstr("key=\"gone\\nForged line\""));
  }
  EXPECT_EQ(lines, 1);
}

// Records "<rpc> <code>" for every RPC the service finishes.
class RecordingObserver : public RpcObserver {
 public:
  void ObserveRpc(absl::string_view rpc, absl::StatusCode code,
                  absl::Duration) override {
    absl::MutexLock lock(&mu_);
    seen_.push_back(absl::StrCat(rpc, " ", absl::StatusCodeToString(code)));
  }
  std::vector<std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> seen_;
};

// At shutdown a mutation still waiting for a write thread is answered
// UNAVAILABLE and never runs (its client went with the server); the one
// running finishes; Stop returns after it.
TEST_F(ServiceTest, StopAnswersQueuedMutationsUnavailableWithoutRunningThem) {
  absl::Notification stuck, release;
  RecordingObserver observer;
  observer_ = &observer;
  SnapshotsService::Options options;
  options.max_write_threads = 1;
  options.max_queued_writes = 1;
  ASSERT_NO_FATAL_FAILURE(Start(options, [&](const std::string& path, Stop) {
    if (!stuck.HasBeenNotified()) stuck.Notify();
    release.WaitForNotification();
    return RemoveAll(path);
  }));
  ASSERT_TRUE(WhenFree([&] { return Prepare("doomed", ""); }).ok());
  std::unique_ptr<AsyncRemove> remove = StartStuckRemove("doomed", stuck);
  ASSERT_NE(remove, nullptr);
  grpc::ClientContext qctx;
  snapshots_v1::PrepareSnapshotRequest qreq;
  qreq.set_key("queued");
  snapshots_v1::PrepareSnapshotResponse qresp;
  absl::Notification qdone;
  stub_->async()->Prepare(&qctx, &qreq, &qresp,
                          [&](grpc::Status) { qdone.Notify(); });
  // The queue's one place is taken once a further Prepare is refused.
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(Prepare("refused", "").error_code(), grpc::RESOURCE_EXHAUSTED);

  server_->Shutdown();
  std::thread stopper([&] { service_->Stop(); });
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::string> seen = observer.seen();
    if (std::find(seen.begin(), seen.end(), "Prepare UNAVAILABLE") !=
        seen.end()) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_THAT(observer.seen(), Contains("Prepare UNAVAILABLE"));
  release.Notify();
  stopper.join();
  qdone.WaitForNotification();
  remove->done.WaitForNotification();
  std::vector<std::string> seen = observer.seen();
  EXPECT_THAT(seen, Contains("Remove OK"));
  // "queued" never ran: no snapshot, no second OK, no run that found its
  // client gone (CANCELLED).
  EXPECT_EQ(sn_->Stat("queued").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "Prepare OK"), 1);
  EXPECT_THAT(seen, Not(Contains("Prepare CANCELLED")));
  server_.reset();
}

// The first step of a graceful stop: a mutation that arrives after it is
// refused UNAVAILABLE and changes nothing, reads answered inline still
// work, and the server then shuts down cleanly.
TEST_F(ServiceTest, DrainMutationsRefusesNewMutationsAndServesReads) {
  ASSERT_TRUE(WhenFree([&] { return Prepare("before", ""); }).ok());
  ASSERT_TRUE(WhenFree([&] { return Commit("base", "before"); }).ok());
  service_->DrainMutations(absl::Now() + absl::Seconds(5));

  grpc::Status refused = Prepare("after", "");
  EXPECT_EQ(refused.error_code(), grpc::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), HasSubstr("nothing was changed"));
  EXPECT_EQ(Commit("late", "before").error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(sn_->Stat("after").status().code(), absl::StatusCode::kNotFound);
  grpc::ClientContext ctx;
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("base");
  snapshots_v1::StatSnapshotResponse resp;
  EXPECT_TRUE(stub_->Stat(&ctx, req, &resp).ok());
  EXPECT_EQ(List({}), std::vector<std::string>{"base"});
  TearDown();  // Shutdown, Stop: the pool, already stopped, stops again
}

// The next step of a graceful stop: a List in progress (its client reading
// slowly) is let finish whole, a List that arrives meanwhile is refused
// before its first message; FinishLists returns once the first ended, or
// false at its deadline while a List still streams.
TEST_F(ServiceTest, FinishListsLetsListsInProgressEndAndRefusesNewOnes) {
  for (int i = 0; i < 400; ++i) {  // ~19 MB of List replies
    ASSERT_TRUE(PrepareLabelled("big-" + std::to_string(i), 16, 3000).ok());
  }
  grpc::ClientContext slow;
  auto reader = stub_->List(&slow, snapshots_v1::ListSnapshotsRequest());
  snapshots_v1::ListSnapshotsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));  // in progress
  int infos = resp.info_size();

  EXPECT_FALSE(service_->FinishLists(absl::Now() + absl::Milliseconds(100)));
  absl::Notification finished;
  bool all_ended = false;
  std::thread stopper([&] {
    all_ended = service_->FinishLists(absl::Now() + absl::Seconds(20));
    finished.Notify();
  });
  std::vector<std::string> refused = List({});
  EXPECT_TRUE(refused.empty());
  EXPECT_EQ(last_list_status_.error_code(), grpc::UNAVAILABLE);
  EXPECT_THAT(last_list_status_.error_message(), HasSubstr("shutting down"));
  EXPECT_FALSE(finished.HasBeenNotified());  // the slow List still streams

  while (reader->Read(&resp)) infos += resp.info_size();  // ends by itself
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(infos, 400);
  stopper.join();
  EXPECT_TRUE(all_ended);
}

// Every List that started is counted until it ended, however it ended: one
// its client cancelled part-way and one with a bad filter leave
// FinishLists nothing to wait for.
TEST_F(ServiceTest, FinishListsWaitsForNoListThatEnded) {
  for (int i = 0; i < 400; ++i) {  // many messages: a List stays open
    ASSERT_TRUE(PrepareLabelled("big-" + std::to_string(i), 16, 3000).ok());
  }
  {
    grpc::ClientContext cancelled;
    auto reader = stub_->List(&cancelled, snapshots_v1::ListSnapshotsRequest());
    snapshots_v1::ListSnapshotsResponse resp;
    ASSERT_TRUE(reader->Read(&resp));  // in progress
    cancelled.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::CANCELLED);
  }
  List({"name=big-7"});
  EXPECT_EQ(last_list_status_.error_code(), grpc::INVALID_ARGUMENT);
  // Bounded: the cancelled call's end reaches the server asynchronously.
  EXPECT_TRUE(service_->FinishLists(absl::Now() + absl::Seconds(10)));
}

// Lists whose clients never read hold their replies in memory: beyond
// max_lists of them a new List is refused at once (RESOURCE_EXHAUSTED), and
// once they ended a List is served again.
TEST_F(ServiceTest, ListsBeyondTheBoundAreRefused) {
  SnapshotsService::Options options;
  options.max_lists = 4;
  ASSERT_NO_FATAL_FAILURE(Start(options, RemoveAll));
  for (int i = 0; i < 100; ++i) {  // ~5 MB of List replies: a List stalls
    ASSERT_TRUE(PrepareLabelled("big-" + std::to_string(i), 16, 3000).ok());
  }
  struct Stalled {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<snapshots_v1::ListSnapshotsResponse>>
        reader;
  };
  std::vector<std::unique_ptr<Stalled>> stalled;
  for (int i = 0; i < options.max_lists; ++i) {
    auto s = std::make_unique<Stalled>();
    s->reader = stub_->List(&s->ctx, snapshots_v1::ListSnapshotsRequest());
    snapshots_v1::ListSnapshotsResponse resp;
    ASSERT_TRUE(s->reader->Read(&resp));  // started, then never read again
    stalled.push_back(std::move(s));
  }

  EXPECT_THAT(List({}), IsEmpty());
  EXPECT_EQ(last_list_status_.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(last_list_status_.error_message(),
              HasSubstr("too many List calls in progress (4)"));

  for (auto& s : stalled) {
    s->ctx.TryCancel();
    EXPECT_EQ(s->reader->Finish().error_code(), grpc::CANCELLED);
  }
  // Bounded: a cancelled call's end reaches the server asynchronously.
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) {
    names = List({});
    if (last_list_status_.error_code() != grpc::RESOURCE_EXHAUSTED) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(last_list_status_.ok()) << last_list_status_.error_message();
  EXPECT_EQ(names.size(), 100u);
}

TEST_F(ServiceTest, ListFiltersAndBatches) {
  for (int i = 0; i < 250; ++i) {
    ASSERT_TRUE(Prepare("snap-" + std::to_string(i), "").ok());
  }
  EXPECT_EQ(List({}).size(), 250u);
  EXPECT_TRUE(last_list_status_.ok());
  EXPECT_EQ(List({"name==snap-7"}), std::vector<std::string>{"snap-7"});
  // containerd's filters: "" matches everything, also OR-ed with others.
  EXPECT_EQ(List({""}).size(), 250u);
  EXPECT_EQ(List({"name==snap-7", ""}).size(), 250u);
  List({"name=snap-7"});
  EXPECT_EQ(last_list_status_.error_code(), grpc::INVALID_ARGUMENT);
}

// A List client that reads nothing (its stream stalls on flow control) must
// not hold up the reads and writes of other clients.
TEST_F(ServiceTest, ListClientThatStopsReadingBlocksNoOne) {
  for (int i = 0; i < 400; ++i) {  // ~19 MB of List replies
    ASSERT_TRUE(PrepareLabelled("big-" + std::to_string(i), 16, 3000).ok());
  }
  grpc::ClientContext stalled;
  auto reader = stub_->List(&stalled, snapshots_v1::ListSnapshotsRequest());
  absl::SleepFor(absl::Milliseconds(200));  // let the server fill the window

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("big-7");
  snapshots_v1::StatSnapshotResponse resp;
  EXPECT_TRUE(stub_->Stat(&ctx, req, &resp).ok());
  EXPECT_TRUE(Prepare("after-stalled-list", "").ok());
  stalled.TryCancel();
}

// A key of kMaxKeyBytes of pseudo-random 0s and 1s: "name~=1[01]{20}Y"
// makes RE2 give up its DFA and step its NFA over every byte (10-40 ms a
// selector here), so kMaxFilterSelectors of them take tens of seconds on
// it. The tests below cut such a List (FinishLists past its deadline).
std::string LongBinaryKey() {
  std::string key = "k8s.io/1/";
  uint32_t bits = 12345;
  while (key.size() < kMaxKeyBytes) {
    bits = bits * 1103515245 + 12345;
    key.push_back((bits >> 16) & 1 ? '1' : '0');
  }
  return key;
}

std::vector<std::string> SlowFilters() {
  return std::vector<std::string>(kMaxFilterSelectors, "name~=1[01]{20}Y");
}

// Such a List must not stall the store: it is matched on copies, outside
// the index's read lock, for which a mutation that commits meanwhile waits
// under the store's lock, and the store's probe (the systemd watchdog's,
// WatchdogSec=30) with it.
TEST_F(ServiceTest, SlowListFiltersStallNoStoreProbe) {
  ASSERT_TRUE(Prepare(LongBinaryKey(), "").ok());
  std::thread list([&] { EXPECT_THAT(List(SlowFilters()), IsEmpty()); });
  absl::SleepFor(absl::Milliseconds(300));  // the List is being matched
  std::thread prepare([&] { EXPECT_TRUE(sn_->Prepare("during", "", {}).ok()); });
  absl::SleepFor(absl::Milliseconds(300));  // its commit waits for the index

  absl::Time start = absl::Now();
  EXPECT_TRUE(sn_->CheckStore().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  prepare.join();
  EXPECT_FALSE(service_->FinishLists(absl::Now()));  // cuts it
  list.join();
}

// Nor hold the queue thread that answers every read (and the Lists
// without ~=): it makes its messages on the pool of slow Lists.
TEST_F(ServiceTest, SlowListFiltersBlockNoRead) {
  ASSERT_TRUE(Prepare(LongBinaryKey(), "").ok());
  ASSERT_TRUE(Prepare("short", "").ok());
  std::thread list([&] { EXPECT_THAT(List(SlowFilters()), IsEmpty()); });
  absl::SleepFor(absl::Milliseconds(300));  // the List is being matched

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("short");
  snapshots_v1::StatSnapshotResponse resp;
  grpc::Status stat = stub_->Stat(&ctx, req, &resp);
  EXPECT_TRUE(stat.ok()) << stat.error_code() << " " << stat.error_message();
  EXPECT_EQ(List({"name==short"}), std::vector<std::string>{"short"});
  EXPECT_FALSE(service_->FinishLists(absl::Now()));
  list.join();
}

// The stop lets Lists in progress finish (FinishLists), those with ~=
// regexps too; one still matching when FinishLists runs out of time stops
// at its next selector, UNAVAILABLE, instead of holding the stop for the
// rest of its matching (here tens of seconds, past TimeoutStopSec).
TEST_F(ServiceTest, FinishListsCutsASlowListAtItsDeadline) {
  ASSERT_TRUE(Prepare(LongBinaryKey(), "").ok());
  ASSERT_TRUE(Prepare("short", "").ok());
  sn_->StopLongWork();  // the stop's first step: not a reason to cut a List
  EXPECT_EQ(List({"name~=^sh"}), std::vector<std::string>{"short"});
  EXPECT_TRUE(last_list_status_.ok()) << last_list_status_.error_message();

  absl::Time ended;
  grpc::Status status;
  std::thread list([&] {
    EXPECT_THAT(List(SlowFilters()), IsEmpty());
    status = last_list_status_;
    ended = absl::Now();
  });
  absl::SleepFor(absl::Milliseconds(300));  // the List is being matched
  absl::Time deadline = absl::Now() + absl::Milliseconds(200);
  EXPECT_FALSE(service_->FinishLists(deadline));
  list.join();
  EXPECT_LT(ended - deadline, absl::Seconds(2));
  EXPECT_EQ(status.error_code(), grpc::UNAVAILABLE) << status.error_message();
}

// List packs its Infos by size: many small ones travel in one message, big
// ones in messages of about list_message_bytes (far below the 4 MiB a
// client accepts by default).
TEST_F(ServiceTest, ListPacksMessagesBySize) {
  SnapshotsService::Options options;
  options.list_message_bytes = 64 * 1024;
  ASSERT_NO_FATAL_FAILURE(Start(options, RemoveAll));
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(Prepare("small-" + std::to_string(i), "").ok());
  }
  std::vector<size_t> bytes;
  EXPECT_EQ(List({}, &bytes).size(), 300u);
  EXPECT_EQ(bytes.size(), 1u);

  for (int i = 0; i < 100; ++i) {  // ~16 KB each
    ASSERT_TRUE(PrepareLabelled("big-" + std::to_string(i), 8, 2000).ok());
  }
  bytes.clear();
  EXPECT_EQ(List({}, &bytes).size(), 400u);
  EXPECT_TRUE(last_list_status_.ok());
  ASSERT_GE(bytes.size(), 20u);  // 1.6 MB in messages of ~64 KiB
  for (size_t b : bytes) EXPECT_LT(b, 64u * 1024 + 20000);
}

// The pages of a List at their edges: exactly one index batch of matches
// (256), a filter matching nothing, and a size limit of 0 (one Info per
// message).
TEST_F(ServiceTest, ListPagesAtTheirEdges) {
  SnapshotsService::Options options;
  options.list_message_bytes = 0;
  ASSERT_NO_FATAL_FAILURE(Start(options, RemoveAll));
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(Prepare("k-" + std::to_string(1000 + i), "").ok());
  }
  std::vector<size_t> bytes;
  std::vector<std::string> names = List({}, &bytes);
  EXPECT_TRUE(last_list_status_.ok());
  ASSERT_EQ(names.size(), 256u);
  EXPECT_EQ(names.front(), "k-1000");
  EXPECT_EQ(names.back(), "k-1255");
  EXPECT_EQ(bytes.size(), 256u);
  EXPECT_TRUE(List({"name==nothing"}).empty());
  EXPECT_TRUE(last_list_status_.ok());

  options.list_message_bytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(Start(options, RemoveAll));
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(Prepare("k-" + std::to_string(1000 + i), "").ok());
  }
  bytes.clear();
  EXPECT_EQ(List({}, &bytes).size(), 256u);
  EXPECT_TRUE(last_list_status_.ok());
  EXPECT_EQ(bytes.size(), 1u);

  // Sparse matches, more than one index batch apart: one message.
  for (int i = 256; i < 700; ++i) {
    ASSERT_TRUE(Prepare("k-" + std::to_string(1000 + i), "").ok());
  }
  bytes.clear();
  EXPECT_EQ(List({"name~=^k-1(000|300|699)$"}, &bytes),
            (std::vector<std::string>{"k-1000", "k-1300", "k-1699"}));
  EXPECT_TRUE(last_list_status_.ok());
  EXPECT_EQ(bytes.size(), 1u);
  EXPECT_EQ(List({}).size(), 700u);
}

// A mutation stuck on the disk (here: deleting a removed snapshot's
// directory) holds a write thread, never the thread that answers reads;
// once every write thread is busy and the queue is full, a mutation is
// refused with RESOURCE_EXHAUSTED and changes nothing.
TEST_F(ServiceTest, StuckMutationBlocksNoReadAndFullPoolRefuses) {
  absl::Notification stuck, release;
  SnapshotsService::Options options;
  options.max_write_threads = 1;
  options.max_queued_writes = 0;
  ASSERT_NO_FATAL_FAILURE(Start(options, [&](const std::string& path, Stop) {
    if (!stuck.HasBeenNotified()) stuck.Notify();
    release.WaitForNotification();
    return RemoveAll(path);
  }));
  // The one write thread may still be returning from the previous call
  // when the next arrives (its reply is sent first): setup retries that.
  ASSERT_TRUE(WhenFree([&] { return Prepare("doomed", ""); }).ok());
  ASSERT_TRUE(WhenFree([&] { return Prepare("kept", ""); }).ok());

  std::unique_ptr<AsyncRemove> remove = StartStuckRemove("doomed", stuck);
  ASSERT_NE(remove, nullptr);

  grpc::ClientContext ctx;
  snapshots_v1::StatSnapshotRequest req;
  req.set_key("kept");
  snapshots_v1::StatSnapshotResponse stat;
  EXPECT_TRUE(stub_->Stat(&ctx, req, &stat).ok());
  EXPECT_EQ(List({}).size(), 1u);  // "doomed" is already gone
  grpc::Status refused = Prepare("refused", "");
  EXPECT_EQ(refused.error_code(), grpc::RESOURCE_EXHAUSTED);

  release.Notify();
  remove->done.WaitForNotification();
  EXPECT_TRUE(remove->status.ok()) << remove->status.error_message();
  EXPECT_EQ(List({}), std::vector<std::string>{"kept"});
  // The write thread frees its place just after the Remove's reply.
  EXPECT_TRUE(WhenFree([&] { return Prepare("accepted", ""); }).ok());
}

// Remote layers whose chains' mounts need a refresh: Prepares labelled
// "remote"=<name> create the layer <name>.
class RefreshingRemote : public RemoteLayers {
 public:
  absl::StatusOr<std::optional<RemoteLayer>> Intercept(
      absl::string_view, absl::string_view, ParentInfo, Records,
      const Labels& labels) override {
    auto it = labels.find("remote");
    if (it == labels.end()) return std::nullopt;
    return RemoteLayer{it->second, {{"remote.layer", "true"}}};
  }
  absl::StatusOr<bool> Populate(const FsDirMaker&, absl::string_view,
                                const RemoteLayer&) override {
    return false;
  }
  absl::Status PopulateActive(absl::string_view, const std::string&, const std::vector<Info>&,
                              const std::vector<std::string>&) override {
    return absl::OkStatus();
  }
  void Refresh() override {}
  bool Decorates(const std::vector<Info>& parents) const override {
    return !parents.empty() && parents[0].labels.count("remote.layer") > 0;
  }
  std::vector<std::string> OwnedLabels() const override { return {}; }
  std::vector<ReservedLabel> LabelsDroppedAtCreation() const override {
    return {};
  }
  absl::StatusOr<std::vector<Mount>> Decorate(
      const Info&, const std::vector<Info>&, Records,
      std::vector<Mount> mounts) override {
    return mounts;
  }
};

// Mounts of a snapshot on plain layers is a read from the index, answered
// while every write thread is busy; Mounts on remote layers refreshes
// their source and waits for a write thread (here: refused, none free).
TEST_F(ServiceTest, MountsOnPlainLayersIsAReadOnRemoteLayersOffloaded) {
  absl::Notification stuck, release;
  static RefreshingRemote remote;  // outlives the fixture's snapshotter
  SnapshotsService::Options options;
  options.max_write_threads = 1;
  options.max_queued_writes = 0;
  ASSERT_NO_FATAL_FAILURE(Start(
      options,
      [&](const std::string& path, Stop) {
        if (!stuck.HasBeenNotified()) stuck.Notify();
        release.WaitForNotification();
        return RemoveAll(path);
      },
      &remote));
  auto remote_layer = [&] {
    grpc::ClientContext ctx;
    snapshots_v1::PrepareSnapshotRequest req;
    req.set_key("extract");
    (*req.mutable_labels())["remote"] = "layer";
    snapshots_v1::PrepareSnapshotResponse resp;
    return stub_->Prepare(&ctx, req, &resp);
  };
  ASSERT_TRUE(WhenFree([&] { return Prepare("doomed", ""); }).ok());
  ASSERT_TRUE(WhenFree([&] { return Prepare("base-a", ""); }).ok());
  ASSERT_TRUE(WhenFree([&] { return Commit("base", "base-a"); }).ok());
  ASSERT_TRUE(WhenFree([&] { return Prepare("on-plain", "base"); }).ok());
  ASSERT_EQ(WhenFree(remote_layer).error_code(), grpc::ALREADY_EXISTS);
  ASSERT_TRUE(WhenFree([&] { return Prepare("on-remote", "layer"); }).ok());

  std::unique_ptr<AsyncRemove> remove = StartStuckRemove("doomed", stuck);
  ASSERT_NE(remove, nullptr);
  auto mounts = [&](const std::string& key) {
    grpc::ClientContext ctx;
    snapshots_v1::MountsRequest req;
    req.set_key(key);
    snapshots_v1::MountsResponse resp;
    return stub_->Mounts(&ctx, req, &resp);
  };
  EXPECT_TRUE(mounts("on-plain").ok());
  EXPECT_EQ(mounts("on-remote").error_code(), grpc::RESOURCE_EXHAUSTED);
  release.Notify();
  remove->done.WaitForNotification();
  EXPECT_TRUE(remove->status.ok()) << remove->status.error_message();
  EXPECT_TRUE(WhenFree([&] { return mounts("on-remote"); }).ok());
}

// A mutation whose client's deadline passed while it waited for a write
// thread changes nothing and answers DEADLINE_EXCEEDED.
TEST_F(ServiceTest, MutationWhoseClientGaveUpChangesNothing) {
  absl::Notification stuck, release;
  SnapshotsService::Options options;
  options.max_write_threads = 1;
  ASSERT_NO_FATAL_FAILURE(Start(options, [&](const std::string& path, Stop) {
    if (!stuck.HasBeenNotified()) stuck.Notify();
    release.WaitForNotification();
    return RemoveAll(path);
  }));
  ASSERT_TRUE(Prepare("doomed", "").ok());
  std::unique_ptr<AsyncRemove> remove = StartStuckRemove("doomed", stuck);
  ASSERT_NE(remove, nullptr);

  grpc::ClientContext ctx;  // queued behind the stuck Remove
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(200));
  snapshots_v1::PrepareSnapshotRequest req;
  req.set_key("late");
  snapshots_v1::PrepareSnapshotResponse resp;
  EXPECT_EQ(stub_->Prepare(&ctx, req, &resp).error_code(),
            grpc::DEADLINE_EXCEEDED);
  absl::SleepFor(absl::Milliseconds(300));  // its deadline has passed
  release.Notify();
  remove->done.WaitForNotification();
  // The queued Prepare ran after its deadline: it created nothing.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(List({}).empty());
}

TEST_F(ServiceTest, UpdateWithFieldMaskAndUsage) {
  ASSERT_TRUE(Prepare("a", "").ok());
  grpc::ClientContext ctx;
  snapshots_v1::UpdateSnapshotRequest req;
  req.mutable_info()->set_name("a");
  (*req.mutable_info()->mutable_labels())["l"] = "v";
  req.mutable_update_mask()->add_paths("labels.l");
  snapshots_v1::UpdateSnapshotResponse resp;
  ASSERT_TRUE(stub_->Update(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.info().labels().at("l"), "v");

  grpc::ClientContext ctx2;
  req.mutable_update_mask()->Clear();
  req.mutable_update_mask()->add_paths("kind");
  EXPECT_EQ(stub_->Update(&ctx2, req, &resp).error_code(),
            grpc::INVALID_ARGUMENT);

  grpc::ClientContext ctx3;
  snapshots_v1::UsageRequest ureq;
  ureq.set_key("a");
  snapshots_v1::UsageResponse usage;
  ASSERT_TRUE(stub_->Usage(&ctx3, ureq, &usage).ok());
  EXPECT_GE(usage.inodes(), 1);
}

// An error quoting a long key (up to 32 KiB) or filter is cut: in full,
// a gRPC C++ client over a socket got RESOURCE_EXHAUSTED ("received initial
// metadata size exceeds limit") for a Stat of an absent 32 KiB key.
TEST_F(ServiceTest, LongErrorMessagesAreCut) {
  grpc::ClientContext ctx;
  snapshots_v1::StatSnapshotRequest req;
  req.set_key(std::string(32768, 'k'));
  snapshots_v1::StatSnapshotResponse resp;
  grpc::Status s = stub_->Stat(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::NOT_FOUND);
  EXPECT_LE(s.error_message().size(), kMaxErrorMessageBytes);
  EXPECT_TRUE(absl::EndsWith(s.error_message(), "...")) << s.error_message();
  List({"name==\"" + std::string(100000, 'a')});
  EXPECT_EQ(last_list_status_.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_LE(last_list_status_.error_message().size(), kMaxErrorMessageBytes);
  // Cut on a UTF-8 boundary: no partial character.
  grpc::Status u = ToGrpcStatus(absl::InvalidArgumentError(
      "x" + [] { std::string e; for (int i = 0; i < 1000; ++i) e += "\xc3\xa9"; return e; }()));
  ASSERT_TRUE(absl::EndsWith(u.error_message(), "..."));
  absl::string_view body = absl::StripSuffix(u.error_message(), "...");
  EXPECT_EQ(body.size() % 2, 1u);  // "x" and whole 2-byte characters
}

}  // namespace
}  // namespace snapshotter
