package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"

	"guestpull/conformance/unixdial"
)

// TestProxyContract checks what containerd's metadata layer relies on from
// a proxy snapshotter beyond containerd's own suite: the gRPC error codes it
// maps back to errdefs, the Walk filters of the remote-snapshot lookup,
// labels, Usage and Mounts. Each case starts and ends with an empty
// snapshotter.
func TestProxyContract(t *testing.T) {
	socket := os.Getenv("GUEST_PULL_SOCKET")
	if socket == "" {
		t.Fatal("GUEST_PULL_SOCKET is not set: name the unix socket of the snapshotter under test")
	}
	cases := []struct {
		name string
		fn   func(ctx context.Context, t *testing.T, sn snapshots.Snapshotter)
	}{
		{"ErrorCodes", checkErrorCodes},
		{"RemoteSnapshotLookupFilter", checkRemoteLookupFilter},
		{"Labels", checkLabels},
		{"Usage", checkUsage},
		{"MountsMatchPrepare", checkMountsMatchPrepare},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			ctx := namespaces.WithNamespace(context.Background(), "contract")
			conn, err := unixdial.Dial(ctx, socket)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), snapshotterName)
			if err := removeAll(ctx, sn); err != nil {
				t.Fatalf("emptying snapshotter before the case: %v", err)
			}
			defer func() {
				if err := removeAll(ctx, sn); err != nil {
					t.Errorf("emptying snapshotter after the case: %v", err)
				}
			}()
			c.fn(ctx, t, sn)
		})
	}
}

// committed creates a committed snapshot name on parent.
func committed(ctx context.Context, t *testing.T, sn snapshots.Snapshotter, name, parent string, opts ...snapshots.Opt) {
	t.Helper()
	key := name + "-active"
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		t.Fatalf("Prepare(%q, %q): %v", key, parent, err)
	}
	if err := sn.Commit(ctx, name, key, opts...); err != nil {
		t.Fatalf("Commit(%q, %q): %v", name, key, err)
	}
}

func checkErrorCodes(ctx context.Context, t *testing.T, sn snapshots.Snapshotter) {
	committed(ctx, t, sn, "base", "")
	if _, err := sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatalf("Prepare active: %v", err)
	}
	type check struct {
		what string
		err  error
		want func(error) bool
		name string
	}
	_, prepExisting := sn.Prepare(ctx, "active", "base")
	_, prepCommittedName := sn.Prepare(ctx, "base", "")
	_, prepMissingParent := sn.Prepare(ctx, "orphan", "no-such-parent")
	_, prepActiveParent := sn.Prepare(ctx, "child-of-active", "active")
	_, viewActiveParent := sn.View(ctx, "view-of-active", "active")
	_, statMissing := sn.Stat(ctx, "no-such-key")
	_, mountsMissing := sn.Mounts(ctx, "no-such-key")
	_, usageMissing := sn.Usage(ctx, "no-such-key")
	_, updateMissing := sn.Update(ctx, snapshots.Info{Name: "no-such-key", Labels: map[string]string{"a": "b"}}, "labels.a")
	checks := []check{
		{"Prepare of an existing key", prepExisting, errdefs.IsAlreadyExists, "AlreadyExists"},
		{"Prepare of a committed snapshot's name", prepCommittedName, errdefs.IsAlreadyExists, "AlreadyExists"},
		{"Prepare with a missing parent", prepMissingParent, errdefs.IsNotFound, "NotFound"},
		{"Prepare on an active parent", prepActiveParent, errdefs.IsInvalidArgument, "InvalidArgument"},
		{"View on an active parent", viewActiveParent, errdefs.IsInvalidArgument, "InvalidArgument"},
		{"Stat of a missing key", statMissing, errdefs.IsNotFound, "NotFound"},
		{"Mounts of a missing key", mountsMissing, errdefs.IsNotFound, "NotFound"},
		{"Usage of a missing key", usageMissing, errdefs.IsNotFound, "NotFound"},
		{"Update of a missing key", updateMissing, errdefs.IsNotFound, "NotFound"},
		{"Commit of a missing key", sn.Commit(ctx, "x", "no-such-key"), errdefs.IsNotFound, "NotFound"},
		{"Commit of a committed snapshot", sn.Commit(ctx, "y", "base"), errdefs.IsFailedPrecondition, "FailedPrecondition"},
		{"Remove of a missing key", sn.Remove(ctx, "no-such-key"), errdefs.IsNotFound, "NotFound"},
		{"Remove of a snapshot with a child", sn.Remove(ctx, "base"), errdefs.IsFailedPrecondition, "FailedPrecondition"},
	}
	// Commit onto an existing name: the active snapshot must survive it.
	committed(ctx, t, sn, "taken", "")
	if _, err := sn.Prepare(ctx, "to-commit", ""); err != nil {
		t.Fatalf("Prepare to-commit: %v", err)
	}
	checks = append(checks, check{"Commit to an existing name", sn.Commit(ctx, "taken", "to-commit"), errdefs.IsAlreadyExists, "AlreadyExists"})
	for _, c := range checks {
		if c.err == nil {
			t.Errorf("%s: succeeded, want %s", c.what, c.name)
		} else if !c.want(c.err) {
			t.Errorf("%s: got %v, want %s", c.what, c.err, c.name)
		}
	}
	if info, err := sn.Stat(ctx, "to-commit"); err != nil || info.Kind != snapshots.KindActive {
		t.Errorf("after a failed Commit the active snapshot must remain: Stat = %+v, %v", info, err)
	}
	if _, err := sn.Stat(ctx, "base"); err != nil {
		t.Errorf("after a refused Remove the snapshot must remain: %v", err)
	}
}

// checkRemoteLookupFilter uses the filter containerd 1.6 sends after a
// Prepare answered AlreadyExists (remote snapshots).
func checkRemoteLookupFilter(ctx context.Context, t *testing.T, sn snapshots.Snapshotter) {
	const refLabel = "containerd.io/snapshot.ref"
	committed(ctx, t, sn, "l1", "", snapshots.WithLabels(map[string]string{refLabel: "chain-1"}))
	committed(ctx, t, sn, "l2", "l1", snapshots.WithLabels(map[string]string{refLabel: "chain-2"}))
	committed(ctx, t, sn, "l2-other", "", snapshots.WithLabels(map[string]string{refLabel: "chain-2"}))

	walk := func(filters ...string) []string {
		var names []string
		err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			names = append(names, info.Name)
			return nil
		}, filters...)
		if err != nil {
			t.Errorf("Walk(%q): %v", filters, err)
		}
		sort.Strings(names)
		return names
	}
	expect := func(got, want []string, filters ...string) {
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Walk(%q) = %v, want %v", filters, got, want)
		}
	}
	f := fmt.Sprintf(`labels."%s"==chain-2,parent==l1`, refLabel)
	expect(walk(f), []string{"l2"}, f)
	f = fmt.Sprintf(`labels."%s"==chain-2`, refLabel)
	expect(walk(f), []string{"l2", "l2-other"}, f)
	f = fmt.Sprintf(`labels."%s"==chain-3`, refLabel)
	expect(walk(f), nil, f)
	expect(walk("parent==l1"), []string{"l2"}, "parent==l1")
	expect(walk("name==l1"), []string{"l1"}, "name==l1")
	expect(walk("kind==committed"), []string{"l1", "l2", "l2-other"}, "kind==committed")
	// Several filters are OR-ed.
	expect(walk("name==l1", "name==l2"), []string{"l1", "l2"}, "name==l1", "name==l2")
}

func checkLabels(ctx context.Context, t *testing.T, sn snapshots.Snapshotter) {
	prepLabels := map[string]string{"containerd.io/gc.root": "x", "test/prepare": "1"}
	if _, err := sn.Prepare(ctx, "labelled", "", snapshots.WithLabels(prepLabels)); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	info, err := sn.Stat(ctx, "labelled")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if !reflect.DeepEqual(info.Labels, prepLabels) {
		t.Errorf("active labels = %v, want %v", info.Labels, prepLabels)
	}
	commitLabels := map[string]string{"test/commit": "2"}
	if err := sn.Commit(ctx, "labelled-c", "labelled", snapshots.WithLabels(commitLabels)); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	info, err = sn.Stat(ctx, "labelled-c")
	if err != nil {
		t.Fatalf("Stat committed: %v", err)
	}
	if info.Labels["test/commit"] != "2" {
		t.Errorf("committed labels = %v, want test/commit=2", info.Labels)
	}
	// Update of one label path leaves the others alone.
	info.Labels = map[string]string{"test/update": "3"}
	updated, err := sn.Update(ctx, info, "labels.test/update")
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.Labels["test/update"] != "3" || updated.Labels["test/commit"] != "2" {
		t.Errorf("labels after Update(labels.test/update) = %v", updated.Labels)
	}
	// Update without field paths replaces all labels.
	updated.Labels = map[string]string{"only": "this"}
	replaced, err := sn.Update(ctx, updated)
	if err != nil {
		t.Fatalf("Update (all): %v", err)
	}
	if !reflect.DeepEqual(replaced.Labels, map[string]string{"only": "this"}) {
		t.Errorf("labels after full Update = %v, want only=this", replaced.Labels)
	}
	if got, err := sn.Stat(ctx, "labelled-c"); err != nil || !reflect.DeepEqual(got.Labels, replaced.Labels) {
		t.Errorf("Stat after Update = %v, %v; want labels %v", got.Labels, err, replaced.Labels)
	}
}

// withMounted mounts the active snapshot key on a temp dir while fn runs.
func withMounted(ctx context.Context, t *testing.T, sn snapshots.Snapshotter, key string, fn func(dir string)) {
	t.Helper()
	mounts, err := sn.Mounts(ctx, key)
	if err != nil {
		t.Fatalf("Mounts(%q): %v", key, err)
	}
	dir := t.TempDir()
	if err := mount.All(mounts, dir); err != nil {
		t.Fatalf("mounting %q (%+v): %v", key, mounts, err)
	}
	defer func() {
		if err := mount.UnmountAll(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}()
	fn(dir)
}

func checkUsage(ctx context.Context, t *testing.T, sn snapshots.Snapshotter) {
	const size = 64 * 1024
	if _, err := sn.Prepare(ctx, "usage", ""); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	withMounted(ctx, t, sn, "usage", func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, size), 0o644); err != nil {
			t.Fatalf("write: %v", err)
		}
	})
	active, err := sn.Usage(ctx, "usage")
	if err != nil {
		t.Fatalf("Usage of active: %v", err)
	}
	if active.Size < size || active.Inodes < 1 {
		t.Errorf("Usage of active = %+v, want size >= %d and inodes >= 1", active, size)
	}
	if err := sn.Commit(ctx, "usage-c", "usage"); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	done, err := sn.Usage(ctx, "usage-c")
	if err != nil {
		t.Fatalf("Usage of committed: %v", err)
	}
	if done.Size < size || done.Inodes < 1 {
		t.Errorf("Usage of committed = %+v, want size >= %d and inodes >= 1", done, size)
	}
}

func checkMountsMatchPrepare(ctx context.Context, t *testing.T, sn snapshots.Snapshotter) {
	committed(ctx, t, sn, "m-base", "")
	prepared, err := sn.Prepare(ctx, "m-active", "m-base")
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	again, err := sn.Mounts(ctx, "m-active")
	if err != nil {
		t.Fatalf("Mounts: %v", err)
	}
	if !reflect.DeepEqual(prepared, again) {
		t.Errorf("Mounts = %+v, Prepare returned %+v", again, prepared)
	}
	viewed, err := sn.View(ctx, "m-view", "m-base")
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	again, err = sn.Mounts(ctx, "m-view")
	if err != nil {
		t.Fatalf("Mounts of view: %v", err)
	}
	if !reflect.DeepEqual(viewed, again) {
		t.Errorf("Mounts of view = %+v, View returned %+v", again, viewed)
	}
	if _, err := sn.Mounts(ctx, "m-base"); !errdefs.IsFailedPrecondition(err) && !errdefs.IsInvalidArgument(err) {
		t.Errorf("Mounts of a committed snapshot: got %v, want FailedPrecondition", err)
	}
}
