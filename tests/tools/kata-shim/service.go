package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// kataService is containerd 1.7's runc task service with a kata-shaped
// Create: a guest-pull rootfs is never mounted on the host; the Guest
// assembles it and runc runs the process there.
type kataService struct {
	taskAPI.TaskService
	log   *decisionLog
	guest Guest
	stops nydusStops
	// testHooks: GUEST_PULL_SHIM_TEST_HOOKS=1 (tests only) honours the
	// annotation io.katacontainers.guest-pull.test.tamper-volume
	// (test_hooks.go).
	testHooks bool

	mu        sync.Mutex
	vmRunners map[string]bool // containers whose process is the VM runner
}

func newKataService(inner taskAPI.TaskService, log *decisionLog, guest Guest) *kataService {
	return &kataService{TaskService: inner, log: log, guest: guest, vmRunners: map[string]bool{},
		testHooks: os.Getenv("GUEST_PULL_SHIM_TEST_HOOKS") == "1"}
}

func (s *kataService) markVM(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vmRunners[id] = true
}

// Exec would run beside the VM runner on the host, not in the guest: refused.
func (s *kataService) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	vm := s.vmRunners[r.ID]
	s.mu.Unlock()
	if vm {
		return nil, s.refuse(r.ID, "exec is not supported in VM mode (the process runs in the guest VM)")
	}
	return s.TaskService.Exec(ctx, r)
}

// RegisterTTRPC serves the wrapper, not the inner service.
func (s *kataService) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTaskService(server, s)
	return nil
}

// Create decides, as kata's checkAndMount does, whether the rootfs is
// mounted on the host (anything but a guest-pull type) or handed to the
// guest (a single mount of a guest-pull type). Patched kata's checkAndMount
// first refuses a guest-pull rootfs it cannot hand to its agent: the
// patched build runs the patch's CheckGuestPullRootFS on every such mount
// containerd sends, before the decision, and refuses with kata's error.
func (s *kataService) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	spec, err := readSpec(r.Bundle)
	if err != nil {
		return nil, s.refuse(r.ID, "reading the bundle: %v", err)
	}
	if s.testHooks {
		mounts, fields, err := tamperVolumeOptions(r.Rootfs, spec.Annotations)
		if err != nil {
			return nil, s.refuse(r.ID, "%v", err)
		}
		if fields != nil {
			s.log.Printf("container %s: TEST HOOK %s: volume fields %s replaced", r.ID, annotTamperVolume,
				strings.Join(fields, ", "))
			r.Rootfs = mounts
		}
	}
	if checked, err := guestPullRootfsCheck(r.Rootfs); checked != "" {
		if err != nil {
			s.log.Printf("container %s: kata %s: %s = refused: %v", r.ID, kataMode, checked, err)
			return nil, s.refuse(r.ID, "%v", err)
		}
		s.log.Printf("container %s: kata %s: %s = accepted", r.ID, kataMode, checked)
	}
	if len(r.Rootfs) != 1 {
		s.log.Printf("container %s: host path: %s", r.ID, describeMounts(r.Rootfs))
		return s.TaskService.Create(ctx, r)
	}
	m := r.Rootfs[0]
	guestPull, decidedBy := rootfsDecision(m.Type)
	s.log.Printf("container %s: kata %s: %s(%q) = %t", r.ID, kataMode, decidedBy, m.Type, guestPull)
	if !guestPull {
		s.log.Printf("container %s: host path: %s", r.ID, describeMounts(r.Rootfs))
		return s.TaskService.Create(ctx, r)
	}
	s.log.Printf("container %s: rootfs mount type %s: no host mount (guest pull)", r.ID, m.Type)
	storage, err := buildGuestPullStorage(r.ID, m, spec.Annotations)
	if err != nil {
		return nil, s.refuse(r.ID, "%v", err)
	}
	s.log.Printf("container %s: storage driver=%s source=%s fstype=%s mount_point=%s", r.ID,
		storage.Driver, storage.Source, storage.Fstype, storage.MountPoint)
	// The guest's rootfs is a directory of the bundle other than "rootfs"
	// (containerd removes that one with os.Remove, so it must stay empty);
	// the bundle's config.json is pointed at it, as kata points the
	// container at the guest's mount point.
	proc := Process{ContainerID: r.ID, Bundle: r.Bundle, Rootfs: filepath.Join(r.Bundle, guestRootfsDir), Spec: spec}
	launch, err := s.guest.PullRootfs(ctx, storage, proc)
	if err != nil {
		os.RemoveAll(proc.Rootfs)
		return nil, s.refuse(r.ID, "%v", err)
	}
	if err := rewriteSpec(r.Bundle, launch); err != nil {
		return nil, s.refuse(r.ID, "pointing config.json at the guest rootfs: %v", err)
	}
	if launch.Process != nil {
		s.markVM(r.ID)
		s.log.Printf("container %s: runner bundle in %s; runc starts the VM runner", r.ID, launch.Rootfs)
	} else {
		s.log.Printf("container %s: rootfs assembled in %s; runc creates the container", r.ID, launch.Rootfs)
	}
	// The rootfs is a plain directory now: runc gets no mounts.
	r.Rootfs = nil
	resp, err := s.TaskService.Create(ctx, r)
	if err == nil {
		s.guestPulled(r.ID, m.Type)
	}
	return resp, err
}

func (s *kataService) refuse(id, format string, args ...interface{}) error {
	err := fmt.Errorf("kata-shim: container %s: "+format, append([]interface{}{id}, args...)...)
	s.log.Printf("REFUSED: %v", err)
	return err
}

func describeMounts(ms []*types.Mount) string {
	if len(ms) == 0 {
		return "no rootfs mounts"
	}
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s (%d options)", m.Type, len(m.Options)))
	}
	return "mounts " + strings.Join(parts, ", ")
}

const guestRootfsDir = "guest-rootfs"

// rewriteSpec rewrites root.path of the bundle's config.json, and its
// process, mounts and linux.namespaces when the launch sets them, keeping
// every other field as containerd wrote it.
func rewriteSpec(bundle string, launch Launch) error {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if err := setSpecField(doc, "root", "path", launch.Rootfs); err != nil {
		return err
	}
	if launch.Process != nil {
		if doc["process"], err = json.Marshal(launch.Process); err != nil {
			return err
		}
		if doc["mounts"], err = json.Marshal(launch.Mounts); err != nil {
			return err
		}
		if launch.Namespaces != nil {
			if err := setSpecField(doc, "linux", "namespaces", launch.Namespaces); err != nil {
				return err
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// setSpecField sets doc[object][field], keeping the object's other fields.
func setSpecField(doc map[string]json.RawMessage, object, field string, value interface{}) error {
	fields := map[string]json.RawMessage{}
	if raw, ok := doc[object]; ok {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return fmt.Errorf("config.json %s: %v", object, err)
		}
	}
	var err error
	if fields[field], err = json.Marshal(value); err != nil {
		return err
	}
	doc[object], err = json.Marshal(fields)
	return err
}

func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return &spec, nil
}
