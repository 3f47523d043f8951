// The rootfs overlay mount, its options fitted into one page.
#include "guest_agent/rootfs_overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "mount_helper/overlay_data.h"

namespace guest_pull::guest_agent {

absl::Status MountRootfsOverlay(const std::vector<std::string>& lower, const std::string& upper,
                                const std::string& work, const std::string& target) {
  ASSIGN_OR_RETURN(mount_helper::OverlayData data,
                   mount_helper::FitOverlayData({absl::StrCat("lowerdir=", absl::StrJoin(lower, ":")),
                                                 absl::StrCat("upperdir=", upper),
                                                 absl::StrCat("workdir=", work)},
                                                mount_helper::MountDataLimit()));
  int saved_cwd = -1;
  if (!data.working_dir.empty()) {
    saved_cwd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (saved_cwd < 0) return absl::InternalError(absl::StrCat("open the working directory: ", strerror(errno)));
    if (::chdir(data.working_dir.c_str()) != 0) {
      const int error = errno;
      ::close(saved_cwd);
      return absl::InternalError(absl::StrCat("chdir ", data.working_dir, ": ", strerror(error)));
    }
  }
  const int rc = ::mount("overlay", target.c_str(), "overlay", 0, data.data.c_str());
  const int error = errno;
  if (saved_cwd >= 0) {
    (void)!::fchdir(saved_cwd);  // nothing after the mount depends on the cwd
    ::close(saved_cwd);
  }
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("mount overlay of ", lower.size(), " layer(s): ", strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace guest_pull::guest_agent
