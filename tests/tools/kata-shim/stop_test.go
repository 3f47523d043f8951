package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
)

// fakeTasks stands in for runc's task service: Start and Delete succeed.
type fakeTasks struct {
	taskAPI.TaskService
	deleted []string
}

func (f *fakeTasks) Start(context.Context, *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	return &taskAPI.StartResponse{}, nil
}

func (f *fakeTasks) Delete(_ context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	f.deleted = append(f.deleted, r.ID)
	return &taskAPI.DeleteResponse{}, nil
}

func newTestService(t *testing.T) (*kataService, *fakeTasks, string) {
	logPath := filepath.Join(t.TempDir(), "shim.log")
	inner := &fakeTasks{}
	return newKataService(inner, &decisionLog{path: logPath}, nil), inner, logPath
}

// A started nydus-typed container stops as kata's wait path does: the
// cleanup error is dropped and Delete succeeds.
func TestStopAfterStartDropsNydusCleanupError(t *testing.T) {
	s, inner, logPath := newTestService(t)
	s.guestPulled("c1", "fuse.nydus-overlayfs-guest-pull")
	if _, err := s.Start(context.Background(), &taskAPI.StartRequest{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(context.Background(), &taskAPI.DeleteRequest{ID: "c1"}); err != nil {
		t.Fatalf("Delete after Start: %v", err)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "umount rafs failed: unimplemented; dropped by kata") || len(inner.deleted) != 1 {
		t.Fatalf("log %q, deleted %v", log, inner.deleted)
	}
}

// A task deleted before it started gets kata's force=false answer.
func TestDeleteBeforeStartReturnsNydusCleanupError(t *testing.T) {
	s, _, _ := newTestService(t)
	s.guestPulled("c2", "fuse.nydus-overlayfs-guest-pull")
	_, err := s.Delete(context.Background(), &taskAPI.DeleteRequest{ID: "c2"})
	if err == nil || !strings.Contains(err.Error(), "umount rafs failed: unimplemented") {
		t.Fatalf("Delete before Start: %v", err)
	}
}

// The default (patched) type is not nydus's: no cleanup, plain Delete.
func TestDefaultTypeHasNoNydusCleanup(t *testing.T) {
	s, _, logPath := newTestService(t)
	s.guestPulled("c3", "fuse.guest-pull-overlayfs")
	if _, err := s.Delete(context.Background(), &taskAPI.DeleteRequest{ID: "c3"}); err != nil {
		t.Fatal(err)
	}
	if log, _ := os.ReadFile(logPath); strings.Contains(string(log), "nydusContainerCleanup") {
		t.Fatalf("log %q", log)
	}
}
