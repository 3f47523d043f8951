package conformance

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"

	"guestpull/conformance/unixdial"
)

const (
	// snapshotterName is sent in every request's snapshotter field.
	snapshotterName = "guest-pull"
	// Bounds for emptying the snapshotter between cases.
	cleanupTimeout = 60 * time.Second
	maxSnapshots   = 4096
)

// TestSnapshotterConformance runs every case of containerd's SnapshotterSuite
// against the daemon at $GUEST_PULL_SOCKET. The suite expects a fresh
// snapshotter per case; one daemon serves them all, so each case's cleanup
// removes every snapshot it left behind. Run with -test.parallel 1.
func TestSnapshotterConformance(t *testing.T) {
	socket := os.Getenv("GUEST_PULL_SOCKET")
	if socket == "" {
		t.Fatal("GUEST_PULL_SOCKET is not set: name the unix socket of the snapshotter under test")
	}
	testsuite.SnapshotterSuite(t, "GuestPull", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		conn, err := unixdial.Dial(ctx, socket)
		if err != nil {
			return nil, nil, err
		}
		sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), snapshotterName)
		// Every case starts from an empty snapshotter, whatever the
		// previous case or a previous run left.
		if err := removeAll(ctx, sn); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("emptying snapshotter before the case: %w", err)
		}
		cleanup := func() error {
			defer conn.Close()
			return removeAll(ctx, sn)
		}
		return sn, cleanup, nil
	})
}

// removeAll removes every snapshot visible in ctx's namespace, leaves first,
// then asks the snapshotter to clean up. It is bounded in rounds and time,
// and fails if anything is left.
func removeAll(ctx context.Context, sn snapshots.Snapshotter) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	for round := 0; ; round++ {
		infos, err := list(ctx, sn)
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			break
		}
		if round > maxSnapshots {
			return fmt.Errorf("%d snapshots still present after %d removal rounds", len(infos), round)
		}
		leaves := leavesOf(infos)
		if len(leaves) == 0 {
			return fmt.Errorf("no removable leaf among %d snapshots (parent cycle?)", len(infos))
		}
		var failures []string
		for _, key := range leaves {
			if err := sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
				failures = append(failures, fmt.Sprintf("%s: %v", key, err))
			}
		}
		if len(failures) == len(leaves) {
			return fmt.Errorf("removing leaf snapshots failed: %s", strings.Join(failures, "; "))
		}
	}
	if cleaner, ok := sn.(snapshots.Cleaner); ok {
		if err := cleaner.Cleanup(ctx); err != nil && !errdefs.IsNotImplemented(err) {
			return fmt.Errorf("Cleanup: %w", err)
		}
	}
	return nil
}

func list(ctx context.Context, sn snapshots.Snapshotter) ([]snapshots.Info, error) {
	var infos []snapshots.Info
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if len(infos) >= maxSnapshots {
			return fmt.Errorf("more than %d snapshots", maxSnapshots)
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk: %w", err)
	}
	return infos, nil
}

// leavesOf returns the names of snapshots that no other snapshot names as
// its parent, sorted for a deterministic order.
func leavesOf(infos []snapshots.Info) []string {
	parents := make(map[string]bool, len(infos))
	for _, info := range infos {
		if info.Parent != "" {
			parents[info.Parent] = true
		}
	}
	var leaves []string
	for _, info := range infos {
		if !parents[info.Name] {
			leaves = append(leaves, info.Name)
		}
	}
	sort.Strings(leaves)
	return leaves
}
