# shellcheck shell=bash
# manifests_and_lint.sh: the Kubernetes manifests against the Kubernetes
# JSON schemas, the kata-containers patch (applies, its Go file compiles
# and behaves), shellcheck of the deploy scripts and this suite. Sourced by
# tests/deploy/run.sh.
# shellcheck disable=SC2015,SC2016

test_manifests() {
    # The payload runs on x86_64 only: the pod is not scheduled on the
    # other architectures kata-deploy labels (it stayed in ImagePullBackOff
    # there, or failed with "exec format error"). Before the schemas, which
    # need npm; the block under `nodeSelector:`, its entries' comments aside.
    local selector
    selector="$(awk '/^ *nodeSelector:/ { n = match($0, /[^ ]/); on = 1; next }
        on && /^ *#/ { next }
        on { if (match($0, /[^ ]/) <= n) exit; sub(/^ +/, ""); print }' "$REPO/deploy/k8s/daemonset.yaml")"
    grep -qx 'kubernetes.io/arch: amd64' <<< "$selector" \
        && grep -qx 'katacontainers.io/kata-runtime: "true"' <<< "$selector" \
        && h_pass "k8s: the DaemonSet runs on amd64 nodes with Kata only" \
        || h_fail "k8s: the DaemonSet's nodeSelector does not keep it to amd64 nodes with Kata" "$selector"
    if [[ ! -d "$HERE/node_modules/kubernetes-models" ]]; then
        h_fail "k8s: schema validation" "run: npm ci --prefix tests/deploy"
        return
    fi
    h_check "k8s: manifests valid against the Kubernetes JSON schemas" \
        node "$HERE/validate-manifests.mjs" "$REPO/deploy/k8s"
    # The node's / in the pod follows the node's later mounts and unmounts
    # (without it, a file system the node unmounted stayed mounted in the
    # pod for its whole life, and one mounted later over a path the scripts
    # write stayed hidden).
    local mounts
    mounts="$(cd "$HERE" && node --input-type=module -e '
import { readFileSync } from "node:fs";
import { parse } from "yaml";
const pod = parse(readFileSync(process.argv[1], "utf8")).spec.template.spec;
for (const v of pod.volumes.filter((v) => v.hostPath && v.hostPath.path === "/"))
  for (const c of pod.containers)
    for (const m of (c.volumeMounts || []).filter((m) => m.name === v.name))
      console.log(`${c.name} ${m.mountPath} ${m.mountPropagation || "None"}`);
' "$REPO/deploy/k8s/daemonset.yaml" 2>&1)"
    [[ "$mounts" == "installer /host HostToContainer" ]] \
        && h_pass "k8s: the node's / is mounted with mountPropagation HostToContainer" \
        || h_fail "k8s: the node's / mount (container, path, propagation)" "$mounts"
    h_check "k8s: the optional RuntimeClasses valid against the Kubernetes JSON schemas" \
        node "$HERE/validate-manifests.mjs" "$REPO/deploy/k8s/runtimeclass"
    # Deleting deploy/k8s (the uninstall) must not delete kata-deploy's RuntimeClasses.
    ! grep -rq "kind: RuntimeClass" "$REPO"/deploy/k8s/*.yaml \
        && h_pass "k8s: the uninstall (kubectl delete -k deploy/k8s) deletes no RuntimeClass" \
        || h_fail "k8s: deploy/k8s has a RuntimeClass, which its deletion would delete"
    # The validator must reject a wrong manifest.
    mkdir -p "$WORK/badk8s"
    sed 's/hostPID: true/hostPID: "yes"/' "$REPO/deploy/k8s/daemonset.yaml" > "$WORK/badk8s/daemonset.yaml"
    printf 'kind: Kustomization\nresources:\n  - daemonset.yaml\n' > "$WORK/badk8s/kustomization.yaml"
    ! node "$HERE/validate-manifests.mjs" "$WORK/badk8s" > /dev/null 2>&1 \
        && h_pass "k8s: validator rejects a type error" || h_fail "k8s: validator accepted a bad manifest"
    sed 's/mountPropagation: HostToContainer/mountPropagation: HostToContainers/' \
        "$REPO/deploy/k8s/daemonset.yaml" > "$WORK/badk8s/daemonset.yaml"
    ! node "$HERE/validate-manifests.mjs" "$WORK/badk8s" > /dev/null 2>&1 \
        && h_pass "k8s: validator rejects a mountPropagation that is not one of the allowed values" \
        || h_fail "k8s: validator accepted mountPropagation: HostToContainers"
}

test_shellcheck() {
    if command -v shellcheck > /dev/null; then
        h_check "shellcheck: deploy scripts and this suite" \
            shellcheck -x "$SCRIPTS/install.sh" "$SCRIPTS/uninstall.sh" "$SCRIPTS/lib.sh" "$BUNDLE_SCRIPT" \
            "$HERE"/*.sh "$REPO/tests/tools/host_view.sh"
    else
        h_skip "shellcheck: deploy scripts and this suite" "shellcheck not installed"
    fi
}
