// The daemon binary's graceful stop (SIGTERM) under a load of concurrent
// calls, as a DaemonSet update does it to a node: every call is answered
// OK (or NOT_FOUND: the Stat of an absent key) or fails UNAVAILABLE, never
// CANCELLED, which a client cannot tell from a call that ran; the daemon
// exits 0; and every Prepare it acknowledged is there after the next start.
// A List in progress at the stop finishes whole.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
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
    root_ = absl::StrCat(
        tmp, "/root-",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
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
    // Two connections (gRPC shares one between channels of equal
    // arguments): containerd has one per snapshotter, other clients more.
    for (int i = 0; i < 2; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("gp.test.connection", i);
      stubs_[i] = snapshots_v1::Snapshots::NewStub(grpc::CreateCustomChannel(
          "unix:" + socket_, grpc::InsecureChannelCredentials(), args));
    }
    EXPECT_EQ(Stat(0, "absent").error_code(), grpc::NOT_FOUND)
        << "the daemon does not answer on " << socket_;
  }

  // One call on connection `conn` with a 10 s deadline.
  template <class Req, class Resp>
  grpc::Status Call(int conn,
                    grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&,
                                              Resp*),
                    const Req& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    Resp resp;
    return (stubs_[conn].get()->*rpc)(&ctx, req, &resp);
  }
  grpc::Status Stat(int conn, const std::string& key) {
    snapshots_v1::StatSnapshotRequest req;
    req.set_key(key);
    return Call(conn, &Stub::Stat, req);
  }
  grpc::Status Prepare(int conn, const std::string& key) {
    snapshots_v1::PrepareSnapshotRequest req;
    req.set_key(key);
    return Call(conn, &Stub::Prepare, req);
  }

  // One List of everything on connection `conn` (10 s deadline): its status,
  // the messages and the snapshots that came before it.
  struct Listed {
    grpc::Status status;
    int messages = 0;
    int infos = 0;
  };
  Listed List(int conn) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    std::unique_ptr<grpc::ClientReader<snapshots_v1::ListSnapshotsResponse>>
        reader = stubs_[conn]->List(&ctx, snapshots_v1::ListSnapshotsRequest());
    Listed listed;
    snapshots_v1::ListSnapshotsResponse resp;
    while (reader->Read(&resp)) {  // ends with the stream, by the deadline
      ++listed.messages;
      listed.infos += resp.info_size();
    }
    listed.status = reader->Finish();
    return listed;
  }

  // Waits (bounded: 30 s, then SIGKILL) for the daemon to exit; its wait
  // status, or -1 if it had to be killed.
  int WaitForExit() {
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

  std::string root_, config_, socket_dir_, socket_, binary_;
  pid_t pid_ = -1;
  std::unique_ptr<Stub> stubs_[2];
};

TEST_F(DaemonStopTest, GracefulStopUnderLoadAnswersOnlyOkOrUnavailable) {
  absl::Mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::map<std::string, int> unexpected;  // "CODE: message" -> count
  std::vector<std::string> acked, refused;
  int drained = 0;  // refused by the drain itself (not the connection's end)
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_NO_FATAL_FAILURE(StartDaemon());
    std::atomic<bool> done{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; !done.load(); ++i) {
          std::string key = absl::StrCat("r", round, "-c", c, "-", i);
          bool prepare = i % 2 == 0;
          grpc::Status s =
              prepare ? Prepare(c % 2, key) : Stat(c % 2, "absent");
          absl::MutexLock lock(&mu);
          ++codes[s.error_code()];
          if (prepare && s.ok()) acked.push_back(key);
          if (prepare && s.error_code() == grpc::UNAVAILABLE) {
            refused.push_back(key);
            if (absl::StrContains(s.error_message(), "shutting down")) {
              ++drained;
            }
          }
          bool expected = s.ok() || s.error_code() == grpc::UNAVAILABLE ||
                          (!prepare && s.error_code() == grpc::NOT_FOUND);
          if (!expected) {
            ++unexpected[absl::StrCat(s.error_code(), ": ", s.error_message())];
          }
        }
      });
    }
    // Stopped at a different point of the load each round.
    absl::SleepFor(absl::Milliseconds(150 + 70 * round));
    int status = kill(pid_, SIGTERM) == 0 ? WaitForExit() : -2;
    absl::SleepFor(absl::Milliseconds(50));  // calls on the closed socket
    done = true;
    for (std::thread& t : clients) t.join();
    ASSERT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "round " << round << ": wait status " << status
        << " (-1: still running after 30 s; -2: kill failed)";
  }
  for (const auto& [code, n] : codes) {
    std::cout << "status code " << code << ": " << n << " calls\n";
  }
  std::cout << drained << " Prepares refused by the drain (\"shutting down\")"
            << std::endl;
  EXPECT_TRUE(unexpected.empty());
  for (const auto& [what, n] : unexpected) {
    ADD_FAILURE() << n << " calls failed with " << what;
  }
  EXPECT_GT(codes[grpc::OK], 0);
  EXPECT_GT(codes[grpc::UNAVAILABLE], 0);
  // Every acknowledged Prepare survived the stops; none refused happened.
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  int missing = 0, present = 0;
  for (const std::string& key : acked) {
    if (!Stat(0, key).ok() && ++missing <= 5) {
      ADD_FAILURE() << key << " was acknowledged and is gone";
    }
  }
  for (const std::string& key : refused) {
    if (Stat(0, key).error_code() != grpc::NOT_FOUND && ++present <= 5) {
      ADD_FAILURE() << key << " was answered UNAVAILABLE and exists";
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acked.size() << " acknowledged";
  EXPECT_EQ(present, 0) << "of " << refused.size() << " refused";
}

// A stop lets every List in progress finish: a Walk is never cut after
// its caller saw a part of it. A List is either whole or refused
// (UNAVAILABLE) before its first message.
TEST_F(DaemonStopTest, ListsInProgressFinishWhole) {
  constexpr int kSnapshots = 1500;  // long keys: a List of several messages
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const std::string pad(200, 'k');
  for (int i = 0; i < kSnapshots; ++i) {
    grpc::Status s = Prepare(i % 2, absl::StrCat("list-", i, "-", pad));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  Listed first = List(0);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.infos, kSnapshots);
  ASSERT_GT(first.messages, 2);
  absl::Mutex mu;
  int whole = 0, refused = 0;
  int shutting_down = 0;  // of those, refused by the daemon, not the socket
  std::map<std::string, int> bad;  // how a List went wrong -> count
  for (int round = 0; round < 4; ++round) {
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(StartDaemon());
    }
    std::atomic<bool> done{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        while (!done.load()) {
          Listed l = List(c % 2);
          absl::MutexLock lock(&mu);
          if (l.status.ok() && l.infos == kSnapshots) {
            ++whole;
          } else if (l.status.error_code() == grpc::UNAVAILABLE &&
                     l.messages == 0) {
            ++refused;
            if (absl::StrContains(l.status.error_message(), "shutting down")) {
              ++shutting_down;
            }
          } else {
            ++bad[absl::StrCat("code ", l.status.error_code(), " after ",
                               l.infos, " of ", kSnapshots,
                               " snapshots: ", l.status.error_message())];
          }
        }
      });
    }
    absl::SleepFor(absl::Milliseconds(100 + 60 * round));
    int status = kill(pid_, SIGTERM) == 0 ? WaitForExit() : -2;
    absl::SleepFor(absl::Milliseconds(50));
    done = true;
    for (std::thread& t : clients) t.join();
    ASSERT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "round " << round << ": wait status " << status;
  }
  std::cout << whole << " Lists whole, " << refused
            << " refused before their first message (" << shutting_down
            << " by the stopping daemon, the rest by its socket's end)"
            << std::endl;
  EXPECT_GT(whole, 0);
  EXPECT_GT(shutting_down, 0);
  for (const auto& [what, n] : bad) ADD_FAILURE() << n << " Lists: " << what;
}

}  // namespace
}  // namespace snapshotter
