"""Link options shared by the binaries shipped to nodes."""

# Shipped binaries look for their libraries first in
# <prefix>/lib/containerd-guest-pull-grpc next to <prefix>/bin, where the
# DaemonSet installs the Debian 12 libraries they were built against; a node
# without that directory uses its system libraries as usual.
SHIPPED_BINARY_LINKOPTS = [
    "-Wl,-rpath,$$ORIGIN/../lib/containerd-guest-pull-grpc",
    "-Wl,--disable-new-dtags",
]
