#!/usr/bin/env python3
"""Merge the guest-pull snapshotter settings into a host's containerd config.

Used by containerd-setup.sh (install.sh, uninstall.sh, `make -C deploy
install`). Needs only the Python standard library (3.11+, for tomllib).
The line editor, its marks and `unmerge` are in containerd_toml.py.

Runtime handlers come as a list in kata-deploy's SNAPSHOTTER_HANDLER_MAPPING
syntax, `qemu-coco-dev:guest-pull,qemu-tdx:guest-pull` (shim names without
the `kata-` prefix; runtime `kata-<shim>`). Entries naming another
snapshotter (`qemu:nydus`) are not ours and are skipped, so the same value
can be given to both tools.

What goes where (see deploy/containerd/README.md for the reasons):
  config version 2 (containerd 1.6 / 1.7): containerd 1.x replaces a whole
    plugin section when an imported file mentions it, so CRI settings can't
    live in a drop-in. The drop-in carries only [proxy_plugins.<name>]; the
    CRI keys are set in the main file, each line marked.
  config version 3 and 4 (containerd 2.x): imports are merged key by key
    (containerd PR #9982), so every setting lives in the drop-in and the
    main file at most gains an `imports` entry.
A handler's snapshotter is only set once its runtime is registered
(runtime_type set, by kata-deploy or by hand): a runtime table holding only
`snapshotter` would make containerd run that handler's pods with runc.

Sub-commands:
  version CONFIG        print the config version (2, 3 or 4)
  dropin --version N    print the drop-in for every handler of the mapping
  merge CONFIG          print CONFIG with our settings (re)applied; our older
                        edits are undone first, so a changed mapping leaves
                        nothing stale; --dropin-out FILE gets the drop-in
  check CONFIG          exit 0 if `merge` would change nothing
  imports-by-name CONFIG  exit 0 if containerd loading CONFIG opens the
                        drop-in by name (an imports entry without `*`),
                        4 if it does not
  unmerge CONFIG        print CONFIG without our edits (others' entries stay;
                        without any, CONFIG's exact bytes);
                        --original FILE: FILE's exact bytes when only our edits
                        separate the two
Exit codes: 0 ok, 1 usage/parse error, 2 unsupported config,
3 a runtime of the mapping is not (yet) registered in containerd's config.
"""

import argparse
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts (repo, image)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from containerd_toml import (ConfigError, Editor, EXIT_USAGE, MARK, Lines,  # noqa: E402
                             lookup, parse, toml_key, toml_str, unmerge)
import go_glob  # noqa: E402
import host_path  # noqa: E402

CRI_V2 = "io.containerd.grpc.v1.cri"
CRI_V3_IMAGES = "io.containerd.cri.v1.images"
CRI_V3_RUNTIME = "io.containerd.cri.v1.runtime"
EXIT_NO_RUNTIME = 3
EXIT_NOT_IMPORTED = 4  # imports-by-name: no (1 and 2 are "cannot tell")
SHIM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def warn(message):
    print(f"containerd-config: {message}", file=sys.stderr)


def parse_mapping(mapping, plugin):
    """Runtime names of the `shim:snapshotter` entries that name `plugin`."""
    runtimes, seen = [], {}
    for entry in (e.strip() for e in mapping.split(",")):
        if not entry:
            continue
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) != 2 or not SHIM_NAME.fullmatch(parts[0]) or not parts[1]:
            raise ConfigError(f"bad entry {entry!r} in the handler mapping: want "
                              "`shim:snapshotter` (e.g. qemu-coco-dev:guest-pull)", EXIT_USAGE)
        shim, snapshotter = parts
        if seen.setdefault(shim, snapshotter) != snapshotter:
            raise ConfigError(f"shim {shim!r} is mapped to both {seen[shim]!r} and "
                              f"{snapshotter!r}", EXIT_USAGE)
        if snapshotter != plugin:
            warn(f"skipping {entry!r}: snapshotter {snapshotter!r} is not {plugin!r}")
        elif f"kata-{shim}" not in runtimes:
            runtimes.append(f"kata-{shim}")
    return runtimes


def handlers(args):
    runtimes = parse_mapping(args.mapping or "", args.plugin)
    for runtime in args.runtime or []:
        if runtime not in runtimes:
            runtimes.append(runtime)
    if not runtimes and not args.global_snapshotter:
        raise ConfigError(f"no runtime handler maps to {args.plugin!r}: set the mapping "
                          "(SNAPSHOTTER_HANDLER_MAPPING, e.g. qemu-coco-dev:guest-pull)",
                          EXIT_USAGE)
    return runtimes


def config_version(doc):
    version = doc.get("version")
    if version in (2, 3, 4):
        return version
    # containerd reads a file without `version` as version 1.
    shown = "1 (the file has no `version` key)" if version is None else repr(version)
    raise ConfigError(
        f"containerd config version {shown} is not supported: guest pull needs a "
        "`version = 2` (containerd 1.6/1.7) or `version = 3`/`4` (containerd 2.x) config; "
        "regenerate it with `containerd config default` or migrate it with "
        "`containerd config migrate`")


def runtime_path(version, runtime):
    plugin = CRI_V2 if version == 2 else CRI_V3_RUNTIME
    return ["plugins", plugin, "containerd", "runtimes", runtime]


# The first line of every drop-in we write: how an install tells its own
# drop-in from an operator's file at a path it used before.
DROPIN_HEADER = f"# containerd drop-in written by containerd-guest-pull-grpc ({MARK})."


def dropin_text(version, args, runtimes):
    lines = [DROPIN_HEADER,
             "# Removed again by its uninstaller; see deploy/containerd/README.md.",
             f"version = {version}", "",
             f"[proxy_plugins.{toml_key(args.plugin)}]",
             '  type = "snapshot"',
             f"  address = {toml_str(args.address)}"]
    if version >= 3:
        images = f"plugins.{toml_str(CRI_V3_IMAGES)}"
        lines += ["", f"[{images}]",
                  "  disable_snapshot_annotations = false",
                  "  discard_unpacked_layers = false"]
        if args.global_snapshotter:
            lines.append(f"  snapshotter = {toml_str(args.plugin)}")
        for runtime in runtimes:
            lines += ["", f"[{images}.runtime_platforms.{toml_key(runtime)}]",
                      f"  snapshotter = {toml_str(args.plugin)}"]
        for runtime in runtimes:
            lines += ["", f"[plugins.{toml_str(CRI_V3_RUNTIME)}.containerd.runtimes."
                      f"{toml_key(runtime)}]",
                      f"  snapshotter = {toml_str(args.plugin)}"]
    return "\n".join(lines) + "\n"


def v2_settings(args, runtimes):
    base = ["plugins", CRI_V2, "containerd"]
    settings = [(base, "disable_snapshot_annotations", False),
                (base, "discard_unpacked_layers", False)]
    if args.global_snapshotter:
        settings.append((base, "snapshotter", args.plugin))
    settings += [(base + ["runtimes", r], "snapshotter", args.plugin) for r in runtimes]
    return settings


def host_file(root, path):
    """Host file `path` as a path in this file system, its links followed
    within the host root (host_path.py: an absolute link target is the
    host's, not the installer pod's); "" after too many links (a loop),
    which names no file, as containerd then reads none."""
    return host_path.host(root, path) or ""


def import_pattern(pattern, config_path):
    """An `imports` entry as containerd resolves it: cleaned, and a relative
    one (a glob too) relative to the directory of the config naming it."""
    if not os.path.isabs(pattern):
        pattern = os.path.join(os.path.dirname(config_path), pattern)
    return go_glob.clean(pattern)


def imported_docs(doc, args):
    """(path, parsed) of every existing file containerd loads besides the
    main config and our drop-in, in its order: the main config's imports,
    then the imports of those (breadth first, each file once, a relative
    entry relative to the file naming it). A glob matching the main config
    does not load it again."""
    out, root = [], args.host_root
    loaded = {args.config_path, args.dropin}
    pending = [(p, args.config_path) for p in doc.get("imports", []) or []]
    while pending:  # each file is loaded once: bounded by the files there
        pattern, parent = pending.pop(0)
        if not isinstance(pattern, str):
            continue
        pattern = import_pattern(pattern, parent)
        paths = import_glob(pattern, root, parent) if "*" in pattern else [pattern]
        for path in paths:
            if path in loaded:
                continue
            on_host = host_file(root, path)
            if not os.path.exists(on_host):
                continue
            loaded.add(path)
            parsed = parse(read(on_host), f"imported containerd config {path}")
            out.append((path, parsed))
            pending.extend((p, path) for p in parsed.get("imports", []) or [])
    return out


def names_dropin(root, path, dropin):
    """True if host path `path` is the drop-in: spelt the same, or reaching
    the same file through links (e.g. an operator's link to conf.d)."""
    if path == dropin:
        return True
    resolved = host_path.realpath(root, path)
    return resolved is not None and resolved == host_path.realpath(root, dropin)


def imports_by_name(text, args):
    """True if containerd, loading the main config (`text`) and the files
    it imports, opens `args.dropin` by name (an `imports` entry without
    `*`, resolved as containerd resolves it): such a file must exist, or
    containerd does not start."""
    root, loaded = args.host_root, {args.config_path}
    pending = [(p, args.config_path) for p in parse(text).get("imports", []) or []]
    while pending:  # each file is read once: bounded by the files there
        pattern, parent = pending.pop(0)
        if not isinstance(pattern, str):
            continue
        pattern = import_pattern(pattern, parent)
        if "*" not in pattern and names_dropin(root, pattern, args.dropin):
            return True
        for path in import_glob(pattern, root, parent) if "*" in pattern else [pattern]:
            if path in loaded or path == args.dropin:
                continue
            on_host = host_file(root, path)
            if not os.path.isfile(on_host):
                continue
            loaded.add(path)
            parsed = parse(read(on_host), f"imported containerd config {path}")
            pending.extend((p, path) for p in parsed.get("imports", []) or [])
    return False


def valid_glob(pattern, config_path):
    """`pattern` if Go's filepath.Match takes it; else an error, as
    containerd does not start with it."""
    try:
        go_glob.match(pattern, "")
    except go_glob.BadPattern as e:
        raise ConfigError(f"{config_path}: imports entry {pattern!r} is no valid glob ({e}); "
                          "containerd does not start with it: correct it first")
    return pattern


def import_glob(pattern, root, config_path):
    """The files an `imports` glob names, in containerd's order (Go's
    filepath.Glob, go_glob.py)."""
    return go_glob.glob(valid_glob(pattern, config_path), root)


def covers(imports, dropin, config_path, version):
    for pattern in imports:
        if not isinstance(pattern, str):
            continue
        if version == 2 and "*" in pattern and not os.path.isabs(pattern):
            # containerd 1.6 and 1.7 before 1.7.29 glob a relative pattern
            # in their working directory, later releases in the config's:
            # ours is added too (containerd loads a file once).
            continue
        pattern = import_pattern(pattern, config_path)
        if "*" in pattern:
            # Go's filepath.Glob: `*` stays within one path element (it
            # does not match conf.d/guest-pull.toml for
            # /etc/containerd/*.toml), `[^x]` is negated, `[!x]` is not.
            parts, names = valid_glob(pattern, config_path).split("/"), dropin.split("/")
            if len(parts) == len(names) and all(go_glob.match(p, n) for n, p in zip(names, parts)):
                return True
        elif pattern == dropin:
            return True
    return False


CONF_D = "/etc/containerd/conf.d"


def import_entry(version, dropin):
    """What we add to `imports`. For containerd 2.x and a drop-in in
    /etc/containerd/conf.d, that directory's glob, as containerd 2.2+ has by
    default: kata-deploy (>= 2.2) takes any import naming /etc/containerd/conf.d
    for that glob and then puts its own drop-in there without an import of its
    own. Elsewhere, and for containerd 1.x (whole plugin sections are replaced
    on import: no globs), the file itself."""
    if version >= 3 and os.path.dirname(dropin) == CONF_D:
        return CONF_D + "/*.toml"
    return dropin


def others_rely_on(args, entry):
    """True if `entry` (an import we added) also loads files that are not ours."""
    if "*" not in entry:
        return False
    return any(p != args.dropin for p in import_glob(entry, args.host_root, args.config))


def registered(version, sources, runtimes, args):
    """The runtimes some file registers; fails or warns about the others."""
    found = []
    for runtime in runtimes:
        path = runtime_path(version, runtime)
        nodes = [(name, lookup(d, path)) for name, d in sources]
        if not any(isinstance(n, dict) and n.get("runtime_type") for _, n in nodes):
            continue
        found.append(runtime)
        for name, node in nodes:
            other = node.get("snapshotter") if isinstance(node, dict) else None
            if other and other != args.plugin:
                warn(f"runtime {runtime} has snapshotter {other!r} in {name}; this install "
                     f"sets {args.plugin!r} (see deploy/containerd/README.md, "
                     "'Next to kata-deploy')")
    missing = [r for r in runtimes if r not in found]
    if missing and args.missing_runtime == "fail":
        raise ConfigError(
            f"containerd has no runtime {', '.join(repr(m) for m in missing)} "
            f"({'.'.join(runtime_path(version, missing[0]))}.runtime_type); "
            "install Kata Containers (kata-deploy) first, or correct the handler list "
            "(SNAPSHOTTER_HANDLER_MAPPING)", EXIT_NO_RUNTIME)
    for runtime in missing:
        warn(f"runtime {runtime} is not registered (yet): its snapshotter is left to "
             "kata-deploy's SNAPSHOTTER_HANDLER_MAPPING or the next install")
    return found


def is_our_dropin(root, path, dropin):
    """True if host file `path` is our drop-in (reached through links) or
    one an install wrote elsewhere (DROPIN_HEADER: an earlier
    CONTAINERD_DROPIN, or the shipped drop-in copied by hand)."""
    return names_dropin(root, path, dropin) or has_dropin_header(host_file(root, path))


def has_dropin_header(on_host):
    """True if file `on_host` (a path in this file system) starts with
    DROPIN_HEADER: a drop-in an install wrote."""
    try:
        with open(on_host, "rb") as fh:
            first = fh.readline().rstrip(b"\r\n")
    except OSError:
        return False
    return first == DROPIN_HEADER.encode()


def check_dropin_path(args):
    """Refuses a drop-in path that holds something not ours (an operator's
    own file there): the install would replace it without a backup and
    uninstall delete it."""
    on_host = host_file(args.host_root, args.dropin)
    if (os.path.exists(on_host) or os.path.islink(on_host)) and not (
            os.path.isfile(on_host) and has_dropin_header(on_host)):
        raise ConfigError(
            f"{args.dropin} exists and is not a drop-in this installer wrote (its first "
            f"line is not {DROPIN_HEADER!r}): the install would replace it and uninstall "
            "remove it. Move it away, or set CONTAINERD_DROPIN to another path; nothing "
            "was changed")


def check_proxy_plugin(sources, args):
    """Refuses a proxy plugin of our name that another file registers for
    another socket or type: our drop-in would silently take its place
    (containerd lets an import override the main file, and a later import
    an earlier one), and uninstall would not bring it back."""
    for path, parsed in sources:
        if path != args.config_path and is_our_dropin(args.host_root, path, args.dropin):
            continue
        node = lookup(parsed, ["proxy_plugins", args.plugin])
        if node is None:
            continue
        if (not isinstance(node, dict) or node.get("address") != args.address
                or node.get("type", "snapshot") != "snapshot"):
            found = node if isinstance(node, dict) else {}
            raise ConfigError(
                f"{path} already registers the proxy plugin {args.plugin!r} with type "
                f"{found.get('type')!r} and address {found.get('address')!r}, not the "
                f"snapshotter at {args.address!r} this install configures: "
                "remove or rename that entry, or install with the same PLUGIN_NAME and "
                "SOCKET as it; nothing was changed")


def refuse_newly_loaded(entry, doc, args):
    """Refuses to add the glob import `entry` when it would make containerd
    load files it does not load now (an operator's, left in conf.d
    unimported): they would change the node's containerd behind the
    operator's back, and uninstall keeps a glob that others' files load
    through."""
    root = args.host_root
    loaded = {host_path.realpath(root, p) for p, _ in imported_docs(doc, args)}
    loaded.add(host_path.realpath(root, args.config_path))
    others = [p for p in import_glob(entry, root, args.config_path)
              if host_path.realpath(root, p) not in loaded
              and os.path.isfile(host_file(root, p))
              and not is_our_dropin(root, p, args.dropin)]
    if others:
        raise ConfigError(
            f"adding the import {entry!r} for the drop-in would make containerd also load "
            f"{', '.join(others)}, which it does not load now: move them out of "
            f"{os.path.dirname(entry)}, or add that import to {args.config_path} yourself "
            "if they are meant to be loaded, or set CONTAINERD_DROPIN to a path outside "
            "it; nothing was changed")


def merge(text, args):
    """(merged main config, drop-in text)."""
    check_dropin_path(args)
    editor = Editor(unmerge(text))
    version = config_version(editor.doc())
    # The import first: files that load only through it (kata-deploy's drop-in
    # in conf.d) count when looking for the runtimes.
    if not covers(editor.doc().get("imports", []) or [], args.dropin, args.config_path, version):
        entry = import_entry(version, args.dropin)
        if "*" in entry and entry not in (parse(text).get("imports", []) or []):
            # Only when the glob is new: once added, files others put
            # there (kata-deploy's) load through it on purpose.
            refuse_newly_loaded(entry, editor.doc(), args)
        editor.add_import(entry)
    doc = editor.doc()
    imports = imported_docs(doc, args)
    if version == 2:
        for path, parsed in imports:
            if lookup(parsed, ["plugins", CRI_V2]) is not None:
                raise ConfigError(
                    f"the CRI plugin is configured in the imported file {path}; containerd 1.x "
                    "replaces whole plugin sections on import, so settings in the main file "
                    "would be lost. Set the keys listed in deploy/containerd/README.md in "
                    f"{path} by hand")
    sources = [(args.config_path, doc)] + imports
    check_proxy_plugin(sources, args)
    runtimes = registered(version, sources, handlers(args), args)
    if version == 2:
        for table, key, value in v2_settings(args, runtimes):
            editor.set_key(table, key, value)
    return editor.lines.text(), dropin_text(version, args, runtimes)


def read_bytes(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)


def decode(data, path):
    """The text of containerd config `data` (read from `path`), its line
    endings as they are (containerd_toml.py keeps them line by line)."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"{path} starts with a UTF-8 byte order mark, which this tool does "
                          "not edit around: remove it (containerd does not need it) and run "
                          "again; nothing was changed", EXIT_USAGE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8, "
                          "and this tool does not edit others; convert it (iconv -f latin1 "
                          "-t utf-8) and run again; nothing was changed", EXIT_USAGE)


def read(path):
    return decode(read_bytes(path), path)


def ending_as(text, source):
    """`text` with a final line ending only if `source` (the config it was
    worked out from) has one: a config without a final newline keeps that
    through merge and unmerge, which then give back its bytes without the
    backup."""
    if source and not source.endswith("\n") and text.endswith("\n"):
        return text[:-2] if text.endswith("\r\n") else text[:-1]
    return text


def write_out(text):
    """`text` to stdout as it is: its "\r\n" stay."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))


def run(args):
    if args.cmd == "version":
        print(config_version(parse(read(args.config))))
    elif args.cmd == "dropin":
        sys.stdout.write(dropin_text(args.version, args, handlers(args)))
    elif args.cmd == "imports-by-name":
        return 0 if imports_by_name(read(args.config), args) else EXIT_NOT_IMPORTED
    elif args.cmd == "ours":
        first = read_bytes(args.file).split(b"\n", 1)[0].rstrip(b"\r")
        return 0 if first == DROPIN_HEADER.encode() else 1
    elif args.cmd == "unmerge":
        data = read_bytes(args.config)
        text = decode(data, args.config)
        restored = unmerge(text, lambda entry: others_rely_on(args, entry))
        if restored == Lines(text).text():
            # Nothing of ours in it: its own bytes (a missing final newline,
            # mixed line endings), e.g. for install's backup.
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            return 0
        if args.original is not None:
            original = read_bytes(args.original)
            if restored == Lines(unmerge(decode(original, args.original))).text():
                # The original's bytes: its line endings, even mixed ones,
                # and a missing final newline.
                sys.stdout.flush()
                sys.stdout.buffer.write(original)
                return 0
        write_out(ending_as(restored, text))
    else:
        data = read_bytes(args.config)
        text = decode(data, args.config)
        merged, dropin = merge(text, args)
        merged = ending_as(merged, text)
        if args.cmd == "check":
            return 0 if merged == text else 1
        write_out(merged)
        if args.dropin_out:
            with open(args.dropin_out, "w", encoding="utf-8") as fh:
                fh.write(dropin)
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--plugin", default="guest-pull", help="proxy plugin name")
        p.add_argument("--mapping", default="",
                       help="handlers, kata-deploy syntax: qemu-coco-dev:guest-pull,...")
        p.add_argument("--runtime", action="append",
                       help="a runtime handler by its full name (repeatable; "
                       "default kata-qemu-coco-dev when no --mapping is given)")
        p.add_argument("--address", default="/run/containerd-guest-pull-grpc/"
                       "containerd-guest-pull-grpc.sock", help="snapshotter socket")
        p.add_argument("--global-snapshotter", action="store_true",
                       help="also make the plugin the default CRI snapshotter "
                       "(containerd 1.6, kata-only nodes)")

    def config_file(p):
        p.add_argument("config", help="file to read (may be a copy)")
        p.add_argument("--config-path", default="/etc/containerd/config.toml",
                       help="where containerd reads the config on the host")
        p.add_argument("--dropin", default="/etc/containerd/conf.d/guest-pull.toml",
                       help="our drop-in path as containerd sees it")
        p.add_argument("--host-root", default="", help="prefix for host paths")

    p = sub.add_parser("version")
    p.add_argument("config")
    p = sub.add_parser("unmerge")
    p.add_argument("config")
    p.add_argument("--original", help="the config before the first install (its bytes "
                   "are printed if nothing but our edits separates the two)")
    p.add_argument("--dropin", default="/etc/containerd/conf.d/guest-pull.toml",
                   help="our drop-in path as containerd sees it")
    p.add_argument("--host-root", default="", help="prefix for host paths")
    config_file(sub.add_parser("imports-by-name", help="exit 0 if containerd, loading "
                               "CONFIG, opens the drop-in by name (it must exist then), "
                               "4 if not"))
    p = sub.add_parser("ours", help="exit 0 if FILE is a drop-in we wrote, else 1")
    p.add_argument("file")
    p = sub.add_parser("dropin")
    p.add_argument("--version", type=int, choices=(2, 3, 4), required=True)
    common(p)
    for name in ("merge", "check"):
        p = sub.add_parser(name)
        config_file(p)
        p.add_argument("--missing-runtime", choices=("fail", "skip"), default="fail",
                       help="a handler whose runtime is not registered: fail (exit 3) "
                       "or skip it")
        p.add_argument("--dropin-out", help="also write the drop-in to this file")
        common(p)
    args = parser.parse_args(argv)
    if hasattr(args, "mapping") and not args.mapping and not args.runtime:
        args.runtime = ["kata-qemu-coco-dev"]
    if hasattr(args, "host_root"):
        args.host_root = args.host_root.rstrip("/")
    try:
        return run(args)
    except ConfigError as exc:
        print(f"containerd-config: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
