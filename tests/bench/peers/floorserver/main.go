// Command floorserver is the benchmarks' measuring floor: a snapshotter
// that keeps its snapshots in a Go map and nothing on disk (no directory,
// no database, no fsync), served over the containerd.services.snapshots.v1
// gRPC API through containerd 2.x's own service adapter, as refserver2
// serves overlayfs. Whatever a workload costs against it is the client's
// (peerbench, or containerd in the CRI pull bench) and the RPC's through
// Go's gRPC stack, with no work behind it: the reference for what is left
// to gain over the peers. Not a strict bound: a server with a leaner RPC
// stack (ours is C++) can answer below it.
//
// A layer Prepare carrying the CRI labels is answered as a guest-pull
// (remote) snapshotter answers it: the target is recorded committed and
// the Prepare answers AlreadyExists, so containerd fetches nothing.
// Mounts are a read-only bind of an empty directory under --root. Lost on
// exit; not a snapshotter to run anything on.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/filters"
	"github.com/containerd/errdefs"

	"guestpull/benchpeers/serve"
)

const (
	targetLabel = "containerd.io/snapshot.ref"
	layerLabel  = "containerd.io/snapshot/cri.layer-digest"
)

func main() {
	serve.Main("floorserver", func(root string) (snapshots.Snapshotter, error) {
		empty := root + "/empty"
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return nil, err
		}
		return &memSnapshotter{empty: empty, snaps: map[string]*snapshots.Info{}, children: map[string]int{}}, nil
	})
}

// memSnapshotter: containerd's Snapshotter semantics (kinds, parents that
// must be committed, no removal of a parent, label updates, filters) over
// one map under one lock.
type memSnapshotter struct {
	empty    string
	mu       sync.RWMutex
	snaps    map[string]*snapshots.Info
	children map[string]int
}

func (m *memSnapshotter) get(key string) (*snapshots.Info, error) {
	info, ok := m.snaps[key]
	if !ok {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return info, nil
}

func copyInfo(info *snapshots.Info) snapshots.Info {
	c := *info
	c.Labels = make(map[string]string, len(info.Labels))
	for k, v := range info.Labels {
		c.Labels[k] = v
	}
	return c
}

func (m *memSnapshotter) Stat(_ context.Context, key string) (snapshots.Info, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	info, err := m.get(key)
	if err != nil {
		return snapshots.Info{}, err
	}
	return copyInfo(info), nil
}

func (m *memSnapshotter) Update(_ context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.get(info.Name)
	if err != nil {
		return snapshots.Info{}, err
	}
	labels := copyInfo(cur).Labels
	if len(fieldpaths) == 0 {
		labels = info.Labels
	}
	for _, path := range fieldpaths {
		if path == "labels" {
			labels = info.Labels
			continue
		}
		name, ok := strings.CutPrefix(path, "labels.")
		if !ok {
			return snapshots.Info{}, fmt.Errorf("cannot update %q field on snapshot %q: %w", path, info.Name, errdefs.ErrInvalidArgument)
		}
		if v, set := info.Labels[name]; set {
			labels[name] = v
		} else {
			delete(labels, name)
		}
	}
	cur.Labels = labels
	cur.Updated = time.Now().UTC()
	return copyInfo(cur), nil
}

func (m *memSnapshotter) Usage(_ context.Context, key string) (snapshots.Usage, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, err := m.get(key)
	return snapshots.Usage{}, err
}

func (m *memSnapshotter) mounts() []mount.Mount {
	return []mount.Mount{{Type: "bind", Source: m.empty, Options: []string{"ro", "rbind"}}}
}

func (m *memSnapshotter) Mounts(_ context.Context, key string) ([]mount.Mount, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	info, err := m.get(key)
	if err != nil {
		return nil, err
	}
	if info.Kind == snapshots.KindCommitted {
		return nil, fmt.Errorf("snapshot %q is committed: %w", key, errdefs.ErrFailedPrecondition)
	}
	return m.mounts(), nil
}

// add records a new snapshot under the write lock.
func (m *memSnapshotter) add(kind snapshots.Kind, key, parent string, labels map[string]string) error {
	if key == "" {
		return fmt.Errorf("empty key: %w", errdefs.ErrInvalidArgument)
	}
	if _, ok := m.snaps[key]; ok {
		return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent != "" {
		p, err := m.get(parent)
		if err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		if p.Kind != snapshots.KindCommitted {
			return fmt.Errorf("parent %q is not committed: %w", parent, errdefs.ErrInvalidArgument)
		}
		m.children[parent]++
	}
	now := time.Now().UTC()
	m.snaps[key] = &snapshots.Info{Kind: kind, Name: key, Parent: parent, Labels: labels, Created: now, Updated: now}
	return nil
}

func (m *memSnapshotter) create(kind snapshots.Kind, key, parent string, opts []snapshots.Opt) ([]mount.Mount, error) {
	var base snapshots.Info
	for _, opt := range opts {
		if err := opt(&base); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	target := base.Labels[targetLabel]
	if kind == snapshots.KindActive && target != "" && base.Labels[layerLabel] != "" {
		// A remote layer: recorded committed under its target name, as a
		// guest-pull snapshotter does; containerd then fetches nothing.
		if err := m.add(snapshots.KindCommitted, target, parent, base.Labels); err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, err
		}
		return nil, fmt.Errorf("target snapshot %q: %w", target, errdefs.ErrAlreadyExists)
	}
	if err := m.add(kind, key, parent, base.Labels); err != nil {
		return nil, err
	}
	return m.mounts(), nil
}

func (m *memSnapshotter) Prepare(_ context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return m.create(snapshots.KindActive, key, parent, opts)
}

func (m *memSnapshotter) View(_ context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return m.create(snapshots.KindView, key, parent, opts)
}

func (m *memSnapshotter) Commit(_ context.Context, name, key string, opts ...snapshots.Opt) error {
	var base snapshots.Info
	for _, opt := range opts {
		if err := opt(&base); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	active, err := m.get(key)
	if err != nil {
		return err
	}
	if active.Kind != snapshots.KindActive {
		return fmt.Errorf("snapshot %q is not active: %w", key, errdefs.ErrFailedPrecondition)
	}
	if err := m.add(snapshots.KindCommitted, name, active.Parent, base.Labels); err != nil {
		return err
	}
	m.drop(key)
	return nil
}

// drop deletes key (known to exist) under the write lock.
func (m *memSnapshotter) drop(key string) {
	if parent := m.snaps[key].Parent; parent != "" {
		if m.children[parent]--; m.children[parent] == 0 {
			delete(m.children, parent)
		}
	}
	delete(m.snaps, key)
}

func (m *memSnapshotter) Remove(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(key); err != nil {
		return err
	}
	if m.children[key] > 0 {
		return fmt.Errorf("snapshot %q has children: %w", key, errdefs.ErrFailedPrecondition)
	}
	m.drop(key)
	return nil
}

func (m *memSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, fs ...string) error {
	filter, err := filters.ParseAll(fs...)
	if err != nil {
		return err
	}
	m.mu.RLock()
	var infos []snapshots.Info
	for _, info := range m.snaps {
		if filter.Match(adapt(info)) {
			infos = append(infos, copyInfo(info))
		}
	}
	m.mu.RUnlock()
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSnapshotter) Close() error { return nil }

// adapt: the fields containerd's filters name on a snapshot.
func adapt(info *snapshots.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) == 0 {
			return "", false
		}
		switch fieldpath[0] {
		case "kind":
			return strings.ToLower(info.Kind.String()), true
		case "name":
			return info.Name, true
		case "parent":
			return info.Parent, true
		case "labels":
			v, ok := info.Labels[strings.Join(fieldpath[1:], ".")]
			return v, ok
		}
		return "", false
	})
}
