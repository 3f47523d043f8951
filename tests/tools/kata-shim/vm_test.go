package main

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testVMGuest(hooks bool) *vmGuest {
	return &vmGuest{runner: "/r/guestvm", kernel: "/k/vmlinuz", initrd: "/k/initrd", timeout: "60s",
		memoryMB: "512", testHooks: hooks}
}

func containerSpec(annotations map[string]string) *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"/bin/sh", "-c", "id"}, Env: []string{"PATH=/bin"}, Cwd: "/w",
			User: specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5}}},
		Annotations: annotations,
	}
}

// The request carries the container's process as containerd resolved it,
// the user as uid:gid with its additional gids.
func TestVMRequestCarriesTheProcess(t *testing.T) {
	st := Storage{Driver: "image_guest_pull", DriverOptions: []string{"image_guest_pull={}"},
		Source: "127.0.0.1:5000/a:1", Fstype: "overlay", MountPoint: "/run/kata-containers/c/rootfs"}
	r, err := testVMGuest(false).request(st, containerSpec(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.Process.User != "1000:1001" || len(r.Process.AdditionalGids) != 1 || r.Process.AdditionalGids[0] != 5 || r.Process.Cwd != "/w" || len(r.Process.Args) != 3 || r.Process.Env[0] != "PATH=/bin" {
		t.Errorf("process = %+v", r.Process)
	}
	if r.Storage.Source != st.Source || r.Storage.Driver != st.Driver || r.TestOptions != nil {
		t.Errorf("storage = %+v, test options %v", r.Storage, r.TestOptions)
	}
	if _, err := testVMGuest(false).request(st, &specs.Spec{Process: &specs.Process{}}); err == nil {
		t.Error("a spec without args was accepted")
	}
}

// The skip-blob-checks annotation is honoured only with the test hooks on.
func TestVMTestHookNeedsTheSwitch(t *testing.T) {
	spec := containerSpec(map[string]string{annotSkipBlobChecks: "true"})
	if r, _ := testVMGuest(false).request(Storage{}, spec); r.TestOptions != nil {
		t.Error("annotation honoured without GUEST_PULL_SHIM_VM_TEST_HOOKS")
	}
	if r, _ := testVMGuest(true).request(Storage{}, spec); r.TestOptions == nil || !r.TestOptions.SkipBlobChecks {
		t.Error("annotation ignored with the hooks on")
	}
}

// runc runs the runner as root with the runner's files mounted.
func TestVMRunnerProcessAndMounts(t *testing.T) {
	g := testVMGuest(false)
	p := g.runnerProcess(containerSpec(nil).Process)
	if p.User.UID != 0 || p.User.GID != 0 || len(p.User.AdditionalGids) != 0 || p.Args[0] != "/vm/guestvm" || p.Args[1] != "run" {
		t.Errorf("runner process = %+v", p)
	}
	ms := g.runnerMounts([]specs.Mount{{Destination: "/proc", Type: "proc"}}, "/out/c1")
	dest := map[string]string{}
	for _, m := range ms {
		dest[m.Destination] = m.Source
	}
	for d, src := range map[string]string{"/proc": "", "/usr": "/usr", "/vm/guestvm": "/r/guestvm",
		"/vm/kernel": "/k/vmlinuz", "/vm/initrd": "/k/initrd", "/vm/out": "/out/c1", "/tmp": "tmpfs"} {
		if got, ok := dest[d]; !ok || got != src {
			t.Errorf("mount %s: source %q (present %v), want %q", d, got, ok, src)
		}
	}
	root := t.TempDir()
	if err := makeRunnerRootfs(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "vm/out")); err != nil || !fi.IsDir() {
		t.Errorf("vm/out: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "bin")); err != nil {
		t.Errorf("bin: %v", err)
	}
}

func TestVMModeNeedsItsPaths(t *testing.T) {
	t.Setenv("GUEST_PULL_SHIM_VM_RUNNER", "")
	if _, err := newVMGuest(newDecisionLog(), nil); err == nil {
		t.Error("VM mode without a runner was accepted")
	}
	t.Setenv("GUEST_PULL_SHIM_GUEST", "bogus")
	if _, err := newGuest(newDecisionLog()); err == nil {
		t.Error("GUEST_PULL_SHIM_GUEST=bogus was accepted")
	}
}

// The runner leaves the sandbox's pid namespace for one of its own.
func TestVMRunnerGetsItsOwnPIDNamespace(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace, Path: "/proc/1/ns/ipc"}}}}
	got := ownPIDNamespace(spec)
	pids := 0
	for _, ns := range got {
		if ns.Type == specs.PIDNamespace {
			pids++
			if ns.Path != "" {
				t.Errorf("pid namespace still joins %s", ns.Path)
			}
		}
	}
	if pids != 1 || len(got) != 3 {
		t.Errorf("namespaces = %+v", got)
	}
}

// rewriteSpec changes root.path, process, mounts and linux.namespaces only.
func TestRewriteSpecKeepsTheRest(t *testing.T) {
	bundle := t.TempDir()
	in := `{"ociVersion":"1.2.0","root":{"path":"rootfs","readonly":true},"process":{"args":["x"]},` +
		`"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}],"cgroupsPath":"/c"},"hostname":"h"}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	launch := Launch{Rootfs: "/b/guest-rootfs", Process: &specs.Process{Args: []string{"/vm/guestvm"}},
		Mounts: []specs.Mount{{Destination: "/usr"}}, Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}
	if err := rewriteSpec(bundle, launch); err != nil {
		t.Fatal(err)
	}
	spec, err := readSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Root.Path != "/b/guest-rootfs" || !spec.Root.Readonly || spec.Hostname != "h" ||
		spec.Linux.CgroupsPath != "/c" || spec.Process.Args[0] != "/vm/guestvm" || len(spec.Mounts) != 1 ||
		len(spec.Linux.Namespaces) != 1 || spec.Linux.Namespaces[0].Path != "" {
		t.Errorf("spec = %+v, linux %+v", spec, spec.Linux)
	}
}
