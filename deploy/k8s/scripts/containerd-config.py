#!/usr/bin/env python3
"""Merge the guest-pull snapshotter settings into a host's containerd config.

Used by install.sh / uninstall.sh (deploy/k8s/scripts). Needs only the Python
standard library (3.11+, for tomllib).

Why a line editor and not "parse, change, dump": the host's config.toml
belongs to the operator (and often to kata-deploy too). Re-serialising it
would drop comments and reorder everything. This tool changes as few lines as
possible, marks each of them, and re-parses the result to prove that the
intended values are in effect before anything is written.

What goes where (see deploy/containerd/README.md for the reasons):
  config version 2 (containerd 1.6 / 1.7): containerd 1.x replaces a whole
    plugin section when an imported file mentions it, so CRI settings can't
    live in a drop-in. The drop-in carries only [proxy_plugins.<name>]; the
    CRI keys are set in the main file.
  config version 3 (containerd 2.x): imports are merged key by key
    (containerd PR #9982), so every setting lives in the drop-in and the
    main file only gains an `imports` entry.

Sub-commands:
  version CONFIG                 print 2 or 3
  dropin --version N ...         print the drop-in file
  merge CONFIG ...               print CONFIG with the settings merged in
  check CONFIG ...               exit 0 if CONFIG already has every setting
Exit codes: 0 ok, 1 usage/parse error, 2 unsupported config,
3 the kata runtime is not (yet) defined in containerd's config.
"""

import argparse
import fnmatch
import json
import os
import re
import sys
import tomllib

MARK = "guest-pull-snapshotter"
CRI_V2 = "io.containerd.grpc.v1.cri"
CRI_V3_IMAGES = "io.containerd.cri.v1.images"
CRI_V3_RUNTIME = "io.containerd.cri.v1.runtime"

EXIT_USAGE = 1
EXIT_UNSUPPORTED = 2
EXIT_NO_RUNTIME = 3


class ConfigError(Exception):
    def __init__(self, message, code=EXIT_UNSUPPORTED):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- TOML bits

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_str(value):
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"unsupported value {value!r}")


def toml_key(part):
    return part if BARE_KEY.fullmatch(part) else toml_str(part)


def table_header(path):
    return "[" + ".".join(toml_key(p) for p in path) + "]"


def parse_key_path(text):
    """Split a dotted TOML key (`a."b.c".d`) into its parts; None if invalid."""
    parts, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        if text[i] == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j:j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            if j >= n:
                return None
            parts.append(json.loads('"' + "".join(buf) + '"'))
            i = j + 1
        elif text[i] == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return None
            parts.append(text[i + 1:j])
            i = j + 1
        else:
            m = BARE_KEY.match(text, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return parts
        if text[i] != ".":
            return None
        i += 1


HEADER = re.compile(r"^\s*\[(?!\[)(.*)\]\s*(#.*)?$")
ARRAY_HEADER = re.compile(r"^\s*\[\[")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_\-\"'. ]+?)\s*=(.*)$")


class Lines:
    """The config as lines, with the table each line belongs to."""

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"

    def text(self):
        return "".join(self.lines)

    def scan(self):
        """Yield (index, kind, data): kind is 'header' (data = path),
        'array' (array-of-tables header) or 'line'. Lines inside multi-line
        strings are reported as plain lines."""
        in_string = None
        for idx, line in enumerate(self.lines):
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                yield idx, "line", None
                continue
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_string = quote
            if in_string:
                yield idx, "line", None
                continue
            if ARRAY_HEADER.match(line):
                yield idx, "array", None
                continue
            m = HEADER.match(line)
            if m:
                path = parse_key_path(m.group(1))
                if path is not None:
                    yield idx, "header", path
                    continue
            yield idx, "line", None

    def table_span(self, path):
        """(header index, end index) of the table `path`, or None."""
        start = None
        for idx, kind, data in self.scan():
            if start is not None and kind in ("header", "array"):
                return start, idx
            if kind == "header" and data == path:
                start = idx
        if start is not None:
            return start, len(self.lines)
        return None

    def top_level_end(self):
        for idx, kind, _ in self.scan():
            if kind in ("header", "array"):
                return idx
        return len(self.lines)

    def find_key(self, begin, end, key):
        for idx in range(begin, end):
            m = KEY_LINE.match(self.lines[idx])
            if m and parse_key_path(m.group(2)) == [key]:
                return idx
        return None


def lookup(doc, path):
    node = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def value_span(lines, idx):
    """Indices [idx, end) covered by the key/value starting at line idx: one
    line, or for an array until its brackets balance (brackets inside quoted
    strings are not counted)."""
    first = lines.lines[idx].split("=", 1)[1].lstrip()
    if not first.startswith("["):
        return idx + 1
    depth, end = 0, idx
    while end < len(lines.lines):
        code = lines.lines[end] if end > idx else first
        code = QUOTED.sub("", code).split("#", 1)[0]
        depth += code.count("[") - code.count("]")
        end += 1
        if depth <= 0:
            break
    return end


# ------------------------------------------------------------- the editor


class Editor:
    def __init__(self, text):
        self.lines = Lines(text)

    def doc(self):
        try:
            return tomllib.loads(self.lines.text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"containerd config is not valid TOML: {exc}", EXIT_USAGE)

    def set_key(self, table, key, value):
        """Make table.key == value, touching as little as possible."""
        if lookup(self.doc(), table + [key]) == value:
            return
        span = self.lines.table_span(table)
        new_line = f"{toml_key(key)} = {toml_value(value)}  # set by {MARK}\n"
        if span is None:
            block = ["\n", f"# BEGIN {MARK}: added by containerd-guest-pull-grpc; "
                     "uninstall restores the original file\n",
                     table_header(table) + "\n", "  " + new_line, f"# END {MARK}\n"]
            self.lines.lines.extend(block)
        else:
            start, end = span
            found = self.lines.find_key(start + 1, end, key)
            if found is None:
                indent = re.match(r"\s*", self.lines.lines[start]).group(0) + "  "
                self.lines.lines.insert(start + 1, indent + new_line)
            else:
                indent = KEY_LINE.match(self.lines.lines[found]).group(1)
                stop = value_span(self.lines, found)
                self.lines.lines[found:stop] = [indent + new_line]
        if lookup(self.doc(), table + [key]) != value:
            raise ConfigError(
                f"could not set {'.'.join(table + [key])}: the table is defined in a form "
                "this tool does not edit (dotted keys or an inline table); "
                "set it by hand, see deploy/containerd/README.md")

    def ensure_import(self, dropin, config_path):
        """Make sure containerd imports `dropin` (a path as containerd sees it)."""
        imports = self.doc().get("imports", [])
        if not isinstance(imports, list):
            raise ConfigError("`imports` in the containerd config is not an array")
        base = os.path.dirname(config_path)
        for pattern in imports:
            if not isinstance(pattern, str):
                continue
            if "*" in pattern:
                if fnmatch.fnmatchcase(dropin, pattern):
                    return
            else:
                resolved = os.path.normpath(pattern if os.path.isabs(pattern)
                                            else os.path.join(base, pattern))
                if resolved == dropin:
                    return
        top_end = self.lines.top_level_end()
        new_line = f"imports = {toml_value(imports + [dropin])}  # {MARK} added {toml_str(dropin)}\n"
        idx = self.lines.find_key(0, top_end, "imports")
        if idx is not None:
            self.lines.lines[idx:value_span(self.lines, idx)] = [new_line]
        else:
            where = self.lines.find_key(0, top_end, "version")
            where = 0 if where is None else where + 1
            self.lines.lines.insert(where, new_line)
        if dropin not in self.doc().get("imports", []):
            raise ConfigError("could not add the drop-in to `imports`")


# --------------------------------------------------------- the settings


def config_version(doc):
    version = doc.get("version")
    if version in (2, 3):
        return version
    raise ConfigError(
        f"containerd config version {version!r} is not supported: guest pull needs a "
        "`version = 2` (containerd 1.6/1.7) or `version = 3` (containerd 2.x) config; "
        "regenerate it with `containerd config default` or migrate it with "
        "`containerd config migrate`")


def dropin_text(version, args):
    lines = [
        f"# containerd drop-in written by containerd-guest-pull-grpc ({MARK}).",
        "# Removed again by its uninstaller; see deploy/containerd/README.md.",
        f"version = {version}",
        "",
        f"[proxy_plugins.{toml_key(args.plugin)}]",
        '  type = "snapshot"',
        f"  address = {toml_str(args.address)}",
    ]
    if version == 3:
        images = f"plugins.{toml_str(CRI_V3_IMAGES)}"
        runtime = f"plugins.{toml_str(CRI_V3_RUNTIME)}"
        lines += [
            "",
            f"[{images}]",
            "  disable_snapshot_annotations = false",
            "  discard_unpacked_layers = false",
        ]
        if args.global_snapshotter:
            lines.append(f"  snapshotter = {toml_str(args.plugin)}")
        lines += [
            "",
            f"[{images}.runtime_platforms.{toml_key(args.runtime)}]",
            f"  snapshotter = {toml_str(args.plugin)}",
            "",
            f"[{runtime}.containerd.runtimes.{toml_key(args.runtime)}]",
            f"  snapshotter = {toml_str(args.plugin)}",
        ]
    return "\n".join(lines) + "\n"


def v2_settings(args):
    base = ["plugins", CRI_V2, "containerd"]
    settings = [
        (base, "disable_snapshot_annotations", False),
        (base, "discard_unpacked_layers", False),
    ]
    if args.global_snapshotter:
        settings.append((base, "snapshotter", args.plugin))
    settings.append((base + ["runtimes", args.runtime], "snapshotter", args.plugin))
    return settings


def imported_docs(doc, config_path, host_root):
    """(path, parsed) of every existing file the main config imports."""
    out = []
    base = os.path.dirname(config_path)
    for pattern in doc.get("imports", []) or []:
        if not isinstance(pattern, str):
            continue
        if "*" in pattern:
            import glob
            paths = sorted(p[len(host_root):] if host_root else p
                           for p in glob.glob(host_root + pattern))
        else:
            paths = [os.path.normpath(pattern if os.path.isabs(pattern)
                                      else os.path.join(base, pattern))]
        for path in paths:
            try:
                with open(host_root + path, "rb") as fh:
                    out.append((path, tomllib.load(fh)))
            except FileNotFoundError:
                continue
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"imported containerd config {path} is not valid TOML: {exc}")
    return out


def runtime_path(version, runtime):
    if version == 2:
        return ["plugins", CRI_V2, "containerd", "runtimes", runtime]
    return ["plugins", CRI_V3_RUNTIME, "containerd", "runtimes", runtime]


def require_runtime(version, doc, imports, args):
    path = runtime_path(version, args.runtime)
    for _, parsed in [("main", doc)] + imports:
        node = lookup(parsed, path)
        if isinstance(node, dict) and node.get("runtime_type"):
            return
    raise ConfigError(
        f"containerd has no runtime {args.runtime!r} ({'.'.join(path)}.runtime_type); "
        "install Kata Containers (kata-deploy) first", EXIT_NO_RUNTIME)


def merge(text, args):
    editor = Editor(text)
    doc = editor.doc()
    version = config_version(doc)
    imports = [(p, d) for p, d in imported_docs(doc, args.config_path, args.host_root)
               if p != args.dropin]
    require_runtime(version, doc, imports, args)
    if version == 2:
        for path, parsed in imports:
            if lookup(parsed, ["plugins", CRI_V2]) is not None:
                raise ConfigError(
                    f"the CRI plugin is configured in the imported file {path}; containerd 1.x "
                    "replaces whole plugin sections on import, so settings in the main file "
                    "would be lost. Set the keys listed in deploy/containerd/README.md in "
                    f"{path} by hand")
        for table, key, value in v2_settings(args):
            editor.set_key(table, key, value)
    editor.ensure_import(args.dropin, args.config_path)
    return editor.lines.text()


def check(text, args):
    """True if `text` plus the drop-in already carry every setting."""
    try:
        return merge(text, args) == Lines(text).text() and text.endswith("\n")
    except ConfigError:
        return False


# ------------------------------------------------------------------ main


def read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--plugin", default="guest-pull", help="proxy plugin name")
        p.add_argument("--runtime", default="kata-qemu-coco-dev", help="CRI runtime handler")
        p.add_argument("--address", default="/run/containerd-guest-pull-grpc/"
                       "containerd-guest-pull-grpc.sock", help="snapshotter socket")
        p.add_argument("--global-snapshotter", action="store_true",
                       help="also make the plugin the default CRI snapshotter "
                       "(containerd 1.6, kata-only nodes)")

    p = sub.add_parser("version")
    p.add_argument("config")
    p = sub.add_parser("dropin")
    p.add_argument("--version", type=int, choices=(2, 3), required=True)
    common(p)
    for name in ("merge", "check"):
        p = sub.add_parser(name)
        p.add_argument("config", help="file to read (may be a copy)")
        p.add_argument("--config-path", default="/etc/containerd/config.toml",
                       help="where containerd reads the config on the host")
        p.add_argument("--dropin", default="/etc/containerd/conf.d/guest-pull.toml",
                       help="drop-in path as containerd sees it")
        p.add_argument("--host-root", default="", help="prefix for host paths")
        common(p)
    args = parser.parse_args(argv)
    if hasattr(args, "host_root"):
        args.host_root = args.host_root.rstrip("/")

    try:
        if args.cmd == "version":
            print(config_version(Editor(read(args.config)).doc()))
        elif args.cmd == "dropin":
            sys.stdout.write(dropin_text(args.version, args))
        elif args.cmd == "merge":
            sys.stdout.write(merge(read(args.config), args))
        elif args.cmd == "check":
            return 0 if check(read(args.config), args) else 1
    except ConfigError as exc:
        print(f"containerd-config: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
