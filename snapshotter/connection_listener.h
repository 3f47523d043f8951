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

namespace snapshotter {

// Listens on a unix stream socket and hands every connection to a server
// (for gRPC: grpc::AddInsecureChannelFromFd), keeping a duplicate of each
// descriptor so that it can end them all later. Duplicates of connections
// that ended are closed as they end.
//
// Use: Listen(); to stop, StopAccepting(), then EndConnections() once
// nothing more may be answered on them, then the server's Shutdown().
class ConnectionListener {
 public:
  // Takes ownership of a connected, non-blocking, close-on-exec socket.
  using Serve = std::function<void(int fd)>;

  // Binds `path` (bind() never replaces a file: FailedPrecondition if one
  // is there), listens, and accepts on a thread of its own. The socket
  // file's mode comes from the umask.
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Listen(
      const std::string& path, Serve serve);

  ConnectionListener(const ConnectionListener&) = delete;
  ConnectionListener& operator=(const ConnectionListener&) = delete;
  // StopAccepting(); the connections stay with their server.
  ~ConnectionListener();

  // Closes the listening socket (connect() is refused from now on) and
  // joins the accepting thread. The socket file stays. Idempotent.
  void StopAccepting();
  // Shuts down (both ways) every accepted connection still open: its
  // client sees the connection end; its server sees it end too. After
  // StopAccepting().
  void EndConnections();
  // Connections accepted whose end was not seen yet.
  int OpenConnections() const;

 private:
  ConnectionListener(int listen_fd, int wake_fd, Serve serve);
  void Loop();
  // Accepts one pending connection, if any.
  void AcceptOne();

  const int wake_fd_;  // an eventfd: StopAccepting wakes the loop
  Serve serve_;
  int listen_fd_;  // -1 once closed
  std::thread thread_;
  mutable absl::Mutex mu_;
  // Duplicates of the accepted connections not seen ending.
  std::vector<int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapshotter

#endif  // SNAPSHOTTER_CONNECTION_LISTENER_H_
