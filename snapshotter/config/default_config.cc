// The commented default config file (see docs/configuration.md).
#include "snapshotter/config/config.h"

namespace snapshotter {
namespace config {

const char kDefaultConfigToml[] =
    R"toml(# containerd-guest-pull-grpc configuration (schema version 1).
#
# Default location: /etc/containerd-guest-pull-grpc/config.toml; another file
# is chosen with --config or GUEST_PULL_CONFIG. For root, address and
# log_level, a command-line flag wins over an environment variable, which wins
# over this file. Unknown keys, wrong types and invalid values stop the daemon
# with an error naming the key and its line. Reference: docs/configuration.md.

# Config schema version. Optional; this build only understands 1.
version = 1

# State directory (snapshot metadata and layer directories). Absolute path.
# Flag --root, env GUEST_PULL_ROOT.
root = "/var/lib/containerd-guest-pull-grpc"

# Unix socket serving containerd's Snapshots gRPC API. Absolute path, shorter
# than 108 bytes. containerd must name the same path in
#   [proxy_plugins.guest-pull] type = "snapshot" address = "..."
# Flag --address, env GUEST_PULL_ADDRESS.
address = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"

# debug | info | warn | error. Flag --log-level, env GUEST_PULL_LOG_LEVEL.
log_level = "info"

# Empty snapshot directories (an fs/ and a work/ each) a background thread
# keeps made ahead of the Prepares that take them, so a Prepare does not
# make three directories itself. 0 to 64; 0 = none.
spare_dirs = 8

[guest_pull]
# false: every layer is unpacked on the host, as the plain overlayfs
# snapshotter does, and containers get ordinary overlay mounts.
enable = true

# RE2 patterns matched against the whole CRI image reference (as in the
# containerd.io/snapshot/cri.image-ref label, e.g.
# "docker.io/library/nginx:1.25"). An image is pulled in the guest only if
# its reference matches one include pattern and no exclude pattern. Pulls
# without a CRI image reference (e.g. "ctr image pull") always stay on the
# host. The list must not be empty (use enable = false to turn guest pull
# off).
include = [".*"]

# RE2 patterns; a matching reference is unpacked on the host, e.g.
#   exclude = ["registry\\.k8s\\.io/pause:.*"]
exclude = []

# Mount type returned for a container rootfs on guest-pulled layers: "fuse." +
# a helper name starting with "guest-pull-overlayfs" (patched kata shim) or
# "nydus-overlayfs" (stock kata), the types kata keeps off the host. containerd
# runs mount.fuse, which runs the helper named after the dot (it must be on
# containerd's PATH).
mount_type = "fuse.guest-pull-overlayfs"

[verity]
# off | best_effort | required: whether guest-pulled layers carry expected
# dm-verity root hashes (from layer_cache). best_effort uses them when known;
# required refuses a container rootfs on guest-pulled layers whose hashes
# are not all known.
mode = "best_effort"

# Absolute path of a genpolicy layers-cache.json (genpolicy -u), or "" for
# none.
layer_cache = ""

# Write /etc/passwd and /etc/group from the layer cache into guest-pulled
# layer directories, so the host can resolve named users (runAsUser by name).
write_passwd = true

[metrics]
# Prometheus /metrics endpoint: IPv4:port (e.g. "127.0.0.1:9110"),
# localhost:port or :port (every interface); "" turns it off.
address = ""
)toml";

}  // namespace config
}  // namespace snapshotter
