#!/usr/bin/env bash
# The daemon binary's command line: --help lists every flag with its
# variable and default; good configuration (the printed default config,
# flags over variables) starts it; a bad config file, variable, flag or a
# missing named file stops it with exit code 2 before it listens.
set -uo pipefail

BIN="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-__main__}/snapshotter/containerd-guest-pull-grpc"
[[ -x "$BIN" ]] || BIN="$(dirname "$0")/containerd-guest-pull-grpc"
T="$(mktemp -d /tmp/gp-cli.XXXXXX)"
DAEMON=""
cleanup() {
  if [[ -n "$DAEMON" ]]; then kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT
PASSED=0
FAILED=0
ok() { echo "PASS: $1"; PASSED=$((PASSED + 1)); }
bad() { echo "FAIL: $1"; [[ -n "${2:-}" ]] && sed 's/^/    | /' <<<"$2" | tail -n 20; FAILED=$((FAILED + 1)); }

# expect_refusal NAME EXPECTED_TEXT CMD...: exit code 2, EXPECTED_TEXT on
# stderr, and no socket.
expect_refusal() {
  local name="$1" want="$2" out rc
  shift 2
  out="$("$@" 2>&1 >/dev/null)"; rc=$?
  if [[ $rc -eq 2 && "$out" == *"$want"* && ! -e "$T/gp.sock" ]]; then ok "$name"
  else bad "$name (exit $rc)" "$out"; fi
}

# --help
help="$("$BIN" --help)"; rc=$?
missing=""
for want in "--address=PATH" "env GUEST_PULL_ADDRESS; default /run/containerd-guest-pull-grpc/containerd-guest-pull-grpc.sock" \
            "--root=DIR" "env GUEST_PULL_ROOT; default /var/lib/containerd-guest-pull-grpc" \
            "--config=FILE" "env GUEST_PULL_CONFIG; default /etc/containerd-guest-pull-grpc/config.toml" \
            "--log-level=LEVEL" "env GUEST_PULL_LOG_LEVEL; default info" \
            "--version" "--print-default-config" "--help" "guest_pull.include = [\".*\"]"; do
  [[ "$help" == *"$want"* ]] || missing+=" [$want]"
done
if [[ $rc -eq 0 && -z "$missing" && "$help" != *"No flags matched"* ]]; then ok "--help lists every flag with its variable and default"
else bad "--help (exit $rc, missing:$missing)" "$help"; fi

out="$("$BIN" --version)" && [[ "$out" == "containerd-guest-pull-grpc "* ]] && ok "--version" || bad "--version" "$out"

# The printed default config starts the daemon; the flag beats the variable.
"$BIN" --print-default-config > "$T/default.toml" || bad "--print-default-config exits 0"
# WATCHDOG_USEC as systemd sets it for the unit's WatchdogSec=30.
GUEST_PULL_ROOT="$T/root" GUEST_PULL_ADDRESS="$T/env.sock" WATCHDOG_USEC=30000000 \
  "$BIN" --config "$T/default.toml" --address "$T/gp.sock" > "$T/log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 300); do [[ -S "$T/gp.sock" ]] && break; kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
if [[ -S "$T/gp.sock" && ! -e "$T/env.sock" && -d "$T/root" ]]; then
  ok "the printed default config starts the daemon (--address over GUEST_PULL_ADDRESS, GUEST_PULL_ROOT over the file)"
else bad "daemon with the printed default config" "$(cat "$T/log")"; fi
grep -q "starting: config=$T/default.toml version=1 root=$T/root address=$T/gp.sock log_level=info" "$T/log" \
  && ok "startup log names the file and the effective values" || bad "startup log" "$(head -3 "$T/log")"
grep -q "systemd watchdog (WatchdogSec=30s): pinging every 10s while the store answers within 15s" "$T/log" \
  && ok "the watchdog line gives the ping interval (docs/operations.md)" || bad "watchdog line" "$(grep -i watchdog "$T/log")"
# No reload: SIGHUP is logged and ignored (docs/operations.md).
kill -HUP "$DAEMON"
for _ in $(seq 1 50); do grep -q "SIGHUP received" "$T/log" && break; sleep 0.1; done
if kill -0 "$DAEMON" 2>/dev/null && [[ -S "$T/gp.sock" ]] \
    && grep -q "SIGHUP received: nothing to reload (restart the daemon to apply config changes); still serving" "$T/log"; then
  ok "SIGHUP is logged and the daemon keeps serving"
else bad "SIGHUP" "$(tail -3 "$T/log")"; fi
kill "$DAEMON"; wait "$DAEMON"; rc=$?; DAEMON=""
[[ $rc -eq 0 && ! -e "$T/gp.sock" ]] && ok "SIGTERM stops it cleanly" || bad "SIGTERM (exit $rc)" "$(tail -3 "$T/log")"
# The daemon binds gp.sock.<pid>-<hex> and links it to gp.sock (socket_path.h).
left="$(cd "$T" && ls -A | grep -F 'gp.sock.' || true)"
[[ -z "$left" ]] && ok "the name bound before the address is gone" || bad "binding name left" "$left"

# Refusals.
printf 'root = "%s"\n\n[guest_pull]\ninclud = [".*"]\n' "$T/root" > "$T/unknown.toml"
expect_refusal "unknown key: names the key and the line" \
  "$T/unknown.toml: line 4: unknown key \"guest_pull.includ\"" \
  "$BIN" --config "$T/unknown.toml" --address "$T/gp.sock"
printf '[verity]\nwrite_passwd = "yes"\n' > "$T/type.toml"
expect_refusal "wrong type: names the key and the line" \
  "line 2: key \"verity.write_passwd\" must be a boolean" \
  "$BIN" --config "$T/type.toml" --address "$T/gp.sock"
# An empty pattern matches no reference (patterns match the whole of it):
# refused like an invalid one, before the root is made.
printf 'root = "%s"\n[guest_pull]\nexclude = [\n  "docker\\\\.io/.*",\n  "",\n]\n' "$T/pattern-root" > "$T/pattern.toml"
expect_refusal "an empty exclude pattern: names the key, its index and the line" \
  "$T/pattern.toml: line 5: key \"guest_pull.exclude[1]\": an empty pattern matches no image reference" \
  "$BIN" --config "$T/pattern.toml" --address "$T/gp.sock"
[[ ! -e "$T/pattern-root" ]] && ok "an empty pattern's refusal makes no root" || bad "an empty pattern's refusal made the root"
# --check-config: the installers' check before they replace a running
# daemon. The same refusal, exit 2, and nothing made.
expect_refusal "--check-config refuses what a start refuses" \
  "$T/pattern.toml: line 5: key \"guest_pull.exclude[1]\": an empty pattern matches no image reference" \
  "$BIN" --check-config --config "$T/pattern.toml" --address "$T/gp.sock"
out="$(GUEST_PULL_ROOT="$T/check-root" "$BIN" --check-config --config "$T/default.toml" --address "$T/gp.sock" 2>&1)"; rc=$?
if [[ $rc -eq 0 && "$out" == *"configuration OK: config=$T/default.toml version=1 root=$T/check-root address=$T/gp.sock"* \
      && ! -e "$T/check-root" && ! -e "$T/gp.sock" ]]; then
  ok "--check-config takes a good config, prints the effective values, makes no root and no socket"
else bad "--check-config of a good config (exit $rc)" "$out"; fi
expect_refusal "bad variable: names it" \
  "GUEST_PULL_LOG_LEVEL=\"verbose\": invalid log level" \
  env GUEST_PULL_LOG_LEVEL=verbose "$BIN" --config "$T/default.toml" --address "$T/gp.sock"
expect_refusal "bad flag: names it" \
  "--root=\"relative\": \"relative\" is not an absolute path" \
  "$BIN" --config "$T/default.toml" --root relative --address "$T/gp.sock"
expect_refusal "missing named config file" \
  "does not exist (named by GUEST_PULL_CONFIG)" \
  env GUEST_PULL_CONFIG="$T/typo.toml" "$BIN" --address "$T/gp.sock"
expect_refusal "unknown flag" "unknown flag --bogus" "$BIN" --bogus
expect_refusal "\"%\" in the address (gRPC clients would percent-decode it)" \
  "must not contain \"%\"" \
  "$BIN" --config "$T/default.toml" --address "$T/gp%41.sock"

# A file in the way of the socket: refused before the root is touched.
: > "$T/taken.sock"
out="$("$BIN" --config "$T/default.toml" --root "$T/fresh-root" --address "$T/taken.sock" 2>&1)"; rc=$?
if [[ $rc -ne 0 && "$out" == *"is a regular file, not a socket"* && -f "$T/taken.sock" && ! -e "$T/fresh-root" ]]; then
  ok "a regular file at the socket path is refused before the root is created"
else bad "regular file at the socket path (exit $rc; root created: $([[ -e "$T/fresh-root" ]] && echo yes || echo no))" "$out"; fi

# tree DIR: DIR and every entry below it, with its type, mode, size and,
# for a file, its checksum.
tree() {
  find "$1" -printf '%y %m %s %p\n' | sort
  find "$1" -type f -exec md5sum {} + | sort
}

# A refused start changes nothing ("Nothing was changed"): a store whose
# metadata.db is lost (store-id alone, mode 0755), the address in a
# directory that does not exist yet. <root>/lock, held through the checks,
# is the one file it may add; with it there, nothing at all.
mkdir -m 0755 "$T/lost-db"
echo 0123456789abcdef0123456789abcdef > "$T/lost-db/store-id"
before="$(tree "$T/lost-db")"
out="$("$BIN" --config "$T/default.toml" --root "$T/lost-db" --address "$T/sockdir/gp.sock" 2>&1)"; rc=$?
after="$(tree "$T/lost-db" | grep -v " $T/lost-db/lock\$")"
if [[ $rc -eq 65 && "$out" == *"records are lost"*"Nothing was changed"* && "$after" == "$before" \
      && -f "$T/lost-db/lock" && ! -s "$T/lost-db/lock" && ! -e "$T/sockdir" ]]; then
  ok "a start refused for its store changes nothing but <root>/lock (no snapshots/, guest-pull/, mode or socket directory)"
else bad "refused store (exit $rc)" "$(diff <(echo "$before") <(echo "$after"); echo "$out" | tail -3; ls -d "$T/sockdir" 2>&1)"; fi
before="$(tree "$T/lost-db")"
"$BIN" --config "$T/default.toml" --root "$T/lost-db" --address "$T/sockdir/gp.sock" > /dev/null 2>&1; rc=$?
after="$(tree "$T/lost-db")"
[[ $rc -eq 65 && "$after" == "$before" ]] && ok "refused again with its lock there: nothing changed at all" \
  || bad "refused again (exit $rc)" "$(diff <(echo "$before") <(echo "$after"))"

# A root of others' files: refused before the socket directory is made.
mkdir "$T/others"; echo keep > "$T/others/notes.txt"
before="$(tree "$T/others")"
out="$("$BIN" --config "$T/default.toml" --root "$T/others" --address "$T/sockdir/gp.sock" 2>&1)"; rc=$?
if [[ $rc -eq 65 && "$out" == *"holds no store of this daemon"* && "$(tree "$T/others")" == "$before" && ! -e "$T/sockdir" ]]; then
  ok "a root of others' files is refused with nothing changed, no socket directory made"
else bad "root of others' files (exit $rc)" "$out"; fi

# A socket directory that cannot be made (under /proc, as under a read-only
# place; below a regular file) is found by the first check: the start fails
# (exit 1) naming it, before the root is made.
: > "$T/plain"
for address in /proc/gp-cli-test/gp.sock "$T/plain/sub/gp.sock"; do
  dir="${address%/*}" root="$T/root-${address//\//_}"
  out="$("$BIN" --config "$T/default.toml" --root "$root" --address "$address" 2>&1)"; rc=$?
  if [[ $rc -eq 1 && "$out" == *"cannot create socket directory $dir: "* && ! -e "$root" && ! -e "$dir" ]]; then
    ok "a socket directory that cannot be made ($dir) fails the start before the root is made"
  else bad "socket directory that cannot be made: $dir (exit $rc; root made: $([[ -e "$root" ]] && echo yes || echo no))" "$out"; fi
done

# no_sockets CMD...: runs CMD where no unix socket can be made anywhere
# (a Landlock ruleset that denies only that; inherited across exec); exit
# 77 where Landlock is unavailable.
no_sockets() {
  python3 -c '
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
MAKE_SOCK = 1 << 9  # LANDLOCK_ACCESS_FS_MAKE_SOCK
attr = ctypes.create_string_buffer(struct.pack("Q", MAKE_SOCK))
ruleset = libc.syscall(444, attr, 8, 0)  # landlock_create_ruleset
if ruleset < 0 or libc.prctl(38, 1, 0, 0, 0) != 0 or libc.syscall(446, ruleset, 0) != 0:
    sys.exit(77)  # PR_SET_NO_NEW_PRIVS, landlock_restrict_self
os.execv(sys.argv[1], sys.argv[1:])
' "$@"
}

# A directory root may write but where no unix socket can be made (sysfs,
# where bind says EPERM; a filesystem without sockets; here Landlock),
# existing or to be made: refused by the first check (exit 1) naming the
# address, before the root is made. The bind failed only once the store
# was open (a new root's store made), naming the binding. /proc/self takes
# no entries at all.
mkdir "$T/nosock"
for address in "$T/nosock/gp.sock" "$T/nosock/sub/gp.sock" /sys/gp-cli-test.sock /proc/self/gp-cli-test.sock; do
  root="$T/root-nosock-${address//\//_}"
  run=("$BIN") left=""
  [[ $address == "$T"/* ]] && run=(no_sockets "$BIN")
  out="$("${run[@]}" --config "$T/default.toml" --root "$root" --address "$address" 2>&1)"; rc=$?
  # Nothing made where the socket would go (its directory, a probe).
  [[ $address == "$T"/* ]] && left="$(find "$T/nosock" -mindepth 1)" && rm -rf "${T:?}/nosock/"*
  if [[ $rc -eq 77 ]]; then echo "SKIP: an address where no socket can be made ($address): no Landlock here"
  elif [[ $rc -eq 1 && "$out" == *"cannot create the socket $address: "* && ! -e "$root" \
          && -z "$left" && ! -e "$address" ]]; then
    ok "an address where no socket can be made ($address) fails the start naming it, before the root is made"
  else bad "address where no socket can be made: $address (exit $rc; root made: $([[ -e "$root" ]] && echo yes || echo no))" "$out"; fi
done

# --reset-store where there is no store: an empty directory is left as it
# was (it got snapshots/, lock and mode 0700), a missing root is not made.
mkdir -m 0755 "$T/empty-root"
out="$("$BIN" --config "$T/default.toml" --root "$T/empty-root" --reset-store --log-level=error 2>&1)"; rc=$?
if [[ $rc -eq 0 && "$out" == *"nothing to move"* && -z "$(ls -A "$T/empty-root")" \
      && "$(stat -c %a "$T/empty-root")" == 755 ]]; then
  ok "--reset-store of an empty root says there is nothing to move (exit 0) and makes nothing"
else bad "--reset-store of an empty root (exit $rc, mode $(stat -c %a "$T/empty-root"), entries: $(find "$T/empty-root" -mindepth 1 -printf '%f '))" "$out"; fi
out="$("$BIN" --config "$T/default.toml" --root "$T/no-root" --reset-store 2>&1)"; rc=$?
if [[ $rc -eq 1 && "$out" == *"does not exist: there is no store to reset"* && ! -e "$T/no-root" ]]; then
  ok "--reset-store of a missing root fails (exit 1) naming it, and creates nothing"
else bad "--reset-store of a missing root (exit $rc)" "$out"; fi

# A SIGTERM while the store opens (here: waiting for another process's
# lock on metadata.db; a recovery can take minutes) stops the daemon once
# the store is open, before it binds its socket (exit 0, the store closed
# cleanly): it used to bind the socket, log "serving" (READY=1 to systemd)
# and only then stop.
"$BIN" --config "$T/default.toml" --root "$T/term-root" --address "$T/term.sock" > "$T/term.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [[ -S "$T/term.sock" ]] && break; sleep 0.1; done
kill "$pid"; wait "$pid"
python3 -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA locking_mode=EXCLUSIVE"); db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(2.5)
' "$T/term-root/metadata.db" "$T/term-locked" &
locker=$!
for _ in $(seq 1 100); do [[ -e "$T/term-locked" ]] && break; sleep 0.05; done
"$BIN" --config "$T/default.toml" --root "$T/term-root" --address "$T/term.sock" > "$T/term.log" 2>&1 &
pid=$!
sleep 1
kill "$pid"; wait "$pid"; rc=$?
wait "$locker"
if [[ $rc -eq 0 && ! -e "$T/term.sock" && ! -e "$T/term-root/store-open" \
      && ! -e "$T/term-root/metadata.db-wal" ]] \
    && grep -q "while the store was opening: stopping before serving" "$T/term.log" \
    && ! grep -q "serving containerd.services.snapshots.v1" "$T/term.log"; then
  ok "SIGTERM while the store opens: stops before serving (exit 0, store closed)"
else bad "SIGTERM while the store opens (exit $rc)" "$(cat "$T/term.log")"; fi

echo "$PASSED passed, $FAILED failed"
# Each check counts in the unit totals (scripts/test.sh reads test.xml).
if [[ -n "${XML_OUTPUT_FILE:-}" ]]; then
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites tests="%d" failures="%d" errors="0">\n  <testsuite name="cli_test" tests="%d" failures="%d" errors="0"></testsuite>\n</testsuites>\n' \
    $((PASSED + FAILED)) "$FAILED" $((PASSED + FAILED)) "$FAILED" > "$XML_OUTPUT_FILE"
fi
[[ $FAILED -eq 0 ]]
