// guest-pull-overlayfs: mount helper for `fuse.guest-pull-overlayfs` mounts,
// run by mount.fuse3 as `guest-pull-overlayfs <source> <target> -o <opts>`
// (or under a second name, e.g. nydus-overlayfs-guest-pull for stock kata,
// which its messages then give).
#include <iostream>
#include <string>
#include <vector>

#include "mount_helper/command_line.h"
#include "mount_helper/helper.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argc > 0 ? argv + 1 : argv, argv + argc);
  return mount_helper::RunGuestPullOverlayfs(
      mount_helper::ProgramName(argc > 0 ? argv[0] : nullptr), args, std::cout,
      std::cerr);
}
