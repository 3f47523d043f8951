#!/usr/bin/env python3
"""Host paths as the installer pod reaches them: under the host root, with
their symbolic links resolved as the host resolves them.

The DaemonSet mounts the host's / at $HOST_ROOT. Opening
"$HOST_ROOT/etc/containerd/conf.d/x.toml" from the pod lets the pod's kernel
follow the links on the way, and it takes an absolute target
(/etc/containerd/conf.d/x.toml -> /opt/cfg/x.toml) and a relative one that
climbs above the host's / against the pod's /: another file, or none, is
read, and a write lands in the pod. Every host file the installer reads or
writes is reached through `realpath` here instead (containerd-config.py
and go_glob.py import it; lib.sh's host_realpath is the same walk in bash,
and tests/deploy/host_links.sh checks that the two agree).

Usage: host_path.py ROOT PATH: prints PATH's links resolved within ROOT
(exit 1 after MAX_LINKS links, a loop).
"""

import os
import sys

# As Linux (MAXSYMLINKS): a loop ends with an error, as it does for containerd.
MAX_LINKS = 40


def realpath(root, path, follow_last=True):
    """Host path `path` with its symbolic links resolved inside `root` (the
    host's / in this file system, "" for /): an absolute target starts again
    at `root`, `..` stops there. Components that do not exist are kept as
    they are; the last one is not followed when `follow_last` is false (as
    lstat). None after MAX_LINKS links."""
    pending = path.split("/")[::-1]  # the next component last
    resolved, links = "", 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            resolved = resolved[:resolved.rfind("/")] if resolved else ""
            continue
        here = resolved + "/" + comp
        last = not any(c not in ("", ".") for c in pending)
        if (follow_last or not last) and os.path.islink(root + here):
            links += 1
            if links > MAX_LINKS:
                return None
            target = os.readlink(root + here)
            if target.startswith("/"):
                resolved = ""
            pending.extend(target.split("/")[::-1])
        else:
            resolved = here
    return resolved or "/"


def host(root, path, follow_last=True):
    """`path` as a path in this file system (`root` + its resolved host
    path); None after MAX_LINKS links (nothing to open there)."""
    resolved = realpath(root, path, follow_last)
    return None if resolved is None else root + resolved


def main(argv):
    if len(argv) != 2:
        print("usage: host_path.py ROOT PATH", file=sys.stderr)
        return 2
    resolved = realpath(argv[0].rstrip("/"), argv[1])
    if resolved is None:
        return 1
    sys.stdout.buffer.write(os.fsencode(resolved) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
