# shellcheck shell=bash
# fake_host.sh: fixtures of the deployment suite (tests/deploy/run.sh): fake
# host roots with a recording systemctl and a dummy payload, install.sh /
# uninstall.sh runs against them, tree listings, containerd's view of a
# host's config and a key-by-key TOML merge.
# shellcheck disable=SC2016

# make_payload DIR: dummy binaries that leave a trace if anything runs them.
make_payload() {
    local dir="$1" b
    mkdir -p "$dir/bin" "$dir/systemd" "$dir/config"
    for b in containerd-guest-pull-grpc guest-pull-overlayfs guest-pull-verity; do
        printf '#!/bin/sh\necho "%s" >> "%s/EXECUTED"\nexit 1\n' "$b" "$WORK" > "$dir/bin/$b"
        # install.sh's check of a kept daemon config runs the payload's own
        # daemon (in the pod, not the installed one): the dummy takes it.
        [[ "$b" != containerd-guest-pull-grpc ]] \
            || printf '#!/bin/sh\n[ "$1" = --check-config ] && exit 0\necho "%s" >> "%s/EXECUTED"\nexit 1\n' "$b" "$WORK" > "$dir/bin/$b"
        chmod 0700 "$dir/bin/$b"   # install must set 0755 itself
    done
    cp "$REPO/deploy/systemd/guest-pull-snapshotter.service" "$dir/systemd/"
    cp "$REPO/deploy/config/config.toml" "$dir/config/"
    # Stand-ins of docs/*.md (deploy/Dockerfile copies those).
    mkdir -p "$dir/doc"
    printf 'stand-in of docs/operations.md\n' > "$dir/doc/operations.md"
    printf 'stand-in of docs/setup.md\n' > "$dir/doc/setup.md"
    # A stand-in library bundle: one file naming an old glibc symbol version.
    mkdir -p "$dir/lib/$LIB_NAME"
    printf 'stand-in library, needs GLIBC_2.17\n' > "$dir/lib/$LIB_NAME/libstandin.so.1"
    (cd "$dir/lib/$LIB_NAME" && sha256sum libstandin.so.1 > MANIFEST)
}

# use_real_bundle CASE: CASE's payload gets the real binaries + library bundle.
use_real_bundle() {
    rm -rf "$WORK/$1/payload/bin" "$WORK/$1/payload/lib"
    cp -a "$WORK/bundle/bin" "$WORK/bundle/lib" "$WORK/$1/payload/"
}

# unit_docs_present ROOT UNIT: every file:// page UNIT's Documentation=
# names (what `systemctl help` opens) is a file under ROOT; at least one.
unit_docs_present() {
    local root="$1" unit="$2" url n=0
    local -a urls
    # (Documentation= is a space-separated list.)
    read -r -a urls <<< "$(sed -n 's/^Documentation=//p' "$unit" | tr '\n' ' ')"
    for url in "${urls[@]}"; do
        [[ "$url" == file://* ]] || continue
        [[ -f "$root${url#file://}" ]] || { echo "missing: ${url#file://}"; return 1; }
        n=$((n + 1))
    done
    (( n > 0 )) || { echo "no file:// Documentation= in $unit"; return 1; }
}

# fake_libc FILE VERSION: a stand-in libc.so.6 with glibc's banner.
fake_libc() {
    mkdir -p "$(dirname "$1")"
    printf 'GNU C Library (test) stable release version %s.\nGLIBC_2.2.5\n' "$2" > "$1"
}

# make_systemctl DIR: recording stand-in; `is-active` answers with the exit
# code in DIR/is-active-rc.UNIT or DIR/is-active-rc (default 0), `show`
# prints DIR/show (default nothing).
make_systemctl() {
    local dir="$1"
    mkdir -p "$dir"
    cat > "$dir/systemctl" <<EOF
#!/bin/sh
echo "\$*" >> "$dir/calls"
case "\$1" in
    is-active)
        for unit; do :; done
        exit \$(cat "$dir/is-active-rc.\$unit" 2>/dev/null || cat "$dir/is-active-rc" 2>/dev/null || echo 0) ;;
    show) cat "$dir/show" 2>/dev/null ;;
esac
exit 0
EOF
    chmod 0755 "$dir/systemctl"
    # busctl: logind's PreparingForShutdown, "b true" once DIR/shutting-down exists.
    printf '#!/bin/sh\necho "$*" >> "%s/busctl-calls"\nif [ -e "%s/shutting-down" ]; then echo "b true"; else echo "b false"; fi\n' \
        "$dir" "$dir" > "$dir/busctl"
    chmod 0755 "$dir/busctl"
}

# new_host NAME FIXTURE: fake host root with FIXTURE as containerd's config
# ("" = no config) and a data directory holding a snapshot.
new_host() {
    local host="$WORK/$1/host"
    mkdir -p "$host/etc/containerd" "$host/usr/local/bin" "$host/usr/local/lib" "$host/etc/systemd/system" \
        "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs" "$host/usr/lib64"
    # Merged-/usr layout: /lib relative link, /lib64 absolute link (resolved
    # inside the host root, or the test machine's /usr/lib64 would answer).
    ln -s usr/lib "$host/lib"
    ln -s /usr/lib64 "$host/lib64"
    echo "stand-in ELF interpreter" > "$host/usr/lib64/ld-linux-x86-64.so.2"
    fake_libc "$host/usr/lib/x86_64-linux-gnu/libc.so.6" 2.36
    echo data > "$host/var/lib/containerd-guest-pull-grpc/snapshots/1/fs/file"
    if [[ -n "$2" ]]; then
        cp "$2" "$host/etc/containerd/config.toml"
        chmod 0640 "$host/etc/containerd/config.toml"
    fi
    make_payload "$WORK/$1/payload"
    make_systemctl "$WORK/$1/sysd"
    echo "$host"
}

# nydus_runtime FILE: containerd's config FILE (the version 2 fixture) with
# the runtime kata-qemu-coco-dev on the nydus snapshotter, as kata-deploy
# leaves it for a mapping qemu-coco-dev:nydus.
nydus_runtime() {
    sed -i 's|^\(          pod_annotations = .*\)$|\1\n          snapshotter = "nydus"|' "$1"
    grep -q '^          snapshotter = "nydus"$' "$1"
}

# fake_containerd PATH VERSION: a containerd that only answers --version as
# a release of VERSION does.
fake_containerd() {
    printf '#!/bin/sh\necho "containerd github.com/containerd/containerd %s 05044ec0a9a75232cad458027ca83437aae3f4da"\n' "$2" > "$1"
    chmod +x "$1"
}

# run_script CASE SCRIPT [VAR=VALUE...]: install.sh/uninstall.sh for CASE, on
# a node running containerd 1.7 (not the test machine's).
run_script() {
    local case="$1" script="$2"; shift 2
    [[ -x "$WORK/containerd-1.7" ]] || fake_containerd "$WORK/containerd-1.7" 1.7.27
    env HOST_ROOT="$WORK/$case/host" PAYLOAD_DIR="$WORK/$case/payload" \
        SYSTEMCTL="$WORK/$case/sysd/systemctl" GUEST_PULL_SLEEP=false CONTAINERD="$WORK/containerd-1.7" \
        BUSCTL="$WORK/$case/sysd/busctl" PRESTOP_MARKER="$WORK/$case/prestop-started" \
        POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 \
        "$@" "$SCRIPTS/$script" >> "$WORK/$case/log" 2>&1
}

# refused CASE NAME PATTERN... -- CMD...: CMD (run_script CASE install.sh
# ..., or another runner appending to CASE's log) fails, what it logs then
# matches every PATTERN (grep; "!PATTERN": matches nowhere) and holds no
# Python traceback, and no file of CASE's host changed: one pass or one
# failure, NAME. The host's tree before is kept in CASE/tree.before.
refused() {
    local case="$1" name="$2" log="$WORK/$1/log" seen=0 logged pattern ok=true
    local -a patterns=()
    shift 2
    while [[ "$1" != -- ]]; do patterns+=("$1"); shift; done
    shift
    tree "$WORK/$case/host" > "$WORK/$case/tree.before"
    if [[ -f "$log" ]]; then seen="$(wc -l < "$log")"; fi
    "$@" && ok=false
    logged="$(tail -n +"$((seen + 1))" "$log" 2> /dev/null)"
    for pattern in "${patterns[@]}" '!Traceback'; do
        if [[ "$pattern" == '!'* ]]; then
            ! grep -q -- "${pattern#!}" <<< "$logged" || ok=false
        else
            grep -q -- "$pattern" <<< "$logged" || ok=false
        fi
    done
    if [[ "$ok" == true ]] && cmp -s "$WORK/$case/tree.before" <(tree "$WORK/$case/host"); then
        h_pass "$name"
    else
        h_fail "$name" "$(diff "$WORK/$case/tree.before" <(tree "$WORK/$case/host") | head -5; tail -n 3 <<< "$logged")"
    fi
}

# in_private_mounts CODE [ARG...]: bash -c CODE, ARG... as $1..., in a
# private mount namespace (root only: its mounts go with it), with
# run_script and fake_containerd at hand.
in_private_mounts() {
    local code="$1"
    shift
    export -f run_script fake_containerd
    export WORK SCRIPTS
    unshare --mount --propagation private bash -c "$code" _ "$@"
}

# run_setup CASE ACTION [VAR=VALUE...]: containerd-setup.sh ACTION on
# CASE's host as `make -C deploy DESTDIR=...` runs it (no node: no
# containerd binary; a staged tree).
run_setup() {
    local case="$1" action="$2"; shift 2
    env HOST_ROOT="$WORK/$case/host" CONTAINERD=none STAGED_TREE=true RUNTIME_WAIT_SECONDS=0 "$@" \
        "$SCRIPTS/containerd-setup.sh" "$action" >> "$WORK/$case/log" 2>&1
}

# run_make CASE TARGET [VAR=VALUE...]: make -C deploy TARGET with CASE's
# host as DESTDIR, VAR=VALUE in its environment.
run_make() {
    local case="$1" target="$2"; shift 2
    env "$@" make -s -C "$REPO/deploy" "$target" DESTDIR="$WORK/$case/host" >> "$WORK/$case/log" 2>&1
}

# tree DIR: every path with type, mode and content hash (no timestamps), but
# /run: the host's tmpfs, where install.sh's and uninstall.sh's lock file
# stays (lib.sh; make -C deploy with DESTDIR leaves none, host_lock.sh).
tree() {
    (cd "$1" && find . -path ./run -prune -o -printf '%y %m %p\n' | sort | while read -r type mode path; do
        if [[ "$type" == f ]]; then
            echo "$type $mode $path $(sha256sum < "$path" | cut -d' ' -f1)"
        else
            echo "$type $mode $path"
        fi
    done)
}

# containerd_dump HOST: the real containerd's view of HOST's config, with
# HOST/etc/containerd seen at /etc/containerd (tests/tools/host_view.sh: the
# config names host paths such as the drop-in).
containerd_dump() {
    "$REPO/tests/tools/host_view.sh" "$1" containerd --config /etc/containerd/config.toml config dump
}

# toml_get FILE... -- KEYPATH: value after merging FILEs in order, key by key.
toml_get() {
    python3 - "$@" <<'EOF'
import json, sys, tomllib
args = sys.argv[1:]
files, path = args[:args.index("--")], args[args.index("--") + 1:]
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
doc = {}
for f in files:
    with open(f, "rb") as fh:
        doc = merge(doc, tomllib.load(fh))
node = doc
for p in path:
    node = node[p]
print(json.dumps(node))
EOF
}
