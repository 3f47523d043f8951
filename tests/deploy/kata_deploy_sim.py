#!/usr/bin/env python3
"""Test stand-in for kata-deploy 4.x's containerd edits (not for production).

Writes what kata-deploy's Rust installer writes, the way it writes it, so the
guest-pull install can be tested before, after and around it:
- containerd 1.x (config version 2): the main config, backed up once as
  config.toml.bak; cleanup puts the backup back (the whole file).
- containerd 2.x: a drop-in, /etc/containerd/conf.d/kata-deploy.toml when
  containerd >= 2.2 and the main config imports /etc/containerd/conf.d (no
  main-file edit), else /opt/kata/containerd/config.d/kata-deploy.toml
  appended to the main config's `imports`; cleanup removes both again.
- per shim: runtime `kata-<shim>` with runtime_type io.containerd.kata-<shim>.v2,
  runtime_path, privileged_without_host_devices, pod_annotations,
  container_annotations, options.ConfigPath, and for a SNAPSHOTTER_HANDLER_MAPPING
  entry its `snapshotter` (plus, for split-CRI configs, the images plugin's
  runtime_platforms.<runtime>.snapshotter). The mapping needs containerd >= 1.7.
  It never registers a proxy plugin for a snapshotter it did not install.
Edits follow toml_edit's behaviour: setting an existing key rewrites its line
without the old trailing comment; a new key goes after the table's last key,
unindented; a new table goes at the end of the document, before any trailing
comment lines.

Usage: kata_deploy_sim.py install|cleanup --root HOST_ROOT --containerd VERSION
       [--shims "qemu-coco-dev qemu-tdx"] [--mapping qemu-coco-dev:guest-pull,...]
"""

import argparse
import json
import os
import re
import sys
import tomllib

CONFIG = "/etc/containerd/config.toml"
OPT_DROPIN = "/opt/kata/containerd/config.d/kata-deploy.toml"
CONFD_DROPIN = "/etc/containerd/conf.d/kata-deploy.toml"
HEADER = re.compile(r"^\s*\[(?!\[)\s*(.*?)\s*\]\s*(#.*)?$")
KEY = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def split_key(text):
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def render_key(part):
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)


def render(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return json.dumps(value)


class Doc:
    """Just enough of toml_edit's editing behaviour for containerd configs."""

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)

    def headers(self):
        return [(i, split_key(m.group(1))) for i, line in enumerate(self.lines)
                if (m := HEADER.match(line))]

    def span(self, table):
        heads = self.headers()
        for n, (i, path) in enumerate(heads):
            if path == table:
                return i, heads[n + 1][0] if n + 1 < len(heads) else len(self.lines)
        return None

    def set(self, table, key, value):
        line = f"{render_key(key)} = {render(value)}\n"
        span = self.span(table) if table else (-1, self.headers()[0][0]
                                                if self.headers() else len(self.lines))
        if span is None:
            end = len(self.lines)
            while end > 0 and (not self.lines[end - 1].strip()
                               or self.lines[end - 1].lstrip().startswith("#")):
                end -= 1
            block = ["\n", "[" + ".".join(render_key(p) for p in table) + "]\n", line]
            self.lines[end:end] = block if end else block[1:]
            return
        start, end = span
        last = start
        for i in range(start + 1, end):
            m = KEY.match(self.lines[i])
            if m and split_key(m.group(1)) == [key]:
                indent = re.match(r"\s*", self.lines[i]).group(0)
                stop = i + 1
                if self.lines[i].split("=", 1)[1].strip().startswith("[") and "]" not in self.lines[i]:
                    while stop < end and "]" not in self.lines[stop - 1]:
                        stop += 1
                self.lines[i:stop] = [indent + line]
                return
            if self.lines[i].strip() and not self.lines[i].lstrip().startswith("#"):
                last = i
        self.lines.insert(last + 1, line)

    def append_import(self, path):
        for i, line in enumerate(self.lines):
            m = re.match(r"^(\s*imports\s*=\s*\[)(.*?)(\].*)$", line, re.S)
            if m:
                if json.dumps(path) in m.group(2) or f"'{path}'" in m.group(2):
                    return
                inner = m.group(2).rstrip()
                sep = ", " if inner.strip() else ""
                self.lines[i] = f"{m.group(1)}{inner}{sep}{json.dumps(path)}{m.group(3)}"
                return
        self.set([], "imports", [path])

    def remove_import(self, path):
        for i, line in enumerate(self.lines):
            if re.match(r"^\s*imports\s*=", line):
                for quoted in (json.dumps(path), f"'{path}'"):
                    line = re.sub(r",?\s*" + re.escape(quoted), "", line, count=1)
                self.lines[i] = re.sub(r"\[\s*,\s*", "[", line)

    def text(self):
        return "".join(self.lines)


def version_tuple(text):
    return tuple(int(x) for x in text.split(".")[:2])


def paths(root, containerd):
    cfg = root + CONFIG
    with open(cfg, "rb") as fh:
        main = tomllib.load(fh)
    if version_tuple(containerd) < (2, 0):
        return cfg, None, False
    imports = main.get("imports", [])
    if version_tuple(containerd) >= (2, 2) and any("/etc/containerd/conf.d" in p for p in imports):
        return root + CONFD_DROPIN, None, True
    return root + OPT_DROPIN, OPT_DROPIN, True


def edit(path, fn):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    doc = Doc(text)
    fn(doc)
    out = doc.text()
    tomllib.loads(out)  # what toml_edit writes always parses
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(out)


def install(args):
    cfg = args.root + CONFIG
    target, import_path, drop_in = paths(args.root, args.containerd)
    with open(cfg, "rb") as fh:
        split = tomllib.load(fh).get("version", 1) >= 3
    if not drop_in and not os.path.exists(cfg + ".bak"):
        with open(cfg, "rb") as src, open(cfg + ".bak", "wb") as dst:
            dst.write(src.read())
    if import_path:
        edit(cfg, lambda d: d.append_import(import_path))
    mapping = {}
    if args.mapping and version_tuple(args.containerd) < (1, 7):
        print("kata-deploy (sim): containerd < 1.7, SNAPSHOTTER_HANDLER_MAPPING not applied",
              file=sys.stderr)
    elif args.mapping:
        mapping = dict(m.split(":") for m in args.mapping.split(",") if m)
    plugin = "io.containerd.cri.v1.runtime" if split else "io.containerd.grpc.v1.cri"

    def write(doc):
        for shim in args.shims.split():
            runtime = f"kata-{shim}"
            table = ["plugins", plugin, "containerd", "runtimes", runtime]
            doc.set(table, "runtime_type", f"io.containerd.{runtime}.v2")
            doc.set(table, "runtime_path", "/opt/kata/bin/containerd-shim-kata-v2")
            doc.set(table, "privileged_without_host_devices", True)
            doc.set(table, "pod_annotations", ["io.katacontainers.*"])
            doc.set(table, "container_annotations",
                    ["io.kubernetes.container.terminationMessage*"])
            doc.set(table + ["options"], "ConfigPath",
                    f"/opt/kata/share/defaults/kata-containers/configuration-{shim}.toml")
            if shim in mapping:
                doc.set(table, "snapshotter", mapping[shim])
                if split:
                    doc.set(["plugins", "io.containerd.cri.v1.images", "runtime_platforms",
                             runtime], "snapshotter", mapping[shim])
    edit(target, write)


def cleanup(args):
    cfg = args.root + CONFIG
    target, import_path, drop_in = paths(args.root, args.containerd)
    if not drop_in:
        if os.path.exists(cfg + ".bak"):
            os.replace(cfg + ".bak", cfg)
        return
    if import_path:
        edit(cfg, lambda d: d.remove_import(import_path))
    if os.path.exists(target):
        os.remove(target)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("action", choices=("install", "cleanup"))
    p.add_argument("--root", required=True)
    p.add_argument("--containerd", required=True, help="containerd version, e.g. 1.7.35")
    p.add_argument("--shims", default="qemu-coco-dev")
    p.add_argument("--mapping", default="")
    args = p.parse_args(argv)
    args.root = args.root.rstrip("/")
    (install if args.action == "install" else cleanup)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
