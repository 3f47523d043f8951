// Forked children with mounts of their own, for tests.
#include "base/private_mounts_for_test.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace base {

std::optional<std::string> RunWithPrivateMounts(const std::function<bool()>& setup,
                                                const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  pid_t child = fork();
  if (child < 0) {
    close(fds[0]);
    close(fds[1]);
    return std::nullopt;
  }
  if (child == 0) {
    close(fds[0]);
    alarm(30);
    // The first byte says whether the mounts were made.
    std::string out = "S";
    if (unshare(CLONE_NEWNS) == 0 &&
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 && setup()) {
      out = "R" + body();
    }
    (void)!write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (out == "S") return std::nullopt;
  // A child that died in `body` fails the caller's expectations, not skips.
  if (out.empty() || out[0] != 'R') return "the child died, wait status " + std::to_string(status);
  return out.substr(1);
}

bool BindReadOnly(const std::string& dir) {
  return mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) == 0 &&
         mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) == 0;
}

}  // namespace base
