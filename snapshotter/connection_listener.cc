// Connection listener.
#include "snapshotter/connection_listener.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "snapshotter/socket_path.h"

namespace snapshotter {
namespace {

// How long the loop waits before it accepts again after accept() failed
// for want of resources (descriptors, memory): the connection waits in the
// backlog meanwhile, and the loop does not spin.
constexpr absl::Duration kAcceptRetry = absl::Milliseconds(100);
// WaitUntilRead: how often the connections' queues are looked at.
constexpr absl::Duration kReadPoll = absl::Milliseconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionListener>> ConnectionListener::Listen(
    const std::string& path, Serve serve) {
  absl::StatusOr<sockaddr_un> addr = UnixSocketAddress(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create a unix socket: ", strerror(errno)));
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    close(fd);
    std::string message =
        absl::StrCat("cannot bind the unix socket ", path, ": ", strerror(err));
    if (err == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrCat(message, " (a file is already there)"));
    }
    return absl::FailedPreconditionError(message);
  }
  if (listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on the unix socket ", path, ": ", strerror(err)));
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot create an eventfd: ", strerror(err)));
  }
  auto listener =
      absl::WrapUnique(new ConnectionListener(fd, wake, std::move(serve)));
  listener->thread_ = std::thread([l = listener.get()] { l->Loop(); });
  return listener;
}

ConnectionListener::ConnectionListener(int listen_fd, int wake_fd, Serve serve)
    : wake_fd_(wake_fd), serve_(std::move(serve)), listen_fd_(listen_fd) {}

ConnectionListener::~ConnectionListener() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  absl::MutexLock lock(&mu_);
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : open_) close(fd);
  close(wake_fd_);
}

void ConnectionListener::Wake() {
  uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void ConnectionListener::StopAccepting() {
  absl::MutexLock lock(&mu_);
  if (listen_fd_ < 0) return;
  // Refuses connect() at once: the close alone may release the socket only
  // later (when the loop's poll() lets go of it).
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  listen_fd_ = -1;
  Wake();  // to poll it no more
}

int ConnectionListener::WaitUntilRead(absl::Time deadline) {
  if (OpenConnections() == 0) return 0;
  absl::SleepFor(kWriteSettle);
  for (;;) {
    int unread = 0;
    {
      absl::MutexLock lock(&mu_);
      for (int fd : open_) {
        // For a unix stream socket: the bytes its peer has not read yet.
        int queued = 0;
        if (ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0) ++unread;
      }
    }
    if (unread == 0 || absl::Now() >= deadline) return unread;
    absl::SleepFor(kReadPoll);
  }
}

void ConnectionListener::EndConnections() {
  absl::MutexLock lock(&mu_);
  for (int fd : open_) shutdown(fd, SHUT_RDWR);
}

int ConnectionListener::OpenConnections() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(open_.size());
}

void ConnectionListener::Loop() {
  std::vector<pollfd> fds;
  for (;;) {
    {
      // No events asked of the connections: poll() reports a connection's
      // end (POLLHUP) or error anyway, and data never wakes this loop. A
      // closed listening socket (-1) is ignored.
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      fds.assign({{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
      for (int fd : open_) fds.push_back({fd, 0, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      int err = errno;
      if (err != EINTR) {
        LOG_EVERY_N(ERROR, 100)
            << "poll on the listening socket: " << strerror(err);
        absl::SleepFor(kAcceptRetry);
      }
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      while (read(wake_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
      }
    }
    bool back_off = false;
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        open_.erase(std::find(open_.begin(), open_.end(), fds[i].fd));
        close(fds[i].fd);
      }
      // Still listening (StopAccepting may have closed it since the poll).
      if (fds[1].revents != 0 && listen_fd_ >= 0) back_off = !AcceptOne();
    }
    if (back_off) absl::SleepFor(kAcceptRetry);
  }
}

bool ConnectionListener::AcceptOne() {
  int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EAGAIN || err == EINTR || err == ECONNABORTED) return true;
    LOG_EVERY_N(WARNING, 100)
        << "accept on the listening socket: " << strerror(err) << "; retrying";
    return false;
  }
  int kept = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (kept < 0) {
    // A connection it could not end at stop would get CANCELLED calls:
    // refused instead (its client sees it close at once).
    int err = errno;
    LOG_EVERY_N(WARNING, 100)
        << "refused a connection: no descriptor left to keep it by: "
        << strerror(err);
    close(fd);
    return false;
  }
  open_.push_back(kept);
  serve_(fd);
  return true;
}

}  // namespace snapshotter
