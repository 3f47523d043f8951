// guest-pull-overlayfs: mount helper for `fuse.guest-pull-overlayfs` mounts,
// run by mount.fuse3 as `guest-pull-overlayfs <source> <target> -o <opts>`.
#include <iostream>
#include <string>
#include <vector>

#include "mount_helper/helper.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return mount_helper::RunGuestPullOverlayfs(args, std::cout, std::cerr);
}
