// ConnectionListener against real unix sockets: connections handed over,
// ended for both sides, forgotten once ended, refused after StopAccepting;
// WaitUntilRead waits for the client to read; a file at the path is kept.
#include "snapshotter/connection_listener.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "snapshotter/socket_path.h"

namespace snapshotter {
namespace {

// A connect()ed client socket (-1 and errno set on failure).
int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = UnixSocketAddress(path).value();
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// One byte read from `fd` within 5 s: the byte, 0 at the connection's end
// (EOF), -1 if nothing came.
int ReadByte(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return -1;
  char c = 0;
  ssize_t n = read(fd, &c, 1);
  return n == 1 ? static_cast<unsigned char>(c) : n == 0 ? 0 : -1;
}

// Waits (bounded: 5 s) until `done` holds.
template <class Fn>
bool Eventually(Fn done) {
  for (int i = 0; i < 5000; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return done();
}

class ConnectionListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Not under TEST_TMPDIR: a socket address is at most 107 bytes. Not
    // named by pid either: sandboxed runs share pids.
    char dir[] = "/tmp/gp-cl-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/l.sock";
  }
  void TearDown() override {
    listener_.reset();
    absl::MutexLock lock(&mu_);
    for (int fd : served_) close(fd);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  void Listen() {
    auto listener = ConnectionListener::Listen(path_, [this](int fd) {
      absl::MutexLock lock(&mu_);
      served_.push_back(fd);
    });
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
  }
  int Served(size_t i) {
    absl::MutexLock lock(&mu_);
    return i < served_.size() ? served_[i] : -1;
  }

  std::string dir_, path_;
  std::unique_ptr<ConnectionListener> listener_;
  absl::Mutex mu_;
  std::vector<int> served_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ConnectionListenerTest, HandsEachConnectionToTheServer) {
  Listen();
  int client = Connect(path_);
  ASSERT_GE(client, 0) << strerror(errno);
  ASSERT_TRUE(Eventually([&] { return Served(0) >= 0; }));
  EXPECT_EQ(listener_->OpenConnections(), 1);
  ASSERT_EQ(write(client, "x", 1), 1);
  EXPECT_EQ(ReadByte(Served(0)), 'x');
  // Served non-blocking, as gRPC wants it.
  EXPECT_TRUE(fcntl(Served(0), F_GETFL) & O_NONBLOCK);
  close(client);
}

TEST_F(ConnectionListenerTest, EndConnectionsEndsThemForBothSides) {
  Listen();
  int a = Connect(path_);
  int b = Connect(path_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_TRUE(Eventually([&] { return listener_->OpenConnections() == 2; }));
  listener_->StopAccepting();
  // What the server wrote before still reaches its client.
  ASSERT_EQ(write(Served(0), "r", 1), 1);
  EXPECT_EQ(listener_->WaitUntilRead(absl::Now()), 1);
  listener_->EndConnections();
  EXPECT_EQ(ReadByte(a), 'r');
  EXPECT_EQ(ReadByte(a), 0);  // then the client sees the end (EOF)
  EXPECT_EQ(ReadByte(b), 0);
  EXPECT_EQ(ReadByte(Served(0)), 0);  // and so does the server
  close(a);
  close(b);
}

TEST_F(ConnectionListenerTest, WaitUntilReadWaitsForTheClientToRead) {
  Listen();
  int a = Connect(path_);
  ASSERT_GE(a, 0);
  ASSERT_TRUE(Eventually([&] { return Served(0) >= 0; }));
  EXPECT_EQ(listener_->WaitUntilRead(absl::Now()), 0);  // nothing written
  ASSERT_EQ(write(Served(0), "reply", 5), 5);
  EXPECT_EQ(listener_->WaitUntilRead(absl::Now() + absl::Milliseconds(50)),
            1);  // not read: waited until the deadline
  std::thread reader([&] {
    absl::SleepFor(absl::Milliseconds(100));
    char buf[5];
    EXPECT_EQ(read(a, buf, 5), 5);
  });
  absl::Time start = absl::Now();
  EXPECT_EQ(listener_->WaitUntilRead(absl::Now() + absl::Seconds(5)), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  reader.join();
  close(a);
}

TEST_F(ConnectionListenerTest, WaitUntilReadWithoutConnectionsReturnsAtOnce) {
  Listen();
  listener_->StopAccepting();
  // No pause for replies being written (nobody could be sent one): ten
  // waits take less than ten pauses would.
  absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(listener_->WaitUntilRead(absl::Now() + absl::Seconds(5)), 0);
  }
  EXPECT_LT(absl::Now() - start, 7.5 * ConnectionListener::kWriteSettle);
}

TEST_F(ConnectionListenerTest, ForgetsConnectionsThatEnded) {
  Listen();
  int a = Connect(path_);
  ASSERT_GE(a, 0);
  ASSERT_TRUE(Eventually([&] { return listener_->OpenConnections() == 1; }));
  close(a);  // the client leaves
  EXPECT_TRUE(Eventually([&] { return listener_->OpenConnections() == 0; }));
  int b = Connect(path_);
  ASSERT_GE(b, 0);
  ASSERT_TRUE(Eventually([&] { return listener_->OpenConnections() == 1; }));
  listener_->StopAccepting();      // still forgets them after
  shutdown(Served(1), SHUT_RDWR);  // the server ends it (gRPC does so)
  EXPECT_TRUE(Eventually([&] { return listener_->OpenConnections() == 0; }));
  close(b);
}

TEST_F(ConnectionListenerTest, StopAcceptingRefusesNewConnectionsKeepsFile) {
  Listen();
  listener_->StopAccepting();
  listener_->StopAccepting();  // idempotent
  EXPECT_EQ(Connect(path_), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(ConnectionListenerTest, NeverReplacesAFileAtThePath) {
  int f = open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(f, 0);
  close(f);
  auto listener = ConnectionListener::Listen(path_, [](int fd) { close(fd); });
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(listener.status().message().find("already there"),
            absl::string_view::npos)
      << listener.status();
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(ConnectionListenerTest, RefusesAPathTooLongForASocket) {
  auto listener = ConnectionListener::Listen("/tmp/" + std::string(200, 'x'),
                                             [](int fd) { close(fd); });
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace snapshotter
