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
root="$1"
shift
if [ ! -d /etc/containerd ]; then
    mount -t tmpfs tmpfs /mnt
    mkdir /mnt/upper /mnt/work
    mount -t overlay overlay -o lowerdir=/etc,upperdir=/mnt/upper,workdir=/mnt/work /etc
    mkdir /etc/containerd
fi
mount --bind "$root/etc/containerd" /etc/containerd
if [ -d "$root/opt/kata" ]; then
    mount -t tmpfs tmpfs /opt
    mkdir -p /opt/kata
    mount --bind "$root/opt/kata" /opt/kata
fi
exec "$@"
