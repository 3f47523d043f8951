# shellcheck shell=bash
# manifests_and_lint.sh: the Kubernetes manifests against the Kubernetes
# JSON schemas, the kata-containers patch (applies, its Go file compiles
# and behaves), shellcheck of the deploy scripts and this suite. Sourced by
# tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_manifests() {
    if [[ ! -d "$HERE/node_modules/kubernetes-models" ]]; then
        h_fail "k8s: schema validation" "run: npm ci --prefix tests/deploy"
        return
    fi
    h_check "k8s: manifests valid against the Kubernetes JSON schemas" \
        node "$HERE/validate-manifests.mjs" "$REPO/deploy/k8s"
    # The validator must reject a wrong manifest.
    mkdir -p "$WORK/badk8s"
    sed 's/hostPID: true/hostPID: "yes"/' "$REPO/deploy/k8s/daemonset.yaml" > "$WORK/badk8s/daemonset.yaml"
    printf 'kind: Kustomization\nresources:\n  - daemonset.yaml\n' > "$WORK/badk8s/kustomization.yaml"
    ! node "$HERE/validate-manifests.mjs" "$WORK/badk8s" > /dev/null 2>&1 \
        && h_pass "k8s: validator rejects a type error" || h_fail "k8s: validator accepted a bad manifest"
}

test_kata_patch() {
    local patch="$REPO/deploy/kata/0001-guest-pull-rootfs.patch" dir="$WORK/katapatch"
    mkdir -p "$dir"
    h_check "kata patch: well-formed, touches the three call sites" bash -c '
        stat="$(git apply --numstat "$1")" &&
        for f in containerd-shim-v2/create.go katautils/create.go virtcontainers/container.go \
                 virtcontainers/guest_pull_rootfs.go; do grep -q "$f" <<< "$stat" || exit 1; done &&
        [[ "$(grep -c "IsGuestPullRootFSType(" "$1")" -ge 5 ]]' sh "$patch"
    (cd "$dir" && git apply --include='*/guest_pull_rootfs.go' "$patch")
    if command -v go > /dev/null && command -v gofmt > /dev/null; then
        cat > "$dir/src/runtime/virtcontainers/check_test.go" <<'EOF'
package virtcontainers

import "testing"

func TestGuestPullType(t *testing.T) {
	for typ, want := range map[string]bool{"fuse.guest-pull-overlayfs": true,
		"fuse.guest-pull-overlayfs-x": true, "fuse./usr/local/bin/guest-pull-overlayfs": true,
		"fuse.nydus-overlayfs": false, "guest-pull-overlayfs": false, "overlay": false} {
		if IsGuestPullRootFSType(typ) != want {
			t.Errorf("%q: want %v", typ, want)
		}
	}
}
EOF
        printf 'module kata\ngo 1.19\n' > "$dir/src/runtime/virtcontainers/go.mod"
        h_check "kata patch: new Go file is gofmt-clean and IsGuestPullRootFSType behaves" bash -c '
            cd "$1" && [[ -z "$(gofmt -l guest_pull_rootfs.go)" ]] && GOFLAGS=-mod=mod GOPROXY=off go test ./... ' \
            sh "$dir/src/runtime/virtcontainers"
    else
        h_skip "kata patch: new Go file is gofmt-clean and IsGuestPullRootFSType behaves" "go not installed"
    fi
}

test_shellcheck() {
    if command -v shellcheck > /dev/null; then
        h_check "shellcheck: deploy scripts and this suite" \
            shellcheck -x "$SCRIPTS/install.sh" "$SCRIPTS/uninstall.sh" "$SCRIPTS/lib.sh" "$BUNDLE_SCRIPT" \
            "$HERE"/*.sh
    else
        h_skip "shellcheck: deploy scripts and this suite" "shellcheck not installed"
    fi
}
