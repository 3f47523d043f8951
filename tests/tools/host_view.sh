#!/bin/sh
# host_view.sh ROOT CMD [ARG...]: runs CMD in a private mount namespace in
# which ROOT/etc/containerd is seen at /etc/containerd (and ROOT/opt/kata,
# when it exists, at /opt/kata): the containerd configs of a test host name
# host paths such as their drop-ins. A machine without /etc/containerd (its
# containerd package's config removed) gets one in a tmpfs-backed overlay of
# /etc that only this namespace sees; the machine's files are not changed.
set -eu
if [ "${HOST_VIEW_INSIDE:-}" != 1 ]; then
    HOST_VIEW_INSIDE=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
unset HOST_VIEW_INSIDE
# Never in the machine's own mount namespace (an inherited variable).
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
    echo "host_view.sh: not in a private mount namespace; nothing mounted" >&2
    exit 1
fi
# Paths relative to ROOT from here: the mounts below may cover where it is.
cd "$1"
shift
if [ ! -d /etc/containerd ]; then
    mount -t tmpfs tmpfs /mnt
    mkdir /mnt/upper /mnt/work
    mount -t overlay overlay -o lowerdir=/etc,upperdir=/mnt/upper,workdir=/mnt/work /etc
    mkdir /etc/containerd
fi
mount --bind etc/containerd /etc/containerd
if [ -d opt/kata ]; then
    mount -t tmpfs tmpfs /opt
    mkdir -p /opt/kata
    mount --bind opt/kata /opt/kata
fi
exec "$@"
