// A chain of directories made by descriptors.
#include "snapshotter/deep_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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

}  // namespace snapshotter
