package main

// VM mode (GUEST_PULL_SHIM_GUEST=vm): the container's process runs in a real
// Linux guest whose kernel verifies every layer with dm-verity (the guest
// agent, //guest_agent), booted by the host runner `guestvm run`
// (tests/tools/guestvm). The runner is what runc starts as the container's
// process, in a small host-side bundle: its stdout/stderr are the guest
// process's, so they reach the CRI log through the runc shim's own IO, and
// its exit status (the guest process's, or 125 when the guest refused) is
// the task's, so Wait/State/crictl inspect see it. Killing the task kills
// the runner and QEMU (the runner gets a pid namespace of its own, and
// guestvm has QEMU killed when it dies).
//
// One VM per container run; the sandbox (pause) container stays the
// built-in pause bundle on the host (it holds no image data).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Test-only annotation (a pod annotation passed through pod_annotations =
// ["io.katacontainers.*"]), honoured only with GUEST_PULL_SHIM_VM_TEST_HOOKS=1:
// the guest skips its blob digest and diff_id checks, so that the guest
// kernel's dm-verity alone faces a tampered blob.
const annotSkipBlobChecks = "io.katacontainers.guest-pull.test.skip-blob-checks"

// Paths inside the runner's bundle.
const (
	vmDir    = "/vm"
	vmOutDir = "/vm/out"
)

type vmGuest struct {
	local     *localGuest // the sandbox's pause bundle, the volume's checks
	log       *decisionLog
	runner    string // guestvm binary (static)
	kernel    string
	initrd    string
	timeout   string // guestvm --timeout
	memoryMB  string
	outRoot   string // per-container files; default: the bundle
	testHooks bool
}

func newVMGuest(log *decisionLog, local *localGuest) (*vmGuest, error) {
	g := &vmGuest{
		local:     local,
		log:       log,
		runner:    os.Getenv("GUEST_PULL_SHIM_VM_RUNNER"),
		kernel:    os.Getenv("GUEST_PULL_SHIM_VM_KERNEL"),
		initrd:    os.Getenv("GUEST_PULL_SHIM_VM_INITRD"),
		timeout:   envOr("GUEST_PULL_SHIM_VM_TIMEOUT", "600s"),
		memoryMB:  envOr("GUEST_PULL_SHIM_VM_MEMORY", "512"),
		outRoot:   os.Getenv("GUEST_PULL_SHIM_VM_DIR"),
		testHooks: os.Getenv("GUEST_PULL_SHIM_VM_TEST_HOOKS") == "1",
	}
	for name, path := range map[string]string{"GUEST_PULL_SHIM_VM_RUNNER": g.runner,
		"GUEST_PULL_SHIM_VM_KERNEL": g.kernel, "GUEST_PULL_SHIM_VM_INITRD": g.initrd} {
		if path == "" || !filepath.IsAbs(path) {
			return nil, fmt.Errorf("VM mode needs %s (an absolute path), got %q", name, path)
		}
	}
	return g, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// vmRequest is what `guestvm run --request` hands the guest agent
// (tests/vm/README.md, "The request JSON").
type vmRequest struct {
	Storage struct {
		Driver        string   `json:"driver"`
		DriverOptions []string `json:"driver_options"`
		Source        string   `json:"source"`
		Fstype        string   `json:"fstype"`
		MountPoint    string   `json:"mount_point"`
	} `json:"storage"`
	Process struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
		Cwd  string   `json:"cwd"`
		User string   `json:"user"`
		// The spec's additionalGids (a pod's supplementalGroups, fsGroup).
		AdditionalGids []uint32 `json:"additional_gids,omitempty"`
	} `json:"process"`
	TestOptions *struct {
		SkipBlobChecks bool `json:"skip_blob_checks"`
	} `json:"test_options,omitempty"`
}

func (g *vmGuest) PullRootfs(ctx context.Context, storage Storage, proc Process) (Launch, error) {
	meta, err := imagePullMetadata(storage)
	if err != nil {
		return Launch{}, fmt.Errorf("guest: %v", err)
	}
	if meta[annotContainerType] == containerTypeSandbox {
		g.log.Printf("container %s: VM mode: sandbox container: built-in pause bundle on the host (one VM per container)", proc.ContainerID)
		return g.local.PullRootfs(ctx, storage, proc)
	}
	// The guest checks all of it again; refusing a malformed volume here
	// gives the user the error at create time.
	if _, err := parseExpectedImage(storage.Source, meta, false); err != nil {
		return Launch{}, fmt.Errorf("guest: %v", err)
	}
	req, err := g.request(storage, proc.Spec)
	if err != nil {
		return Launch{}, err
	}
	out := filepath.Join(proc.Bundle, "guest-vm")
	if g.outRoot != "" {
		out = filepath.Join(g.outRoot, proc.ContainerID)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Launch{}, err
	}
	data, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return Launch{}, err
	}
	if err := os.WriteFile(filepath.Join(out, "request.json"), append(data, '\n'), 0o644); err != nil {
		return Launch{}, err
	}
	if err := makeRunnerRootfs(proc.Rootfs); err != nil {
		return Launch{}, fmt.Errorf("runner rootfs: %v", err)
	}
	launch := Launch{Rootfs: proc.Rootfs, Process: g.runnerProcess(proc.Spec.Process),
		Mounts: g.runnerMounts(proc.Spec.Mounts, out), Namespaces: ownPIDNamespace(proc.Spec)}
	g.log.Printf("container %s: VM mode: %s boots the guest (kernel %s, initrd %s); request, console, result and agent log in %s%s",
		proc.ContainerID, g.runner, g.kernel, g.initrd, out,
		map[bool]string{true: "; TEST: guest blob checks skipped", false: ""}[req.TestOptions != nil])
	return launch, nil
}

// request: kata's storage plus the container's process as containerd
// resolved it (args, env, cwd, user and additional gids from the OCI spec).
func (g *vmGuest) request(storage Storage, spec *specs.Spec) (*vmRequest, error) {
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, fmt.Errorf("the container spec has no process args")
	}
	r := &vmRequest{}
	r.Storage.Driver, r.Storage.DriverOptions = storage.Driver, storage.DriverOptions
	r.Storage.Source, r.Storage.Fstype, r.Storage.MountPoint = storage.Source, storage.Fstype, storage.MountPoint
	r.Process.Args, r.Process.Env, r.Process.Cwd = spec.Process.Args, spec.Process.Env, spec.Process.Cwd
	r.Process.User = strconv.FormatUint(uint64(spec.Process.User.UID), 10) + ":" +
		strconv.FormatUint(uint64(spec.Process.User.GID), 10)
	r.Process.AdditionalGids = spec.Process.User.AdditionalGids
	if g.testHooks && spec.Annotations[annotSkipBlobChecks] == "true" {
		r.TestOptions = &struct {
			SkipBlobChecks bool `json:"skip_blob_checks"`
		}{true}
	}
	return r, nil
}

// runnerProcess: `guestvm run` as root in the runner bundle; the container's
// own process (user included) went into the request.
func (g *vmGuest) runnerProcess(orig *specs.Process) *specs.Process {
	p := *orig
	p.Terminal = false
	p.User = specs.User{UID: 0, GID: 0}
	p.Cwd = "/"
	p.Env = []string{"PATH=/usr/bin:/usr/sbin:/bin:/sbin", "TMPDIR=/tmp"}
	p.Args = []string{vmDir + "/guestvm", "run",
		"--kernel", vmDir + "/kernel", "--initrd", vmDir + "/initrd",
		"--request", vmOutDir + "/request.json", "--timeout", g.timeout, "--memory", g.memoryMB,
		"--console", vmOutDir + "/console.log", "--result", vmOutDir + "/result.json", "--log", vmOutDir + "/agent.log"}
	return &p
}

// runnerMounts: containerd's mounts plus the host's /usr (QEMU and its
// libraries, read-only), the runner, kernel and initrd (read-only), the
// per-container directory and a private /tmp.
func (g *vmGuest) runnerMounts(orig []specs.Mount, out string) []specs.Mount {
	ro := []string{"rbind", "ro", "nosuid", "nodev"}
	mounts := append([]specs.Mount{}, orig...)
	return append(mounts,
		specs.Mount{Destination: "/usr", Type: "bind", Source: "/usr", Options: ro},
		specs.Mount{Destination: vmDir + "/guestvm", Type: "bind", Source: g.runner, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		specs.Mount{Destination: vmDir + "/kernel", Type: "bind", Source: g.kernel, Options: ro},
		specs.Mount{Destination: vmDir + "/initrd", Type: "bind", Source: g.initrd, Options: ro},
		specs.Mount{Destination: vmOutDir, Type: "bind", Source: out, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
	)
}

// ownPIDNamespace: the spec's namespaces with a new pid namespace for the
// runner (CRI's default joins the sandbox's), so that QEMU dies with the
// runner when the task is killed or stopped.
func ownPIDNamespace(spec *specs.Spec) []specs.LinuxNamespace {
	if spec.Linux == nil {
		return nil
	}
	out := []specs.LinuxNamespace{}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace {
			out = append(out, ns)
		}
	}
	return append(out, specs.LinuxNamespace{Type: specs.PIDNamespace})
}

// makeRunnerRootfs: mount points, and the host's merged-/usr symlinks (bin,
// lib, lib64, sbin) so that /usr's binaries find their interpreter.
func makeRunnerRootfs(rootfs string) error {
	for _, d := range []string{"usr", "tmp", "proc", "dev", "sys", "etc", "vm/out"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		target, err := os.Readlink("/" + l)
		if err != nil {
			target = "usr/" + l // not a symlink on this host: /usr has it
		}
		if err := os.Symlink(target, filepath.Join(rootfs, l)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}
