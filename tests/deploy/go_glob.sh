# shellcheck shell=bash
# go_glob.sh: the installer's reading of containerd's `imports` globs
# (deploy/k8s/scripts/go_glob.py) against Go's own filepath.Match and
# filepath.Glob (go_match/main.go, standard library only). Sourced by
# tests/deploy/run.sh.

test_go_glob() {
    local bin="$WORK/go_match/go_match"
    mkdir -p "$WORK/go_match"
    h_setup "go build tests/deploy/go_match (Go's filepath, the reference)" \
        go build -o "$bin" "$HERE/go_match/main.go" || return 0
    h_check "go_glob: Match and Glob answer as Go's filepath ([^x], [!x], escapes, bad patterns, dot files, UTF-8)" \
        python3 "$HERE/go_glob_check.py" "$bin" "$REPO/deploy/k8s/scripts"
}
