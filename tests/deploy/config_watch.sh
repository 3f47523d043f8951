# shellcheck shell=bash
# config_watch.sh: the watch install.sh keeps while its pod sleeps
# (deploy/k8s/scripts/config-watch.sh), on a fake containerd 2.4 host next to
# kata-deploy's stand-in (kata_deploy_sim.py): kata's cleanup takes its
# runtime away and the watch drops the handler from our drop-in (no runtime
# table holding only `snapshotter`), kata's install brings it back and so
# does the handler, a config it cannot read is reported once and changes
# nothing, a state written back after an apply is not fought, another pod's
# install ends the watch, this pod's preStop during an apply ends the
# apply at once and uninstalls, and another pod's install given up before it
# finished (a rollback) has this pod install its own files again, as does
# one whose pod is gone without its preStop, and the preStop of a newer pod
# whose install finished hands the install back to this pod while it runs.
# Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

# watch_wait CASE TEXT COUNT: bounded wait (30 s) until CASE's log holds
# TEXT COUNT times.
watch_wait() {
    local i
    for ((i = 0; i < 150; i++)); do
        (( $(grep -cF -- "$2" "$WORK/$1/log") >= $3 )) && return 0
        sleep 0.2
    done
    return 1
}

# has_handler DROPIN: our drop-in names the kata-qemu-coco-dev runtime.
has_handler() { grep -q 'runtimes.kata-qemu-coco-dev\]' "$1"; }

# watch_host CASE: a fake containerd 2.4 host (printed) whose config
# imports conf.d, with kata-deploy's stand-in installed.
watch_host() {
    local host
    host="$(new_host "$1" "")"
    printf 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n' > "$host/etc/containerd/config.toml"
    fake_containerd "$WORK/containerd-2.4" 2.4.2
    python3 "$HERE/kata_deploy_sim.py" install --root "$host" --containerd 2.4.2 --shims qemu-coco-dev \
        --mapping "" >> "$WORK/$1/log" 2>&1
    echo "$host"
}

# lasting_tmp_files CASE: the files in CASE's watch TMPDIR that are there
# 1.5 s apart (a round's own files live well under that), sorted.
lasting_tmp_files() {
    local before
    before="$(find "$WORK/$1/tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)"
    sleep 1.5
    comm -12 <(printf '%s\n' "$before") <(find "$WORK/$1/tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort) \
        | sed '/^$/d'
}

# start_watching CASE SYSTEMCTL POD [CONTAINERD]: install.sh as the pod
# runs it, in its own session, checking every second; sets `pid`.
start_watching() {
    # Its temporary files apart, to see what a round leaves behind.
    mkdir -p "$WORK/$1/tmp"
    setsid env TMPDIR="$WORK/$1/tmp" HOST_ROOT="$WORK/$1/host" PAYLOAD_DIR="$WORK/$1/payload" SYSTEMCTL="$2" \
        CONTAINERD="${4:-$WORK/containerd-2.4}" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 \
        GUEST_PULL_SLEEP=true WATCH_SECONDS=1 READY_MARKER="$WORK/$1/ready" POD_UID="$3" \
        PRESTOP_MARKER="$WORK/$1/prestop-started.$3" \
        "$SCRIPTS/install.sh" >> "$WORK/$1/log" 2>&1 &
    pid=$!
}

# stop_watching PID: ends a watch started by start_watching (its session).
stop_watching() {
    kill -- -"$1" 2> /dev/null || true
    wait "$1" 2> /dev/null || true
}

test_config_watch() {
    local host dropin sim="$HERE/kata_deploy_sim.py" pid restarts
    host="$(watch_host watch)"
    dropin="$host/etc/containerd/conf.d/guest-pull.toml"
    start_watching watch "$WORK/watch/sysd/systemctl" pod-a
    if ! watch_wait watch "checking containerd's config every 1s" 1 || ! has_handler "$dropin"; then
        h_fail "config watch: install with kata's runtime registered" "$(tail -3 "$WORK/watch/log")"
        stop_watching "$pid"
        return
    fi
    h_pass "config watch: install sets the handler's snapshotter and starts watching"

    restarts="$(grep -c "restart containerd.service" "$WORK/watch/sysd/calls")"
    python3 "$sim" cleanup --root "$host" --containerd 2.4.2 >> "$WORK/watch/log" 2>&1
    watch_wait watch "containerd runs the re-applied config" 1 && ! has_handler "$dropin" \
        && grep -q 'proxy_plugins' "$dropin" \
        && [[ "$(grep -c "restart containerd.service" "$WORK/watch/sysd/calls")" == $((restarts + 1)) ]] \
        && h_pass "config watch: kata-deploy's cleanup drops the handler from our drop-in (no half runtime), containerd restarted once" \
        || h_fail "config watch: after kata-deploy's cleanup" "$(cat "$dropin"; tail -4 "$WORK/watch/log")"

    python3 "$sim" install --root "$host" --containerd 2.4.2 --shims qemu-coco-dev --mapping "" >> "$WORK/watch/log" 2>&1
    watch_wait watch "containerd runs the re-applied config" 2 && has_handler "$dropin" \
        && h_pass "config watch: kata-deploy installed again gets the handler's snapshotter back" \
        || h_fail "config watch: after kata-deploy's install" "$(cat "$dropin"; tail -4 "$WORK/watch/log")"

    # A config that does not parse: reported once, nothing changed, and no
    # temporary file left by each round that fails (a notes file of the
    # merge was, every WATCH_SECONDS for as long as the config stayed
    # broken, in the pod's /tmp).
    cp "$host/etc/containerd/config.toml" "$WORK/watch/good.toml"
    tree "$host" > "$WORK/watch/tree.before"
    lasting_tmp_files watch > "$WORK/watch/tmp.before"
    printf '[broken\n' >> "$host/etc/containerd/config.toml"
    watch_wait watch "the config watch cannot work out containerd's config" 1 && sleep 3 \
        && [[ "$(grep -c "the config watch cannot work out" "$WORK/watch/log")" == 1 ]] \
        && lasting_tmp_files watch > "$WORK/watch/tmp.after" \
        && [[ -z "$(comm -13 "$WORK/watch/tmp.before" "$WORK/watch/tmp.after")" ]] \
        && cmp -s <(grep -vF ' ./etc/containerd/config.toml ' "$WORK/watch/tree.before") \
                  <(tree "$host" | grep -vF ' ./etc/containerd/config.toml ') \
        && h_pass "config watch: a config that does not parse is reported once and changes nothing" \
        || h_fail "config watch: broken config" "$(grep -c "the config watch cannot work out" "$WORK/watch/log"; echo "left in TMPDIR:"; comm -13 "$WORK/watch/tmp.before" "$WORK/watch/tmp.after" 2> /dev/null; diff "$WORK/watch/tree.before" <(tree "$host"); tail -4 "$WORK/watch/log")"
    cp "$WORK/watch/good.toml" "$host/etc/containerd/config.toml"

    # Something writes back the state the watch replaced: reported once,
    # not fought with more restarts.
    cp "$dropin" "$WORK/watch/dropin.with-handler"
    python3 "$sim" cleanup --root "$host" --containerd 2.4.2 >> "$WORK/watch/log" 2>&1
    if watch_wait watch "containerd runs the re-applied config" 3; then
        sleep 0.5  # past the watch's own check right after applying
        restarts="$(grep -c "restart containerd.service" "$WORK/watch/sysd/calls")"
        cp "$WORK/watch/dropin.with-handler" "$dropin"
        watch_wait watch "went back to what it was before the watch applied" 1 && sleep 3 \
            && [[ "$(grep -c "went back to what it was" "$WORK/watch/log")" == 1 ]] \
            && [[ "$(grep -c "restart containerd.service" "$WORK/watch/sysd/calls")" == "$restarts" ]] \
            && has_handler "$dropin" \
            && h_pass "config watch: a state written back after the watch replaced it is reported once, not re-applied" \
            || h_fail "config watch: written back" "$(tail -4 "$WORK/watch/log")"
    else
        h_fail "config watch: kata-deploy's second cleanup" "$(tail -4 "$WORK/watch/log")"
    fi

    # A newer pod started an install: this watch pauses and changes
    # nothing; once that pod's install is the current one, it stops.
    echo pod-b > "$host/etc/containerd-guest-pull-grpc/installing-pod"
    python3 "$sim" install --root "$host" --containerd 2.4.2 --shims qemu-coco-dev --mapping "" >> "$WORK/watch/log" 2>&1
    python3 "$sim" cleanup --root "$host" --containerd 2.4.2 >> "$WORK/watch/log" 2>&1
    watch_wait watch "pod pod-b is installing: the config watch pauses" 1 && sleep 3 \
        && [[ "$(grep -c "the config watch pauses" "$WORK/watch/log")" == 1 ]] \
        && [[ "$(grep -c "containerd runs the re-applied config" "$WORK/watch/log")" == 3 ]] \
        && h_pass "config watch: pauses while another pod's install has started, changing nothing" \
        || h_fail "config watch: another pod installing" "$(tail -4 "$WORK/watch/log")"
    echo pod-b > "$host/etc/containerd-guest-pull-grpc/installed-by-pod"
    watch_wait watch "pod pod-b installed after this one: the config watch stops" 1 \
        && h_pass "config watch: stops once another pod's install is the current one" \
        || h_fail "config watch: another pod's install" "$(tail -4 "$WORK/watch/log")"

    kill -TERM "$pid" 2> /dev/null || true
    # Bounded: a watch still running 10 s after TERM is killed (and fails).
    local killer status=0
    (sleep 10; kill -KILL -- -"$pid") > /dev/null 2>&1 &
    killer=$!
    wait "$pid" || status=$?
    kill "$killer" 2> /dev/null || true
    ((status == 0)) && grep -q "terminated" "$WORK/watch/log" \
        && h_pass "config watch: the pod's TERM ends it" \
        || h_fail "config watch: TERM (exit $status; 137: still running 10 s after it)" "$(tail -2 "$WORK/watch/log")"
    kill -- -"$pid" 2> /dev/null || true  # its last sleep
}

# test_config_watch_prestop: the pod is deleted while its watch applies a
# change (stuck in a slow containerd restart): the preStop ends the apply,
# not the pod's main process, and uninstalls at once.
# test_config_watch_stale_marker: containerd's restart marker beside its
# config outlives a reboot, which restarted containerd: the watch leaves
# one of an earlier boot alone (it re-applied the config and restarted
# containerd for it), and restarts containerd for one of this boot.
test_config_watch_stale_marker() {
    local host pid restarts marker other
    host="$(watch_host wboot)"
    marker="$host/etc/containerd/config.toml.guest-pull-restart-pending"
    other="00000000-0000-4000-8000-000000000000"
    [[ "$(< /proc/sys/kernel/random/boot_id)" != "$other" ]] || other="00000000-0000-4000-8000-000000000001"
    start_watching wboot "$WORK/wboot/sysd/systemctl" pod-w
    if ! watch_wait wboot "checking containerd's config every 1s" 1; then
        h_fail "config watch, restart marker: install" "$(tail -3 "$WORK/wboot/log")"
        stop_watching "$pid"
        return
    fi
    restarts="$(grep -c "restart containerd.service" "$WORK/wboot/sysd/calls")"
    echo "$other" > "$marker"
    sleep 4  # four checks
    [[ "$(grep -c "restart containerd.service" "$WORK/wboot/sysd/calls")" == "$restarts" ]] \
        && ! grep -q "no longer matches this install" "$WORK/wboot/log" \
        && h_pass "config watch: a restart marker of an earlier boot restarts nothing" \
        || h_fail "config watch: a restart marker of an earlier boot" "$(tail -4 "$WORK/wboot/log")"
    cat /proc/sys/kernel/random/boot_id > "$marker"
    watch_wait wboot "containerd runs the re-applied config" 1 \
        && [[ "$(grep -c "restart containerd.service" "$WORK/wboot/sysd/calls")" == $((restarts + 1)) ]] \
        && [[ ! -e "$marker" ]] \
        && h_pass "config watch: a restart marker of this boot restarts containerd once and goes" \
        || h_fail "config watch: a restart marker of this boot" "$(tail -4 "$WORK/wboot/log")"
    stop_watching "$pid"
}

test_config_watch_prestop() {
    local host sim="$HERE/kata_deploy_sim.py" pid pod holder start
    host="$(watch_host wstop)"
    printf '#!/bin/sh\n[ -e "%s" ] && [ "$1" = restart ] && [ "$2" = containerd.service ] && sleep 20\nexec "%s" "$@"\n' \
        "$WORK/wstop/slow" "$WORK/wstop/sysd/systemctl" > "$WORK/wstop/slow-systemctl"
    chmod +x "$WORK/wstop/slow-systemctl"
    start_watching wstop "$WORK/wstop/slow-systemctl" pod-s
    watch_wait wstop "checking containerd's config every 1s" 1 && touch "$WORK/wstop/slow" \
        && python3 "$sim" cleanup --root "$host" --containerd 2.4.2 >> "$WORK/wstop/log" 2>&1 \
        && watch_wait wstop "re-applying the install's containerd settings" 1 \
        && watch_wait wstop "systemctl restart containerd.service" 2
    sleep 0.5
    read -r pod holder < "$host/run/containerd-guest-pull-grpc.install.lock" || true
    rm -f "$WORK/wstop/slow"
    start=$SECONDS
    run_script wstop uninstall.sh POD_UID=pod-s LOCK_TIMEOUT_SECONDS=30 \
        && (( SECONDS - start < 15 )) && [[ "$pod" == pod-s && "$holder" != "$pid" ]] \
        && grep -q "this pod's install (pid $holder) still holds" "$WORK/wstop/log" \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] && kill -0 "$pid" 2> /dev/null \
        && h_pass "config watch: a preStop during an apply ends the apply (not the pod's process) and uninstalls at once" \
        || h_fail "config watch: preStop during an apply" "pod=$pod holder=$holder main=$pid; $(tail -4 "$WORK/wstop/log")"
    stop_watching "$pid"
}

# v1_snapshotter HOST: the snapshotter of runtime kata-qemu-coco-dev in
# HOST's containerd 1.x main config (empty when none).
v1_snapshotter() {
    python3 - "$1/etc/containerd/config.toml" <<'PY'
import sys, tomllib
doc = tomllib.load(open(sys.argv[1], "rb"))
rt = doc.get("plugins", {}).get("io.containerd.grpc.v1.cri", {}).get("containerd", {}) \
    .get("runtimes", {}).get("kata-qemu-coco-dev", {})
print(rt.get("snapshotter", ""))
PY
}

# test_config_watch_v1: containerd 1.x, where kata-deploy's cleanup puts
# back its config.toml.bak and its install rebuilds the same bytes: every
# cycle, however often, ends with the handler's snapshotter set again.
test_config_watch_v1() {
    local host sim="$HERE/kata_deploy_sim.py" pid cycle ok=true
    host="$(new_host wv1 "")"
    printf 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' \
        > "$host/etc/containerd/config.toml"
    [[ -x "$WORK/containerd-1.7" ]] || fake_containerd "$WORK/containerd-1.7" 1.7.27
    python3 "$sim" install --root "$host" --containerd 1.7.27 --shims qemu-coco-dev --mapping "" >> "$WORK/wv1/log" 2>&1
    start_watching wv1 "$WORK/wv1/sysd/systemctl" pod-v "$WORK/containerd-1.7"
    watch_wait wv1 "checking containerd's config every 1s" 1 && [[ "$(v1_snapshotter "$host")" == guest-pull ]] \
        || { ok=false; h_fail "config watch 1.x: install" "$(tail -3 "$WORK/wv1/log")"; }
    for cycle in 1 2 3; do
        $ok || break
        python3 "$sim" cleanup --root "$host" --containerd 1.7.27 >> "$WORK/wv1/log" 2>&1
        sleep 4  # the watch may or may not act on the state between
        python3 "$sim" install --root "$host" --containerd 1.7.27 --shims qemu-coco-dev --mapping "" >> "$WORK/wv1/log" 2>&1
        for ((i = 0; i < 150; i++)); do
            [[ "$(v1_snapshotter "$host")" == guest-pull ]] && break
            sleep 0.2
        done
        [[ "$(v1_snapshotter "$host")" == guest-pull ]] \
            || { ok=false; h_fail "config watch 1.x: cycle $cycle of kata-deploy's cleanup and install" "$(tail -4 "$WORK/wv1/log")"; }
    done
    $ok && h_pass "config watch 1.x: three cycles of kata-deploy's cleanup and install each end with the handler's snapshotter set"
    stop_watching "$pid"
}

# failed_newer_install CASE POD: pod POD installs another release (CASE's
# payload-b: the same with a changed daemon) whose daemon does not become
# active, so its install fails after replacing the files. Sets the caller's
# ours and theirs to the two daemons' sha256sum.
failed_newer_install() {
    local case="$1" pod="$2"
    ours="$(sha256sum < "$WORK/$case/payload/bin/containerd-guest-pull-grpc")"
    cp -a "$WORK/$case/payload" "$WORK/$case/payload-b"
    echo "# release 2" >> "$WORK/$case/payload-b/bin/containerd-guest-pull-grpc"
    theirs="$(sha256sum < "$WORK/$case/payload-b/bin/containerd-guest-pull-grpc")"
    echo 3 > "$WORK/$case/sysd/is-active-rc.guest-pull-snapshotter.service"
    ! run_script "$case" install.sh POD_UID="$pod" PAYLOAD_DIR="$WORK/$case/payload-b" CONTAINERD="$WORK/containerd-2.4"
    rm -f "$WORK/$case/sysd/is-active-rc.guest-pull-snapshotter.service"
}

# test_config_watch_rollback: a rolling update given up on one node (a
# rollback, or a delete during it): the new pod's install replaced the
# binary and restarted the snapshotter on it, then failed (its daemon never
# became active); the new pod's preStop leaves the old pod's install the
# current one. The old pod's watch then installs its own files again: the
# node does not keep running the release that was rolled back.
test_config_watch_rollback() {
    local host pid ours theirs
    host="$(watch_host wrb)"
    start_watching wrb "$WORK/wrb/sysd/systemctl" pod-a
    if ! watch_wait wrb "checking containerd's config every 1s" 1; then
        h_fail "config watch, rollback: pod A's install" "$(tail -3 "$WORK/wrb/log")"
        stop_watching "$pid"
        return
    fi
    # Pod B: another release, whose daemon does not become active.
    failed_newer_install wrb pod-b
    if [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" != "$theirs" ]] \
        || ! watch_wait wrb "pod pod-b is installing: the config watch pauses" 1; then
        h_fail "config watch, rollback: pod B's failed install replaced the binary" "$(tail -3 "$WORK/wrb/log")"
    else
        # Pod B deleted (its preStop), pod A stays.
        run_script wrb uninstall.sh POD_UID=pod-b
        local again=false
        watch_wait wrb "installed this pod's files again" 1 \
            && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$ours" ]] \
            && [[ "$(< "$host/etc/containerd-guest-pull-grpc/installed-by-pod")" == pod-a ]] \
            && [[ "$(< "$host/etc/containerd-guest-pull-grpc/installing-pod")" == pod-a ]] \
            && grep -q "this pod's install did not finish; pod pod-a's install is the current one" "$WORK/wrb/log" \
            && [[ "$(grep -c "restart guest-pull-snapshotter.service" "$WORK/wrb/sysd/calls")" == 3 ]] \
            && again=true
        [[ "$again" == true ]] \
            && h_pass "config watch, rollback: a later pod's unfinished install given up: the old pod installs its own binary again and restarts the snapshotter on it" \
            || h_fail "config watch, rollback: the node keeps the rolled-back release's binary" \
                "$(grep -c "restart guest-pull-snapshotter.service" "$WORK/wrb/sysd/calls") restarts; $(tail -4 "$WORK/wrb/log")"
        # A watch of an earlier release, or none (WATCH_SECONDS=0), does
        # not install again: pod B's preStop says so and what to do then
        # (it said the watch would, which sent the operator away).
        grep -q "if it has one that does (WATCH_SECONDS > 0 and a release whose watch logs 'installing this pod's files again'); else the node keeps what this install left: delete pod pod-a (its preStop uninstalls" "$WORK/wrb/log" \
            && h_pass "config watch, rollback: the given-up pod's preStop says what to do when the old pod's watch cannot install again" \
            || h_fail "config watch, rollback: the given-up pod's preStop promises an install again that a watch of an earlier release, or none, never makes" "$(grep "did not finish" "$WORK/wrb/log")"
        sleep 3
        [[ "$again" == true && "$(grep -c "installed this pod's files again" "$WORK/wrb/log")" == 1 \
            && "$(grep -c "restart guest-pull-snapshotter.service" "$WORK/wrb/sysd/calls")" == 3 ]] \
            && h_pass "config watch, rollback: installed again once, then nothing more" \
            || h_fail "config watch, rollback: installed again more than once" "$(tail -4 "$WORK/wrb/log")"
        # Given up again, and this time pod A's install again fails too (the
        # daemon does not become active): it is tried again after a
        # hold-off that doubles, not every round (each attempt restarts the
        # snapshotter and waits for it under the host lock); once the
        # daemon comes up, it is installed again.
        echo 3 > "$WORK/wrb/sysd/is-active-rc.guest-pull-snapshotter.service"
        ! run_script wrb install.sh POD_UID=pod-c PAYLOAD_DIR="$WORK/wrb/payload-b" CONTAINERD="$WORK/containerd-2.4"
        run_script wrb uninstall.sh POD_UID=pod-c
        watch_wait wrb "it tries again after 3s, then less often" 1 \
            && watch_wait wrb "it tries again after 6s, then less often" 1 \
            && ! grep -q "it tries again every" "$WORK/wrb/log" \
            && h_pass "config watch, rollback: a failing install again is tried again after a growing hold-off" \
            || h_fail "config watch, rollback: a failing install again, hold-off" "$(grep "could not install this pod's files again" "$WORK/wrb/log" | tail -3)"
        rm -f "$WORK/wrb/sysd/is-active-rc.guest-pull-snapshotter.service"
        watch_wait wrb "installed this pod's files again" 2 \
            && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$ours" ]] \
            && h_pass "config watch, rollback: once the daemon comes up, the install again succeeds" \
            || h_fail "config watch, rollback: the install again after failures" "$(tail -4 "$WORK/wrb/log")"
    fi
    stop_watching "$pid"
}

# test_config_watch_gone_installer: a newer pod's install replaced this
# pod's binary and failed; the newer pod is then deleted while its
# container waits to be restarted (CrashLoopBackOff): Kubernetes runs no
# preStop then, and its name stays in installing-pod. The old pod's watch
# paused for it for good; it now sees the pod gone from the kubelet's pod
# directories and installs its own files again, as after a preStop.
test_config_watch_gone_installer() {
    local host pid ours theirs pods ok=true
    local uid_a=aaaaaaaa-1111-4111-8111-111111111111 uid_b=bbbbbbbb-2222-4222-8222-222222222222
    host="$(watch_host wgone)"
    pods="$host/var/lib/kubelet/pods"
    mkdir -p "$pods/$uid_a" "$pods/$uid_b"
    start_watching wgone "$WORK/wgone/sysd/systemctl" "$uid_a"
    if ! watch_wait wgone "checking containerd's config every 1s" 1; then
        h_fail "config watch, installer gone: pod A's install" "$(tail -3 "$WORK/wgone/log")"
        stop_watching "$pid"
        return
    fi
    failed_newer_install wgone "$uid_b"
    # Pod B still exists (its container waits to be restarted): the watch
    # stays paused.
    watch_wait wgone "pod $uid_b is installing: the config watch pauses" 1 && sleep 3 \
        && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$theirs" ]] \
        && ! grep -q "installing this pod's files again" "$WORK/wgone/log" \
        || { ok=false; h_fail "config watch, installer gone: paused while pod B exists" "$(tail -3 "$WORK/wgone/log")"; }
    # Where the kubelet keeps its pods elsewhere (this pod's own directory
    # is not there either), nothing is judged gone: still paused.
    rm -rf "${pods:?}/$uid_b" "${pods:?}/$uid_a"
    $ok && sleep 3 && ! grep -q "installing this pod's files again" "$WORK/wgone/log" \
        && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$theirs" ]] \
        || { $ok && h_fail "config watch, installer gone: judged gone without this pod's own kubelet directory" "$(tail -3 "$WORK/wgone/log")"; ok=false; }
    # Pod B deleted (its kubelet directory cleaned up), pod A's is there.
    mkdir -p "$pods/$uid_a"
    $ok && watch_wait wgone "installed this pod's files again" 1 \
        && grep -q "pod $uid_b, whose install started after this pod's and did not finish, is gone from this node without its preStop" "$WORK/wgone/log" \
        && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$ours" ]] \
        && [[ "$(< "$host/etc/containerd-guest-pull-grpc/installing-pod")" == "$uid_a" ]] \
        && [[ "$(< "$host/etc/containerd-guest-pull-grpc/installed-by-pod")" == "$uid_a" ]] \
        && ! grep -q "not installing again" "$WORK/wgone/log" \
        && h_pass "config watch, installer gone: a newer pod deleted while its container was not running (no preStop) no longer pauses the old pod's watch for good: it installs its own files again" \
        || { $ok && h_fail "config watch, installer gone: the old pod's watch stays paused for a pod that is gone" "$(tail -4 "$WORK/wgone/log")"; }
    stop_watching "$pid"
}

# test_config_watch_handback: a newer pod's install finished (the old pod's
# watch stops), then the newer pod is deleted while the old pod still runs
# (a rollback, or deleted during the rolling update). Its preStop
# uninstalled everything: the old pod stayed running, not Ready, and the
# node without a snapshotter. It now hands the install back to the old pod,
# whose watch installs its own files again. Not to an old pod whose own
# preStop has run (the DaemonSet deleted: both go), nor to one whose
# container is gone: then it uninstalls, as before.
test_config_watch_handback() {
    local host pid ours theirs case uninstalled
    for case in whb whb2 whb3; do
        host="$(watch_host "$case")"
        start_watching "$case" "$WORK/$case/sysd/systemctl" pod-a
        if ! watch_wait "$case" "checking containerd's config every 1s" 1; then
            h_fail "config watch, hand back ($case): pod A's install" "$(tail -3 "$WORK/$case/log")"
            stop_watching "$pid"
            continue
        fi
        ours="$(sha256sum < "$WORK/$case/payload/bin/containerd-guest-pull-grpc")"
        cp -a "$WORK/$case/payload" "$WORK/$case/payload-b"
        echo "# release 2" >> "$WORK/$case/payload-b/bin/containerd-guest-pull-grpc"
        theirs="$(sha256sum < "$WORK/$case/payload-b/bin/containerd-guest-pull-grpc")"
        if ! run_script "$case" install.sh POD_UID=pod-b PAYLOAD_DIR="$WORK/$case/payload-b" CONTAINERD="$WORK/containerd-2.4" \
                PRESTOP_MARKER="$WORK/$case/prestop-started.pod-b" \
            || [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" != "$theirs" ]] \
            || ! watch_wait "$case" "pod pod-b installed after this one: the config watch stops" 1; then
            h_fail "config watch, hand back ($case): pod B's install" "$(tail -3 "$WORK/$case/log")"
            stop_watching "$pid"
            continue
        fi
        case "$case" in
            whb)
                # Pod B deleted, pod A stays.
                run_script "$case" uninstall.sh POD_UID=pod-b PRESTOP_MARKER="$WORK/$case/prestop-started.pod-b"
                grep -q "pod pod-a, whose install this pod's took over, still runs and its config watch stands by: handing the install back to it" "$WORK/$case/log" \
                    && watch_wait "$case" "installed this pod's files again" 1 \
                    && grep -q "pod pod-b handed the install back to this pod" "$WORK/$case/log" \
                    && [[ "$(sha256sum < "$host/usr/local/bin/containerd-guest-pull-grpc")" == "$ours" ]] \
                    && [[ -f "$host/etc/systemd/system/guest-pull-snapshotter.service" ]] \
                    && [[ "$(< "$host/etc/containerd-guest-pull-grpc/installed-by-pod")" == pod-a ]] \
                    && has_handler "$host/etc/containerd/conf.d/guest-pull.toml" \
                    && ! grep -q "^disable --now guest-pull-snapshotter.service" "$WORK/$case/sysd/calls" \
                    && ! compgen -G "$host/run/containerd-guest-pull-grpc.standby.*" > /dev/null \
                    && h_pass "config watch, hand back: a newer pod deleted after its install while the old pod still runs hands the install back (the old pod installs its own files again), instead of uninstalling" \
                    || h_fail "config watch, hand back: the newer pod's preStop uninstalled under the running old pod" "$(grep -c "^disable --now" "$WORK/$case/sysd/calls") disables; $(tail -4 "$WORK/$case/log")"
                # Pod A deleted later: its preStop uninstalls.
                run_script "$case" uninstall.sh POD_UID=pod-a PRESTOP_MARKER="$WORK/$case/prestop-started.pod-a" \
                    && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$host/etc/containerd-guest-pull-grpc/installed-by-pod" ]] \
                    && h_pass "config watch, hand back: the old pod's preStop then uninstalls" \
                    || h_fail "config watch, hand back: the old pod's preStop after the hand back" "$(tail -3 "$WORK/$case/log")" ;;
            whb2 | whb3)
                if [[ "$case" == whb2 ]]; then
                    # Both deleted (the DaemonSet deleted), pod A's preStop first.
                    run_script "$case" uninstall.sh POD_UID=pod-a PRESTOP_MARKER="$WORK/$case/prestop-started.pod-a"
                else
                    # Pod A's container gone without a preStop (killed).
                    stop_watching "$pid"
                fi
                run_script "$case" uninstall.sh POD_UID=pod-b PRESTOP_MARKER="$WORK/$case/prestop-started.pod-b"
                uninstalled=false
                [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$host/etc/containerd-guest-pull-grpc/installed-by-pod" ]] \
                    && ! grep -q "handing the install back" "$WORK/$case/log" \
                    && ! compgen -G "$host/run/containerd-guest-pull-grpc.standby.*" > /dev/null && uninstalled=true
                sleep 2
                [[ "$uninstalled" == true && ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
                    && ! grep -q "installing this pod's files again" "$WORK/$case/log" \
                    && h_pass "config watch, hand back: not to an old pod $([[ $case == whb2 ]] && echo "whose own preStop has run (the DaemonSet deleted)" || echo "whose container is gone"): the newer pod's preStop uninstalls" \
                    || h_fail "config watch, hand back ($case): the newer pod's preStop did not uninstall" "$(tail -4 "$WORK/$case/log")" ;;
        esac
        stop_watching "$pid"
    done
}
