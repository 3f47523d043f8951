// The daemon's listening socket, accepted by the daemon itself rather than
// by gRPC, so that a graceful stop can end the connections before gRPC's
// Shutdown: a call that reaches gRPC once its Shutdown began is reset
// (the client sees CANCELLED, which it cannot tell from a call that ran),
// while a call on a connection that ends fails UNAVAILABLE.
#ifndef SNAPSHOTTER_CONNECTION_LISTENER_H_
#define SNAPSHOTTER_CONNECTION_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace snapshotter {

// Listens on a unix stream socket and hands every connection to a server
// (for gRPC: grpc::AddInsecureChannelFromFd), keeping a duplicate of each
// descriptor so that it can end them all later. A duplicate is closed once
// its connection ended, which relies on the server shutting a connection
// down (shutdown(2), as gRPC does) rather than only closing it: otherwise
// the duplicate would keep it open.
//
// Use: Listen(); to stop, StopAccepting(), WaitUntilRead() once the
// replies that must reach their clients were handed to the server (for
// the daemon: the mutations drained and the Lists in progress finished),
// EndConnections(), then the server's Shutdown(); destroy it last.
class ConnectionListener {
 public:
  // Takes ownership of a connected, non-blocking, close-on-exec socket.
  using Serve = std::function<void(int fd)>;

  // Binds `path` (bind() never replaces a file: AlreadyExists if one is
  // there), listens, and accepts on a thread of its own. The socket file's
  // mode comes from the umask.
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Listen(
      const std::string& path, Serve serve);

  ConnectionListener(const ConnectionListener&) = delete;
  ConnectionListener& operator=(const ConnectionListener&) = delete;
  // Stops the thread and closes the duplicates; the connections stay with
  // their server.
  ~ConnectionListener();

  // Closes the listening socket: connect() is refused from now on, and
  // `serve` is not called once this returns. The socket file stays.
  // Idempotent.
  void StopAccepting();
  // Waits until the client of every open connection has read all that was
  // written to it, or until `deadline`; returns how many had not then. A
  // reply gRPC reports sent is encoded, and written to the socket right
  // after: the wait starts with a short pause for that write (none when no
  // connection is open).
  int WaitUntilRead(absl::Time deadline);
  // WaitUntilRead's pause for writes of replies already reported sent.
  static constexpr absl::Duration kWriteSettle = absl::Milliseconds(20);
  // Shuts down (both ways) every accepted connection still open: its
  // client sees the connection end; its server sees it end too.
  void EndConnections();
  // Connections accepted whose end was not seen yet.
  int OpenConnections() const;

 private:
  ConnectionListener(int listen_fd, int wake_fd, Serve serve);
  void Wake();
  void Loop();
  // Accepts one pending connection, if any; false if the loop should back
  // off (accept() failed for want of resources).
  bool AcceptOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int wake_fd_;  // an eventfd that wakes the loop
  const Serve serve_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  int listen_fd_ ABSL_GUARDED_BY(mu_);  // -1 once closed
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Duplicates of the accepted connections not seen ending; only the loop
  // adds and removes (and the destructor closes them).
  std::vector<int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_CONNECTION_LISTENER_H_
