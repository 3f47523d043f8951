// mount(8)-style flag options and their mount(2) flags, as {clear, flag}
// pairs like containerd's mount/mount_linux.go: "dev", "suid", "rw", "exec"
// ... CLEAR a flag (mount.fuse3 appends "dev,suid" to every option list, so
// treating them as setting MS_NODEV/MS_NOSUID would be wrong).
#ifndef MOUNT_HELPER_MOUNT_FLAGS_H_
#define MOUNT_HELPER_MOUNT_FLAGS_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace mount_helper {

// What one flag option does to the mount(2) flags.
struct MountFlagEffect {
  bool clear = false;     // true: flags &= ~flag; false: flags |= flag
  unsigned long flag = 0;  // MS_* bits; 0 for "defaults"
};

// The effect of a flag option such as "ro", "nodev", "rbind", or nullopt if
// `option` is not a flag option.
std::optional<MountFlagEffect> LookupMountFlag(absl::string_view option);

// MS_* propagation bits for "private", "rshared", "slave", "unbindable" ...
// (applied with a second mount(2) call), or nullopt.
std::optional<unsigned long> LookupPropagationFlag(absl::string_view option);

// True for options only mount(8)/fstab understand and that must never reach
// the kernel: auto, noauto, nofail, _netdev, user[=*], nouser, users,
// nousers, owner, noowner, group, nogroup, uhelper=*, helper=*, x-*, X-*,
// comment=* (libmount's userspace map, less what mount(8) resolves itself:
// loop, offset=, sizelimit=, encryption=, verity.*).
bool IsUserspaceOnlyOption(absl::string_view option);

}  // namespace mount_helper

#endif  // MOUNT_HELPER_MOUNT_FLAGS_H_
