// The daemon binary's graceful stop (SIGTERM) under a load of concurrent
// calls, as a DaemonSet update does it to a node: every call is answered
// OK (or NOT_FOUND: the Stat of an absent key) or fails UNAVAILABLE, never
// CANCELLED, which a client cannot tell from a call that ran; the daemon
// exits 0; and every Prepare it acknowledged is there after the next start.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gtest/gtest.h"

extern char** environ;

namespace snapshotter {
namespace {

namespace snapshots_v1 = ::containerd::services::snapshots::v1;

constexpr int kRounds = 6;
constexpr int kClients = 6;

class DaemonStopTest : public ::testing::Test {
 protected:
  using Stub = snapshots_v1::Snapshots::Stub;

  void SetUp() override {
    std::string tmp = getenv("TEST_TMPDIR") ?: "/tmp";
    root_ = tmp + "/root";
    config_ = tmp + "/config.toml";
    std::ofstream(config_) << "version = 1\n";
    // Not under TEST_TMPDIR: a socket address is at most 107 bytes. Not
    // named by pid either: sandboxed runs share pids.
    char dir[] = "/tmp/gp-stop-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    socket_dir_ = dir;
    socket_ = socket_dir_ + "/gp.sock";
    binary_ = absl::StrCat(getenv("TEST_SRCDIR") ?: ".", "/",
                           getenv("TEST_WORKSPACE") ?: "__main__",
                           "/snapshotter/containerd-guest-pull-grpc");
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(socket_.c_str());
    rmdir(socket_dir_.c_str());
  }

  // Starts the daemon and waits (bounded: 20 s) until it listens.
  void StartDaemon() {
    std::vector<std::string> flags = {binary_, "--root=" + root_,
                                      "--address=" + socket_,
                                      "--config=" + config_};
    std::vector<char*> argv;
    for (std::string& a : flags) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, binary_.c_str(), nullptr, nullptr, argv.data(),
                          environ),
              0);
    // The address appears once the daemon listens; a channel made before
    // would back off for seconds after its first failed connect.
    struct stat st;
    for (int i = 0; i < 2000 && stat(socket_.c_str(), &st) != 0; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    stub_ = snapshots_v1::Snapshots::NewStub(grpc::CreateChannel(
        "unix:" + socket_, grpc::InsecureChannelCredentials()));
    EXPECT_EQ(Stat("absent").error_code(), grpc::NOT_FOUND)
        << "the daemon does not answer on " << socket_;
  }

  // One call with a 10 s deadline.
  template <class Req, class Resp>
  grpc::Status Call(grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&,
                                              Resp*),
                    const Req& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    Resp resp;
    return (stub_.get()->*rpc)(&ctx, req, &resp);
  }
  grpc::Status Stat(const std::string& key) {
    snapshots_v1::StatSnapshotRequest req;
    req.set_key(key);
    return Call(&Stub::Stat, req);
  }
  grpc::Status Prepare(const std::string& key) {
    snapshots_v1::PrepareSnapshotRequest req;
    req.set_key(key);
    return Call(&Stub::Prepare, req);
  }

  std::string root_, config_, socket_dir_, socket_, binary_;
  pid_t pid_ = -1;
  std::unique_ptr<Stub> stub_;
};

TEST_F(DaemonStopTest, GracefulStopUnderLoadAnswersOnlyOkOrUnavailable) {
  absl::Mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::map<std::string, int> unexpected;  // "CODE: message" -> count
  std::vector<std::string> acked;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_NO_FATAL_FAILURE(StartDaemon());
    std::atomic<bool> done{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; !done.load(); ++i) {
          std::string key = absl::StrCat("r", round, "-c", c, "-", i);
          grpc::Status s = i % 2 == 0 ? Prepare(key) : Stat("absent");
          absl::MutexLock lock(&mu);
          ++codes[s.error_code()];
          if (s.ok() && i % 2 == 0) acked.push_back(key);
          bool expected = s.ok() || s.error_code() == grpc::UNAVAILABLE ||
                          (i % 2 == 1 && s.error_code() == grpc::NOT_FOUND);
          if (!expected) {
            ++unexpected[absl::StrCat(s.error_code(), ": ", s.error_message())];
          }
        }
      });
    }
    // Stopped at a different point of the load each round.
    absl::SleepFor(absl::Milliseconds(150 + 70 * round));
    ASSERT_EQ(kill(pid_, SIGTERM), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
    pid_ = -1;
    absl::SleepFor(absl::Milliseconds(50));  // calls on the closed socket
    done = true;
    for (std::thread& t : clients) t.join();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "round " << round << ": wait status " << status;
  }
  for (const auto& [code, n] : codes) {
    std::cout << "status code " << code << ": " << n << " calls\n";
  }
  EXPECT_TRUE(unexpected.empty());
  for (const auto& [what, n] : unexpected) {
    ADD_FAILURE() << n << " calls failed with " << what;
  }
  EXPECT_GT(codes[grpc::OK], 0);
  EXPECT_GT(codes[grpc::UNAVAILABLE], 0);
  // Every acknowledged Prepare survived the stops.
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  int missing = 0;
  for (const std::string& key : acked) {
    if (!Stat(key).ok() && ++missing <= 5) ADD_FAILURE() << key << " is gone";
  }
  EXPECT_EQ(missing, 0) << "of " << acked.size() << " acknowledged";
}

}  // namespace
}  // namespace snapshotter
