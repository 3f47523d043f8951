// Deep test trees, and a run under a limit of descriptors.
#include "snapshotter/deep_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace snapshotter {

int MakeDeepTree(const std::string& top, int levels, const std::string& name) {
  int fd = open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int level = 0; fd >= 0 && level < levels; ++level) {
    int next = -1;
    if (mkdirat(fd, name.c_str(), 0755) == 0) {
      next = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    int err = errno;
    close(fd);
    errno = err;
    fd = next;
  }
  return fd;
}

bool TrueWithFdLimit(int limit, const std::function<bool()>& body) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(2);
    lim.rlim_cur = static_cast<rlim_t>(limit);
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(2);
    _exit(body() ? 0 : 1);
  }
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

}  // namespace snapshotter
