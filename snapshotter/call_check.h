// The liveness of the RPC the calling thread serves. The gRPC edge installs
// a check (client gone, deadline passed) for the duration of a call; the
// core asks it after it has waited for the store's lock and before it
// changes anything, so a call whose client gave up while it queued returns
// DeadlineExceeded/Cancelled and mutates nothing.
#ifndef SNAPSHOTTER_CALL_CHECK_H_
#define SNAPSHOTTER_CALL_CHECK_H_

#include <functional>

#include "absl/status/status.h"

namespace snapshotter {

// Installs `check` for the current thread until destroyed (nestable).
class ScopedCallCheck {
 public:
  explicit ScopedCallCheck(std::function<absl::Status()> check);
  ScopedCallCheck(const ScopedCallCheck&) = delete;
  ScopedCallCheck& operator=(const ScopedCallCheck&) = delete;
  ~ScopedCallCheck();

 private:
  std::function<absl::Status()> check_;
  const std::function<absl::Status()>* previous_;
};

// The installed check's verdict; OK when none is installed.
absl::Status CheckCall();

// A copy of the installed check, to be asked on another thread (the leader
// of a group commit); empty when none is installed.
std::function<absl::Status()> CurrentCallCheck();

}  // namespace snapshotter

#endif  // SNAPSHOTTER_CALL_CHECK_H_
