#include "snapshotter/metrics/wake_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace snapshotter {
namespace {

// A listener on 127.0.0.1 with room for `backlog` + 1 unaccepted
// connections; its port in *port.
int Listen(int backlog, int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

TEST(WakeListenerTest, ConnectsToAListener) {
  int port = 0;
  int l = Listen(8, &port);
  ASSERT_GE(l, 0);
  EXPECT_TRUE(WakeListener("127.0.0.1", port, absl::Milliseconds(500)));
  // The listener has the connection to take (what wakes civetweb's poll).
  fcntl(l, F_SETFL, O_NONBLOCK);
  int c = accept(l, nullptr, nullptr);
  EXPECT_GE(c, 0);
  if (c >= 0) close(c);
  close(l);
}

TEST(WakeListenerTest, NotAnIpv4LiteralIsNotConnectedTo) {
  EXPECT_FALSE(WakeListener("", 9110, absl::Milliseconds(100)));
  EXPECT_FALSE(WakeListener("localhost", 9110, absl::Milliseconds(100)));
}

// A SYN nobody answers (here a full accept queue, the kernel drops it; a
// firewall rule dropping packets to the metrics port does the same): a
// blocking connect waited for the SYN's retransmissions, two minutes, and
// the exporter's stop with it (133 s for a daemon stop with an iptables
// DROP on the port, by hand). The wait is bounded.
TEST(WakeListenerTest, AnUnansweredConnectionIsGivenUpAfterTheTimeout) {
  int port = 0;
  int l = Listen(0, &port);
  ASSERT_GE(l, 0);
  // Fill the accept queue: connections that complete until one does not.
  std::vector<int> held;
  for (int i = 0; i < 16; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    held.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  absl::SleepFor(absl::Milliseconds(50));  // the handshakes that can, done
  absl::Time start = absl::Now();
  EXPECT_FALSE(WakeListener("127.0.0.1", port, absl::Milliseconds(200)));
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Milliseconds(900));  // a SYN retransmission: 1 s
  for (int fd : held) close(fd);
  close(l);
}

}  // namespace
}  // namespace snapshotter
