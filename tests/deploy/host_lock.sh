# shellcheck shell=bash
# host_lock.sh: a rolling update's two pods on one node. The old pod's
# preStop (uninstall.sh) waits for the host lock while the new pod's
# install.sh holds it, then leaves the new install alone; install.sh takes
# the lock too, and so do make -C deploy's targets that edit containerd's
# config; a lock held too long is a clear failure that changes nothing; a
# pod deleted while it installs stops its own install before it
# uninstalls; the installer lets go of the lock before it sleeps and only
# then makes its readiness marker. Sourced by tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

# hold_lock HOST SECONDS: holds HOST's install lock in the background (as a
# new pod's install.sh would) for SECONDS; returns once it holds it, the
# holder's pid in HOLDER. HOST/run/...lock.held exists while it holds it.
hold_lock() {
    local lock="$1/run/containerd-guest-pull-grpc.install.lock" i
    mkdir -p "$1/run"
    rm -f "$lock.held"
    flock "$lock" sh -c ': > "$1.held"; sleep "$2"; rm -f "$1.held"' sh "$lock" "$2" > /dev/null 2>&1 &
    HOLDER=$!
    for ((i = 0; i < 100; i++)); do [[ -e "$lock.held" ]] && break; sleep 0.05; done
}

# slow_systemctl CASE: $WORK/CASE/slow-systemctl, the case's stand-in
# systemctl with a restart of the snapshotter's service that takes 20 s (an
# install holding the host lock for that long).
slow_systemctl() {
    printf '#!/bin/sh\n[ "$1" = restart ] && [ "$2" = guest-pull-snapshotter.service ] && sleep 20\nexec "%s" "$@"\n' \
        "$WORK/$1/sysd/systemctl" > "$WORK/$1/slow-systemctl"
    chmod +x "$WORK/$1/slow-systemctl"
}

# start_pod_install CASE HOST ID=VALUE: install.sh as a pod's first process
# (GUEST_PULL_SLEEP=true), in a session of its own, with CASE's slow
# systemctl; returns once it is in that restart (holding the host lock),
# its pid in STARTED.
start_pod_install() {
    local i
    setsid env HOST_ROOT="$2" PAYLOAD_DIR="$WORK/$1/payload" SYSTEMCTL="$WORK/$1/slow-systemctl" \
        CONTAINERD="$WORK/containerd-1.7" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 \
        "$3" GUEST_PULL_SLEEP=true READY_MARKER="$WORK/$1/ready" PRESTOP_MARKER="$WORK/$1/prestop-started" \
        "$SCRIPTS/install.sh" >> "$WORK/$1/log" 2>&1 &
    STARTED=$!
    for ((i = 0; i < 100; i++)); do grep -q "systemctl restart guest-pull" "$WORK/$1/log" 2>/dev/null && break; sleep 0.1; done
}

test_host_lock() {
    local host start HOLDER i
    host="$(new_host lock "$FIXTURES/containerd-v2.toml")"
    run_script lock install.sh POD_UID=pod-a || { h_fail "lock: pod A installs" "$(tail -3 "$WORK/lock/log")"; return; }
    # Pod B's install is under way: it holds the lock, named itself in
    # installing-pod first thing and, as it ends, in installed-by-pod. Pod
    # A's preStop waits for it, then sees pod B.
    printf 'pod-b\n' > "$host/etc/containerd-guest-pull-grpc/installing-pod"
    printf 'pod-b\n' > "$host/etc/containerd-guest-pull-grpc/installed-by-pod"
    hold_lock "$host" 2
    start=$SECONDS
    run_script lock uninstall.sh POD_UID=pod-a LOCK_TIMEOUT_SECONDS=30 \
        && (( SECONDS - start >= 1 )) \
        && grep -q "pod pod-b installed the snapshotter after this pod pod-a" "$WORK/lock/log" \
        && [[ -x "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
        && h_pass "lock: the old pod's preStop waits for the new pod's install, then leaves it installed" \
        || h_fail "lock: old pod's preStop during the new pod's install" "$(tail -3 "$WORK/lock/log")"
    wait "$HOLDER" || true
    # A lock held beyond the bounded wait: a clear error, nothing removed.
    printf 'pod-a\n' > "$host/etc/containerd-guest-pull-grpc/installed-by-pod"
    hold_lock "$host" 4
    ! run_script lock uninstall.sh POD_UID=pod-a LOCK_TIMEOUT_SECONDS=1 \
        && grep -q "another install or uninstall has held /run/containerd-guest-pull-grpc.install.lock" "$WORK/lock/log" \
        && [[ -x "$host/usr/local/bin/containerd-guest-pull-grpc" && -f "$host/etc/containerd-guest-pull-grpc/installed-by-pod" ]] \
        && h_pass "lock: a lock held too long fails the preStop clearly and changes nothing" \
        || h_fail "lock: held too long" "$(tail -3 "$WORK/lock/log")"
    wait "$HOLDER" || true
    # install.sh takes the lock too: held elsewhere too long, it fails
    # before it changes anything.
    host="$(new_host lockinstall "$FIXTURES/containerd-v2.toml")"
    hold_lock "$host" 4
    refused lockinstall "lock: install.sh waits for the lock, and changes nothing when it never gets it" \
        "another install or uninstall has held" \
        -- run_script lockinstall install.sh POD_UID=pod-b LOCK_TIMEOUT_SECONDS=1
    wait "$HOLDER" || true
    # make -C deploy's targets that edit containerd's config take the same
    # lock: a pod's install holding it, install-containerd waits for it to
    # be let go; held too long, each target fails and changes nothing.
    host="$(new_host makelock "$FIXTURES/containerd-v2.toml")"
    hold_lock "$host" 4
    refused makelock "lock: make install-containerd changes nothing when it never gets the lock, and says to try again later" \
        "another install or uninstall has held" "Another install or uninstall .* held the host lock too long" \
        "run$" "make -C deploy install-containerd with the same settings (LOCK_TIMEOUT_SECONDS=<seconds> waits longer)\.$" \
        '!Do what the message says' '!make install: installed' \
        -- run_make makelock install-containerd LOCK_TIMEOUT_SECONDS=1
    wait "$HOLDER" || true
    hold_lock "$host" 3
    run_make makelock install-containerd && [[ ! -e "$host/run/containerd-guest-pull-grpc.install.lock.held" ]] \
        && [[ ! -e "$host/run/containerd-guest-pull-grpc.install.lock" ]] \
        && grep -q "guest-pull-snapshotter" "$host/etc/containerd/config.toml" \
        && h_pass "lock: make install-containerd waits for the lock, then merges" \
        || h_fail "lock: make install-containerd waiting for the lock" "$(tail -3 "$WORK/makelock/log")"
    wait "$HOLDER" || true
    rm "$host/etc/containerd/conf.d/guest-pull.toml"  # a reconcile would write it again
    local target
    for target in reconcile-containerd uninstall-containerd; do
        hold_lock "$host" 4
        refused makelock "lock: make $target changes nothing when it never gets the lock" \
            "another install or uninstall has held" -- run_make makelock "$target" LOCK_TIMEOUT_SECONDS=1
        wait "$HOLDER" || true
    done
    # A staged tree (make DESTDIR=...) keeps no /run file: the targets that
    # take the lock remove its file and the run directory they made, also
    # after a failure under the lock (reconcile without an install); a run
    # directory that was there stays, with what it held.
    host="$(new_host makerun "$FIXTURES/containerd-v2.toml")"
    local runs=""
    ! run_make makerun reconcile-containerd && [[ ! -e "$host/run" ]] && runs+=" failed-reconcile"
    run_make makerun install-containerd && [[ ! -e "$host/run" ]] && runs+=" install"
    run_make makerun reconcile-containerd && [[ ! -e "$host/run" ]] && runs+=" reconcile"
    run_make makerun uninstall-containerd && [[ ! -e "$host/run" ]] && runs+=" uninstall"
    mkdir -p "$host/run" && : > "$host/run/packager-file"
    run_make makerun install-containerd && [[ "$(ls -A "$host/run")" == packager-file ]] && runs+=" install-in-run"
    [[ "$runs" == " failed-reconcile install reconcile uninstall install-in-run" ]] \
        && h_pass "lock: make -C deploy with DESTDIR leaves no lock file and no run directory of its own in the staged tree" \
        || h_fail "lock: make -C deploy with DESTDIR, /run left clean (clean after:$runs)" "$(ls -la "$host/run" 2>&1; tail -3 "$WORK/makerun/log")"
    # Run by hand where HOST_ROOT is a node's root (in an installer pod, on
    # /host), not a staged tree: the lock file is the node's and stays, let
    # go of (empty).
    host="$(new_host podsetup "$FIXTURES/containerd-v2.toml")"
    mkdir -p "$host/run"
    local lockfile="$host/run/containerd-guest-pull-grpc.install.lock"
    run_setup podsetup install STAGED_TREE= && [[ -f "$lockfile" && ! -s "$lockfile" ]] \
        && flock -n "$lockfile" true && grep -q "guest-pull-snapshotter" "$host/etc/containerd/config.toml" \
        && run_setup podsetup uninstall STAGED_TREE= && [[ -f "$lockfile" && -d "$host/run" ]] \
        && h_pass "lock: containerd-setup.sh on a node's root (not make DESTDIR=...) keeps the node's lock file, let go of" \
        || h_fail "lock: containerd-setup.sh on a node's root, lock file kept" "$(ls -la "$host/run" 2>&1; tail -3 "$WORK/podsetup/log")"
    # Staged runs at once: each removes the lock file before it lets go; one
    # that was waiting on that file then takes the new one, so no two hold
    # the lock at the same time, and none is left.
    local root="$WORK/lockrace" k
    local -a racers=()
    mkdir -p "$root"
    for ((k = 0; k < 6; k++)); do
        HOST_ROOT="$root" STAGED_TREE=true bash -c '
            source "$1/lib.sh"; POD_ID=""
            for ((i = 0; i < 30; i++)); do
                hold_host_lock
                [[ ! -e "$HOST_ROOT/in" ]] || echo overlap >> "$HOST_ROOT.overlaps"
                : > "$HOST_ROOT/in"; sleep 0.01; rm -f "$HOST_ROOT/in"
                remove_host_lock
            done' _ "$SCRIPTS" >> "$root.log" 2>&1 &
        racers+=($!)
    done
    for k in "${racers[@]}"; do wait "$k" || echo "racer exit $?" >> "$root.log"; done
    [[ ! -e "$root.overlaps" && ! -s "$root.log" && -z "$(ls -A "$root")" ]] \
        && h_pass "lock: staged runs at once, each removing the lock file: never two holders, nothing left" \
        || h_fail "lock: staged runs at once ($(grep -c . "$root.overlaps" 2> /dev/null || echo 0) overlaps)" "$(ls -A "$root"; tail -3 "$root.log" 2> /dev/null)"
    # The same, without luck: the race above leaves run/ only when a run
    # opens the lock file between another's removal of it and of run/, which
    # the racers hit in a fraction of the suite's runs. In a staged tree,
    # making run/ and opening the lock file, and removing them, wait while
    # another run holds the tree's root (hold_staged_run_dir); fd 7 here.
    local det="$WORK/lockdet" det_pid det_made=unknown det_kept=unknown det_rc=0 w
    mkdir -p "$det"
    exec 7< "$det"
    flock 7
    HOST_ROOT="$det" STAGED_TREE=true LOCK_TIMEOUT_SECONDS=20 bash -c '
        source "$1/lib.sh"; POD_ID=""
        hold_host_lock
        : > "$HOST_ROOT.held"
        for ((i = 0; i < 200; i++)); do [[ -e "$HOST_ROOT.go" ]] && break; sleep 0.1; done
        remove_host_lock' _ "$SCRIPTS" >> "$det.log" 2>&1 7<&- &
    det_pid=$!
    sleep 1
    if [[ -e "$det/run" ]]; then det_made=true; else det_made=false; fi
    flock -u 7
    for ((w = 0; w < 100; w++)); do [[ -e "$det.held" ]] && break; sleep 0.1; done
    flock 7
    : > "$det.go"
    sleep 1
    if [[ -e "$det/run/containerd-guest-pull-grpc.install.lock" ]]; then det_kept=true; else det_kept=false; fi
    exec 7<&-
    wait "$det_pid" || det_rc=$?
    [[ "$det_made" == false && "$det_kept" == true && $det_rc -eq 0 && -z "$(ls -A "$det")" ]] \
        && h_pass "lock: a staged run makes run/ and the lock file, and removes them, only while no other run holds the tree" \
        || h_fail "lock: a staged run touched run/ while another held the tree (run/ made meanwhile: $det_made, lock file kept meanwhile: $det_kept, status $det_rc)" "$(ls -A "$det"; tail -3 "$det.log" 2> /dev/null)"
    # No flock on the machine (make -C deploy checks nothing else first):
    # said so, not taken for a lock held too long; nothing changed.
    host="$(new_host noflock "$FIXTURES/containerd-v2.toml")"
    local noflock="$WORK/noflock/bin" tool
    mkdir -p "$noflock"
    for tool in /usr/bin/* /usr/sbin/*; do
        [[ "${tool##*/}" == flock || -e "$noflock/${tool##*/}" ]] || ln -s "$tool" "$noflock/${tool##*/}"
    done
    for tool in bash python3 make; do
        [[ -e "$noflock/$tool" ]] || ln -s "$(command -v "$tool")" "$noflock/$tool"
    done
    refused noflock "lock: without flock, make install-containerd says flock is missing, changes nothing" \
        "flock (util-linux) is required for the host lock" '!has held' \
        -- run_make noflock install-containerd PATH="$noflock"
    # containerd-setup.sh run on its own (documented; make passes
    # RUNTIME_WAIT_SECONDS=0) waits for kata's runtimes without the lock,
    # which a pod's preStop waits for 120 s at most: the lock is free while
    # it waits; once the runtime is registered it takes it and merges.
    host="$(new_host setupwait "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    local spid free=false rc=0
    run_setup setupwait install RUNTIME_WAIT_SECONDS=30 POLL_SECONDS=1 &
    spid=$!
    for ((i = 0; i < 100; i++)); do grep -q "waiting for runtime" "$WORK/setupwait/log" 2>/dev/null && break; sleep 0.1; done
    mkdir -p "$host/run"
    flock -n "$host/run/containerd-guest-pull-grpc.install.lock" true && free=true
    cp "$FIXTURES/containerd-v2.toml" "$host/etc/containerd/config.new" && mv "$host/etc/containerd/config.new" "$host/etc/containerd/config.toml"
    wait "$spid" || rc=$?
    [[ "$free" == true && $rc -eq 0 ]] && grep -q "waiting for runtime" "$WORK/setupwait/log" \
        && grep -q "guest-pull-snapshotter" "$host/etc/containerd/config.toml" \
        && h_pass "lock: containerd-setup.sh install waits for kata's runtimes without the lock, then takes it and merges" \
        || h_fail "lock: containerd-setup.sh install waiting for a runtime (lock free meanwhile: $free, exit $rc)" "$(tail -3 "$WORK/setupwait/log")"
    # install.sh with MISSING_RUNTIME=skip and the runtime never registered:
    # it waits RUNTIME_WAIT_SECONDS once, before the lock, and goes on
    # without it; not a second time under the lock.
    host="$(new_host skipwait "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    run_script skipwait install.sh MISSING_RUNTIME=skip RUNTIME_WAIT_SECONDS=2 \
        && [[ "$(grep -c "going on without the runtimes that are still missing" "$WORK/skipwait/log")" == 1 ]] \
        && [[ "$(grep -c "waiting for runtime" "$WORK/skipwait/log")" == 2 ]] \
        && grep -q "guest-pull-snapshotter" "$host/etc/containerd/config.toml" \
        && h_pass "lock: install.sh with MISSING_RUNTIME=skip waits for a missing runtime once, before the lock" \
        || h_fail "lock: install.sh with MISSING_RUNTIME=skip, runtime missing" "$(grep -E "waiting|going on" "$WORK/skipwait/log" | tail -6)"
    # The pod is deleted while it installs: its preStop stops that install
    # (here stuck in a 20 s service restart) and uninstalls at once.
    host="$(new_host lockself "$FIXTURES/containerd-v2.toml")"
    slow_systemctl lockself
    local lock="$host/run/containerd-guest-pull-grpc.install.lock" ipid pod holder=none
    setsid env HOST_ROOT="$host" PAYLOAD_DIR="$WORK/lockself/payload" SYSTEMCTL="$WORK/lockself/slow-systemctl" \
        CONTAINERD="$WORK/containerd-1.7" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 \
        POD_UID=pod-x GUEST_PULL_SLEEP=false PRESTOP_MARKER="$WORK/lockself/prestop-started" "$SCRIPTS/install.sh" >> "$WORK/lockself/log" 2>&1 &
    ipid=$!
    for ((i = 0; i < 100; i++)); do grep -q "systemctl restart guest-pull" "$WORK/lockself/log" 2>/dev/null && break; sleep 0.1; done
    read -r pod holder < "$lock" || true  # the install's own "<pod> <pid>"
    start=$SECONDS
    run_script lockself uninstall.sh POD_UID=pod-x LOCK_TIMEOUT_SECONDS=30 \
        && (( SECONDS - start < 15 )) && [[ "$pod" == pod-x ]] && ! kill -0 "$holder" 2> /dev/null \
        && grep -q "this pod's install (pid $holder) still holds" "$WORK/lockself/log" \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
        && h_pass "lock: a pod deleted while it installs stops its install, then uninstalls" \
        || h_fail "lock: preStop during its own pod's install" "$(tail -4 "$WORK/lockself/log")"
    kill -- "-$ipid" 2> /dev/null || true
    wait "$ipid" 2> /dev/null || true
    # The same in a pod (GUEST_PULL_SLEEP=true): the install the preStop
    # stops is not the container's first process, which stays until the
    # pod's TERM. Its end would end the container during the preStop, and
    # with hostPID containerd's shim then kills every process left in it,
    # the preStop's uninstall among them.
    # POD_UID from the downward API, or without it the pod's name
    # (HOSTNAME), as POD_ID goes.
    local status=0 killer case id
    for case in lockinit lockname; do
        if [[ $case == lockinit ]]; then id=POD_UID=pod-y; else id=HOSTNAME=pod-y; fi
        host="$(new_host "$case" "$FIXTURES/containerd-v2.toml")"
        slow_systemctl "$case"
        lock="$host/run/containerd-guest-pull-grpc.install.lock" holder=none
        start_pod_install "$case" "$host" "$id"
        ipid=$STARTED
        read -r pod holder < "$lock" || true
        status=0
        run_script "$case" uninstall.sh "$id" LOCK_TIMEOUT_SECONDS=30 \
            && [[ "$pod" == pod-y && "$holder" != "$ipid" ]] && ! kill -0 "$holder" 2> /dev/null \
            && kill -0 "$ipid" 2> /dev/null && [[ ! -e "$WORK/$case/ready" ]] \
            && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
            && h_pass "lock: a pod deleted while it installs: the preStop stops the install, not the pod's first process (hostPID: its end would kill the preStop; the pod named by ${id%%=*})" \
            || h_fail "lock: preStop during its own pod's install, pod's first process" "main=$ipid holder=$holder; $(tail -4 "$WORK/$case/log")"
        kill -TERM "$ipid" 2> /dev/null || true
        (sleep 10; kill -KILL -- -"$ipid") > /dev/null 2>&1 &
        killer=$!
        wait "$ipid" 2> /dev/null || status=$?
        kill "$killer" 2> /dev/null || true
        ((status == 0)) && h_pass "lock: that pod's first process ends at the pod's TERM, exit 0 (${id%%=*})" \
            || h_fail "lock: the pod's TERM after its install was stopped (exit $status)" "$(tail -2 "$WORK/$case/log")"
        kill -- "-$ipid" 2> /dev/null || true
    done
    # A TERM to the install from elsewhere (an operator unsticking it, no
    # preStop, no pod TERM after it): the first process exits with the
    # install's 143 at once, so that the container restarts. And the pod's TERM while the install
    # runs is passed on to it: the install ends, with its status.
    local case
    for case in strayterm podterm; do
        host="$(new_host "$case" "$FIXTURES/containerd-v2.toml")"
        slow_systemctl "$case"
        lock="$host/run/containerd-guest-pull-grpc.install.lock" holder=none
        start_pod_install "$case" "$host" POD_UID=pod-z
        ipid=$STARTED
        read -r pod holder < "$lock" || true
        status=0
        if [[ "$case" == strayterm ]]; then kill -TERM "$holder" 2> /dev/null || true; else kill -TERM "$ipid" 2> /dev/null || true; fi
        (sleep 15; kill -KILL -- -"$ipid") > /dev/null 2>&1 &
        killer=$!
        wait "$ipid" 2> /dev/null || status=$?
        kill "$killer" 2> /dev/null || true
        kill -- "-$ipid" 2> /dev/null || true
        if [[ "$case" == strayterm ]]; then
            [[ $status -eq 143 && "$holder" != "$ipid" ]] && ! grep -q "waiting for the pod's termination" "$WORK/$case/log" \
                && h_pass "lock: a TERM to the install from elsewhere (not the preStop): the first process exits 143 at once, for a restart" \
                || h_fail "lock: stray TERM to the install (exit $status)" "$(tail -3 "$WORK/$case/log")"
        else
            [[ $status -eq 143 && "$holder" != "$ipid" ]] && ! kill -0 "$holder" 2> /dev/null \
                && ! grep -q "waiting for the pod's termination" "$WORK/$case/log" \
                && h_pass "lock: the pod's TERM during its install stops the install, exit 143" \
                || h_fail "lock: the pod's TERM during its install (exit $status)" "$(tail -3 "$WORK/$case/log")"
        fi
    done
    # The pod is deleted while its install still waits for kata's runtimes,
    # before the lock: the preStop finds the lock free and uninstalls. The
    # install, its wait over (MISSING_RUNTIME=skip), then takes the lock
    # after it and installs nothing; the first process waits for the TERM.
    host="$(new_host prewait "")"
    printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n' > "$host/etc/containerd/config.toml"
    setsid env HOST_ROOT="$host" PAYLOAD_DIR="$WORK/prewait/payload" SYSTEMCTL="$WORK/prewait/sysd/systemctl" \
        CONTAINERD="$WORK/containerd-1.7" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=3 \
        MISSING_RUNTIME=skip POD_UID=pod-w GUEST_PULL_SLEEP=true READY_MARKER="$WORK/prewait/ready" \
        PRESTOP_MARKER="$WORK/prewait/prestop-started" \
        "$SCRIPTS/install.sh" >> "$WORK/prewait/log" 2>&1 &
    ipid=$!
    for ((i = 0; i < 100; i++)); do grep -q "waiting for runtime" "$WORK/prewait/log" 2>/dev/null && break; sleep 0.1; done
    run_script prewait uninstall.sh POD_UID=pod-w LOCK_TIMEOUT_SECONDS=30 || true
    for ((i = 0; i < 100; i++)); do grep -q "not installing" "$WORK/prewait/log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    kill -0 "$ipid" 2> /dev/null && grep -q "this pod is being deleted (its preStop has started): not installing" "$WORK/prewait/log" \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$WORK/prewait/ready" ]] \
        && ! grep -q "guest-pull" "$host/etc/containerd/config.toml" && flock -n "$host/run/containerd-guest-pull-grpc.install.lock" true \
        && h_pass "lock: a pod deleted while its install waits for kata's runtimes: that install, after the preStop, installs nothing; the first process stays" \
        || h_fail "lock: preStop during its own pod's wait for runtimes" "$(tail -4 "$WORK/prewait/log")"
    status=0
    kill -TERM "$ipid" 2> /dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$ipid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$ipid" 2> /dev/null || true
    wait "$ipid" 2> /dev/null || status=$?
    ((status == 0)) && h_pass "lock: that pod's first process ends at the pod's TERM, exit 0 (waiting for runtimes)" \
        || h_fail "lock: the pod's TERM after the preStop, waiting for runtimes (exit $status)" "$(tail -2 "$WORK/prewait/log")"
    # The pod is deleted as its container starts: its preStop marks the pod
    # (and uninstalls: nothing yet) before the first process has run a line
    # of install.sh, held here at bash's start (BASH_ENV). That install then
    # keeps the marker, installs nothing, and waits for the pod's TERM. A
    # later run with the same marker path (a host's /tmp) removes it as an
    # earlier run's, and installs.
    local gate="$WORK/prestart/gate" kept=false
    host="$(new_host prestart "$FIXTURES/containerd-v2.toml")"
    printf 'unset BASH_ENV\n: > "%s.entered"\nfor ((i = 0; i < 200; i++)); do [[ -e "%s" ]] && break; sleep 0.05; done\n' \
        "$gate" "$gate" > "$WORK/prestart/bash-env"
    setsid env BASH_ENV="$WORK/prestart/bash-env" HOST_ROOT="$host" PAYLOAD_DIR="$WORK/prestart/payload" \
        SYSTEMCTL="$WORK/prestart/sysd/systemctl" CONTAINERD="$WORK/containerd-1.7" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 \
        RUNTIME_WAIT_SECONDS=0 POD_UID=pod-v GUEST_PULL_SLEEP=true READY_MARKER="$WORK/prestart/ready" \
        PRESTOP_MARKER="$WORK/prestart/prestop-started" "$SCRIPTS/install.sh" >> "$WORK/prestart/log" 2>&1 &
    ipid=$!
    for ((i = 0; i < 100; i++)); do [[ -e "$gate.entered" ]] && break; sleep 0.1; done
    run_script prestart uninstall.sh POD_UID=pod-v LOCK_TIMEOUT_SECONDS=30 || true
    : > "$gate"
    for ((i = 0; i < 100; i++)); do grep -qE "not installing|is installed" "$WORK/prestart/log" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    [[ -e "$gate.entered" ]] && kill -0 "$ipid" 2> /dev/null \
        && grep -q "this pod is being deleted (its preStop has started): not installing" "$WORK/prestart/log" \
        && [[ ! -e "$host/usr/local/bin/containerd-guest-pull-grpc" && ! -e "$WORK/prestart/ready" ]] \
        && ! grep -q "guest-pull" "$host/etc/containerd/config.toml" && kept=true
    status=0
    kill -TERM "$ipid" 2> /dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$ipid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$ipid" 2> /dev/null || true
    wait "$ipid" 2> /dev/null || status=$?
    [[ "$kept" == true && $status -eq 0 ]] \
        && h_pass "lock: a pod deleted as its container starts (its preStop marks before install.sh's first line): that install installs nothing; the first process ends at the TERM, exit 0" \
        || h_fail "lock: preStop before the first process's first line (exit $status)" "$(tail -4 "$WORK/prestart/log")"
    [[ -e "$WORK/prestart/prestop-started" ]] && run_script prestart install.sh POD_UID=pod-v \
        && [[ ! -e "$WORK/prestart/prestop-started" && -x "$host/usr/local/bin/containerd-guest-pull-grpc" ]] \
        && h_pass "lock: a marker of an earlier run (a host's /tmp) is removed by the next install, which installs" \
        || h_fail "lock: a run after the preStop's marker, same marker path" "$(tail -3 "$WORK/prestart/log")"
    # The pod's install: the readiness marker once done, and the lock free
    # while it sleeps (its own preStop must get it).
    local marker="$WORK/lock/ready" pid free=false
    # Its own session: the sleep it runs goes with it.
    host="$WORK/lock/host"
    setsid env HOST_ROOT="$host" PAYLOAD_DIR="$WORK/lock/payload" SYSTEMCTL="$WORK/lock/sysd/systemctl" \
        CONTAINERD="$WORK/containerd-1.7" POLL_SECONDS=1 ACTIVE_TIMEOUT_SECONDS=2 RUNTIME_WAIT_SECONDS=0 POD_UID=pod-c \
        READY_MARKER="$marker" GUEST_PULL_SLEEP=true PRESTOP_MARKER="$WORK/lock/prestop-started" \
        "$SCRIPTS/install.sh" >> "$WORK/lock/log" 2>&1 &
    pid=$!
    for ((i = 0; i < 200; i++)); do [[ -e "$marker" ]] && break; sleep 0.1; done
    flock -n "$host/run/containerd-guest-pull-grpc.install.lock" true && free=true
    kill -- "-$pid" 2> /dev/null || true  # gone already: the check below fails, with its log
    wait "$pid" 2> /dev/null || true
    [[ -e "$marker" && "$free" == true ]] \
        && [[ "$(head -n 1 "$host/etc/containerd-guest-pull-grpc/installed-by-pod")" == pod-c ]] \
        && h_pass "lock: the pod's install makes its readiness marker and sleeps without the lock" \
        || h_fail "lock: readiness marker ($([[ -e "$marker" ]] && echo made || echo missing)) / lock free while sleeping ($free)" "$(tail -3 "$WORK/lock/log")"
}
