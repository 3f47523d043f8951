// What the guest-pull plug-in is configured with: the [guest_pull] and
// [verity] sections of the config file (snapshotter/config fills it in).
#ifndef SNAPSHOTTER_GUEST_PULL_OPTIONS_H_
#define SNAPSHOTTER_GUEST_PULL_OPTIONS_H_

#include <string>
#include <vector>

namespace guest_pull {

// How strictly guest-pulled layers are tied to dm-verity root hashes.
enum class VerityMode { kOff, kBestEffort, kRequired };

struct GuestPullOptions {
  // false: every layer is unpacked on the host (plain overlayfs snapshotter).
  bool enable = true;
  // RE2 patterns, full match against the CRI image reference; a reference
  // must match one of them to be pulled in the guest.
  std::vector<std::string> include = {".*"};
  // RE2 patterns; a matching reference stays on the host.
  std::vector<std::string> exclude;
  // Mount type of a guest-pulled container rootfs: "fuse." + a helper name
  // kata's shim recognises (checked by the config, config/keys.cc).
  std::string mount_type = "fuse.guest-pull-overlayfs";
  VerityMode verity_mode = VerityMode::kBestEffort;
  // Absolute path of a genpolicy layers-cache.json; empty = none.
  std::string layer_cache;
  // Write /etc/passwd and /etc/group from the cache into guest-pulled layers.
  bool write_passwd = true;
};

}  // namespace guest_pull

#endif  // SNAPSHOTTER_GUEST_PULL_OPTIONS_H_
