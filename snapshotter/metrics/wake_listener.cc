// A connection that wakes a listener from its poll, with a bounded wait.
#include "snapshotter/metrics/wake_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace snapshotter {

bool WakeListener(const std::string& ipv4, int port, absl::Duration timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ipv4.c_str(), &addr.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool connected =
      connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  if (!connected && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    int err = 0;
    socklen_t len = sizeof(err);
    connected = poll(&p, 1, ms < 0 ? 0 : ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                err == 0;
  }
  close(fd);
  return connected;
}

}  // namespace snapshotter
