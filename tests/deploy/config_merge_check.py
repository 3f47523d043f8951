#!/usr/bin/env python3
"""Assertions of tests/deploy/config_merge.sh on containerd configs.

  effective ROOT                  the effective config of the host root ROOT
                                  (main file + imports, merged the way the
                                  config's containerd version does), as JSON
  same ROOT_A ROOT_B              A and B have the same effective config
  files ROOT LAYOUT H...          our settings are in effect for handlers H,
                                  read from the files (LAYOUT: v2, v2-global, v3;
                                  -nosnap: containerd 1.6's dump, which has no
                                  per-runtime snapshotter)
  dump FILE LAYOUT H...           the same, read from `containerd config dump`
  absent ROOT|FILE                no proxy plugin guest-pull, no guest-pull
                                  snapshotter apart from those in --kata-owned
  noruntime FILE LAYOUT H...      a dump without any runtime (or platform) H
  nohalf FILE LAYOUT H...         a dump without a runtime H that has no
                                  runtime_type (containerd would run it with runc)
  snapshotter ROOT|FILE LAYOUT H  prints runtime H's snapshotter
  kata ROOT LAYOUT SHIM...        kata-deploy's runtimes are all there, intact
  same-dump FILE_A FILE_B         two dumps equal apart from `imports`
Exit 0 when it holds, else 1 with the reason.
"""

import glob
import json
import os
import sys
import tomllib

PLUGIN = "guest-pull"
ADDRESS = "/run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock"
CRI_V2 = "io.containerd.grpc.v1.cri"
IMAGES = "io.containerd.cri.v1.images"
RUNTIME = "io.containerd.cri.v1.runtime"


def load(path):
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def deep_merge(dst, src):
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            deep_merge(dst[key], value)
        else:
            dst[key] = value
    return dst


def effective(root):
    """Main config plus imports: key by key (2.x), or whole plugin sections
    and per-name proxy plugins (1.x), as containerd merges them."""
    main = load(root + "/etc/containerd/config.toml")
    split = main.get("version", 1) >= 3
    doc = json.loads(json.dumps(main))
    for pattern in main.get("imports", []):
        for path in sorted(glob.glob(root + pattern)) if "*" in pattern else [root + pattern]:
            if not os.path.exists(path):
                continue
            imported = load(path)
            imported.pop("version", None)
            imported.pop("imports", None)
            if split:
                deep_merge(doc, imported)
                continue
            for key, value in imported.items():
                if key in ("plugins", "proxy_plugins") and isinstance(doc.get(key), dict):
                    doc[key].update(value)
                else:
                    doc[key] = value
    doc.pop("imports", None)
    return doc


def get(doc, *path):
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def expect(errors, what, got, want):
    if got != want:
        errors.append(f"{what}: got {got!r}, want {want!r}")


def ours(doc, layout, handlers):
    errors = []
    proxy = get(doc, "proxy_plugins", PLUGIN) or {}
    expect(errors, "proxy_plugins.guest-pull", {k: proxy.get(k) for k in ("type", "address")},
           {"type": "snapshot", "address": ADDRESS})
    if layout.startswith("v2"):
        cri = get(doc, "plugins", CRI_V2, "containerd") or {}
        expect(errors, "cri disable_snapshot_annotations", cri.get("disable_snapshot_annotations"), False)
        expect(errors, "cri discard_unpacked_layers", cri.get("discard_unpacked_layers"), False)
        if "global" in layout:
            expect(errors, "cri snapshotter (global)", cri.get("snapshotter"), PLUGIN)
        runtimes = cri.get("runtimes") or {}
        platforms = None
    else:
        images = get(doc, "plugins", IMAGES) or {}
        expect(errors, "images disable_snapshot_annotations", images.get("disable_snapshot_annotations"), False)
        expect(errors, "images discard_unpacked_layers", images.get("discard_unpacked_layers"), False)
        runtimes = get(doc, "plugins", RUNTIME, "containerd", "runtimes") or {}
        platforms = images.get("runtime_platforms") or {}
    for h in handlers:
        runtime = runtimes.get(h) or {}
        if "nosnap" not in layout:
            expect(errors, f"runtimes.{h}.snapshotter", runtime.get("snapshotter"), PLUGIN)
        expect(errors, f"runtimes.{h}.runtime_type", runtime.get("runtime_type"), f"io.containerd.{h}.v2")
        if platforms is not None:
            expect(errors, f"runtime_platforms.{h}.snapshotter",
                   (platforms.get(h) or {}).get("snapshotter"), PLUGIN)
    for name, runtime in runtimes.items():
        if name not in handlers and runtime.get("snapshotter") not in (None, ""):
            errors.append(f"runtime {name} (not ours) got snapshotter {runtime['snapshotter']!r}")
    return errors


def kata(doc, layout, shims):
    errors = []
    plugin = CRI_V2 if layout.startswith("v2") else RUNTIME
    runtimes = get(doc, "plugins", plugin, "containerd", "runtimes") or {}
    for shim in shims:
        r = runtimes.get(f"kata-{shim}") or {}
        expect(errors, f"kata-{shim}.runtime_type", r.get("runtime_type"), f"io.containerd.kata-{shim}.v2")
        expect(errors, f"kata-{shim}.pod_annotations", r.get("pod_annotations"), ["io.katacontainers.*"])
        expect(errors, f"kata-{shim}.privileged_without_host_devices",
               r.get("privileged_without_host_devices"), True)
        expect(errors, f"kata-{shim}.options.ConfigPath", get(r, "options", "ConfigPath"),
               f"/opt/kata/share/defaults/kata-containers/configuration-{shim}.toml")
    return errors


def absent(doc, kata_owned):
    errors = []
    if get(doc, "proxy_plugins", PLUGIN) is not None:
        errors.append("proxy_plugins.guest-pull is still there")

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif node == PLUGIN and path[-1] == "snapshotter" and path[-2] not in kata_owned:
            errors.append(".".join(path) + " is still guest-pull")
    walk(doc, [])
    return errors


def strip_imports(text):
    return [ln for ln in text.splitlines() if not ln.startswith("imports = ")]


def main(argv):
    cmd, rest = argv[0], argv[1:]
    kata_owned = []
    if "--kata-owned" in rest:
        i = rest.index("--kata-owned")
        kata_owned, rest = rest[i + 1:], rest[:i]
    if cmd == "effective":
        print(json.dumps(effective(rest[0]), indent=1, sort_keys=True))
        return 0
    if cmd == "same":
        a, b = effective(rest[0]), effective(rest[1])
        errors = [] if a == b else ["effective configs differ:\n" + "\n".join(
            f"  {k}" for k in sorted(set(json.dumps(a, sort_keys=True, indent=0).splitlines())
                                     ^ set(json.dumps(b, sort_keys=True, indent=0).splitlines())))]
    elif cmd == "same-dump":
        a, b = (strip_imports(open(p).read()) for p in rest[:2])
        errors = [] if a == b else ["dumps differ"]
    elif cmd in ("files", "dump"):
        doc = effective(rest[0]) if cmd == "files" else load(rest[0])
        errors = ours(doc, rest[1], rest[2:])
    elif cmd == "noruntime":
        doc = load(rest[0])
        plugin = CRI_V2 if rest[1].startswith("v2") else RUNTIME
        runtimes = get(doc, "plugins", plugin, "containerd", "runtimes") or {}
        platforms = get(doc, "plugins", IMAGES, "runtime_platforms") or {}
        errors = [f"{h} is defined" for h in rest[2:] if h in runtimes or h in platforms]
    elif cmd == "nohalf":
        doc = load(rest[0])
        plugin = CRI_V2 if rest[1].startswith("v2") else RUNTIME
        runtimes = get(doc, "plugins", plugin, "containerd", "runtimes") or {}
        errors = [f"{h} has no runtime_type: {runtimes[h]}" for h in rest[2:]
                  if h in runtimes and not runtimes[h].get("runtime_type")]
    elif cmd == "snapshotter":
        doc = effective(rest[0]) if os.path.isdir(rest[0]) else load(rest[0])
        plugin = CRI_V2 if rest[1].startswith("v2") else RUNTIME
        print(get(doc, "plugins", plugin, "containerd", "runtimes", rest[2], "snapshotter"))
        return 0
    elif cmd == "kata":
        errors = kata(effective(rest[0]), rest[1], rest[2:])
    elif cmd == "absent":
        doc = effective(rest[0]) if os.path.isdir(rest[0]) else load(rest[0])
        errors = absent(doc, kata_owned)
    else:
        errors = [f"unknown command {cmd}"]
    for error in errors:
        print(error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
