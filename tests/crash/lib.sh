# shellcheck shell=bash
# lib.sh: shared by tests/crash/crash.sh and tests/faults/faults.sh: builds
# the daemon (a private copy, so a concurrent bazel build cannot swap it
# mid-run) and the Go workload client (tests/crash/workload, offline GOPATH
# mode on Debian's containerd 1.6 sources, tests/tools/peers.sh), and counts
# the workload's "CHECK <name>: ok|failed (N)" lines through harness.sh with
# the "FINDING <name>: …" lines as the failure detail, and its "FIGURE" lines
# as h_figure.
#
#   crash_begin SUITE TEMPLATE  sets the EXIT trap (peers_teardown_suite of
#                          $work, kept with keep=1), skips the suite when not
#                          root, and sets work=$(mktemp -d TEMPLATE)
#   crash_build WORK       builds WORK/daemon and WORK/workload (it runs
#                          under h_setup, in a subshell: it sets nothing)
#   crash_count OUTPUT [PREFIX]  h_pass/h_fail per CHECK line, h_skip per
#                          "SKIP <name>: <reason>" line, h_figure per FIGURE;
#                          PREFIX goes in front of every name

CRASH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

crash_begin() {
  work=""
  keep="${keep:-0}"
  # shellcheck disable=SC2016  # expanded when the trap runs
  h_on_exit 'peers_teardown_suite $? "$work" "$keep"'
  if ((EUID != 0)); then
    h_skip "$1" "needs root (real overlay and tmpfs mounts)"
    exit 0
  fi
  work="$(mktemp -d "$2")"
}

crash_build() {
  local work="$1" pkg
  if [[ -n "${GUEST_PULL_DAEMON:-}" ]]; then
    cp "$GUEST_PULL_DAEMON" "$work/daemon" || return 1
  else
    (cd "$CRASH_REPO" && bazel build //snapshotter:containerd-guest-pull-grpc) || return 1
    cp "$CRASH_REPO/bazel-bin/snapshotter/containerd-guest-pull-grpc" "$work/daemon" || return 1
  fi
  peers_gopath "$work/gopath" "conformance=$CRASH_REPO/tests/conformance" "crash=$CRASH_REPO/tests/crash"
  pkg="$work/gopath/src/guestpull/crash/workload"
  (cd "$pkg" && go build -o "$work/workload" .)
}

crash_count() {
  local out="$1" prefix="${2:-}" line name detail
  # shellcheck disable=SC2094 # grep only reads $out too
  while IFS= read -r line; do
    if [[ "$line" =~ ^CHECK\ (.*):\ ok$ ]]; then
      h_pass "$prefix${BASH_REMATCH[1]}"
    elif [[ "$line" =~ ^CHECK\ (.*):\ failed ]]; then
      name="${BASH_REMATCH[1]}"
      detail=$(grep -F "FINDING $name: " "$out" | head -n 20)
      h_fail "$prefix$name" "$detail"
    elif [[ "$line" =~ ^FIGURE\ ([^:]*):\ (.*)$ ]]; then
      h_figure "$prefix${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    elif [[ "$line" =~ ^SKIP\ ([^:]*):\ (.*)$ ]]; then
      h_skip "$prefix${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    fi
  done <"$out"
}
