#include "guest_agent/open_in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace guest_pull::guest_agent {

int OpenInRoot(int root_fd, const std::string& path, uint64_t flags) {
  open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, path.empty() ? "." : path.c_str(), &how,
                                    sizeof(how)));
}

}  // namespace guest_pull::guest_agent
