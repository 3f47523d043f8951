package main

// client.go: one workload client. It owns the keys named "c<N>-…" and picks
// a mutation at random from its model: Prepare (then writes files through
// the real overlay mount), Commit, View, Remove of a leaf, Update of labels.
// It stops at the first RPC that fails for transport reasons (the daemon was
// killed): that mutation stays "inflight" in the journal.

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"golang.org/x/sys/unix"
)

const maxLive = 8 // keys a client keeps before it prefers Remove

type client struct {
	id      int
	sn      snapshots.Snapshotter
	j       *Journal
	m       Model
	rng     *rand.Rand
	scratch string // mount points
	acked   int
	// guestPull: some steps are CRI-labelled Prepares of guest-pull layers.
	guestPull bool
	// direct: files go straight into the writable directory the mounts name
	// (overlay upperdir, bind source) instead of through a mount: unmounting
	// an overlay syncs its upper filesystem, which would hide a daemon that
	// does not flush a layer itself at Commit (the power-cut suite).
	direct bool
	// unexpected collects RPC errors that were not caused by the kill.
	unexpected []string
}

// transportGone reports whether err means the daemon went away (the proxy
// client turns gRPC codes into errdefs errors).
func transportGone(err error) bool {
	return errdefs.IsUnavailable(err) || errdefs.IsCanceled(err) || errdefs.IsDeadlineExceeded(err)
}

// do journals op in flight, runs rpc, and journals the outcome. It returns
// false when the client must stop.
func (c *client) do(op Op, rpc func() error) bool {
	c.j.Next(&op)
	if err := c.j.Write(op, "inflight"); err != nil {
		c.unexpected = append(c.unexpected, "journal: "+err.Error())
		return false
	}
	err := rpc()
	if err == nil {
		if werr := c.j.Write(op, "ack"); werr != nil {
			c.unexpected = append(c.unexpected, "journal: "+werr.Error())
			return false
		}
		c.acked++
		if aerr := c.m.Apply(op); aerr != nil {
			c.unexpected = append(c.unexpected, aerr.Error())
			return false
		}
		return true
	}
	if transportGone(err) {
		return false // stays in flight
	}
	c.unexpected = append(c.unexpected, fmt.Sprintf("%s %s: %v", op.Kind, op.Key, err))
	_ = c.j.Write(op, "fail")
	return false
}

func (c *client) keys(kind string) []string {
	var out []string
	for k, s := range c.m {
		if kind == "" || s.Kind == kind {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// remotes are the committed guest-pull layers.
func (c *client) remotes() []string {
	var out []string
	for _, k := range c.keys("committed") {
		if c.m[k].Remote {
			out = append(out, k)
		}
	}
	return out
}

// localCommitted are the committed keys with host content (not guest-pull
// layers, whose mounts are for the guest).
func (c *client) localCommitted() []string {
	var out []string
	for _, k := range c.keys("committed") {
		if !c.m[k].Remote {
			out = append(out, k)
		}
	}
	return out
}

func (c *client) pick(keys []string) string { return keys[c.rng.Intn(len(keys))] }

func (c *client) newKey(what string) string {
	return fmt.Sprintf("c%d-%s-%d-%d", c.id, what, time.Now().UnixNano()%1e9, c.rng.Intn(1e6))
}

// run mutates until ctx ends or the daemon goes away.
func (c *client) run(ctx context.Context) {
	for i := 0; i < 100000 && ctx.Err() == nil; i++ {
		if !c.step(ctx) {
			return
		}
	}
}

func (c *client) step(ctx context.Context) bool {
	committed := c.localCommitted()
	var leaves []string
	for _, k := range c.keys("") {
		if len(c.m.Children(k)) == 0 {
			leaves = append(leaves, k)
		}
	}
	r := c.rng.Intn(100)
	switch {
	case len(c.m) >= maxLive && len(leaves) > 0, r < 15 && len(leaves) > 0:
		k := c.pick(leaves)
		return c.do(Op{Kind: "remove", Key: k}, func() error { return c.sn.Remove(ctx, k) })
	case r < 30 && len(committed) > 0:
		k := c.pick(committed)
		labels := map[string]string{"crash/n": fmt.Sprint(c.rng.Intn(1e6))}
		if c.rng.Intn(2) == 0 {
			labels["crash/extra"] = "x"
		}
		return c.do(Op{Kind: "update", Key: k, Labels: labels}, func() error {
			_, err := c.sn.Update(ctx, snapshots.Info{Name: k, Labels: labels}, "labels")
			return err
		})
	case r < 40 && len(committed) > 0:
		parent := c.pick(committed)
		k := c.newKey("view")
		return c.do(Op{Kind: "view", Key: k, Parent: parent}, func() error {
			_, err := c.sn.View(ctx, k, parent)
			return err
		})
	case c.guestPull && r >= 85:
		return c.guestPullLayer(ctx)
	case c.guestPull && r >= 80 && len(c.remotes()) > 0:
		// A view on guest-pull layers, as a container's rootfs: the daemon
		// makes the layers' directories then (they have none before).
		parent := c.pick(c.remotes())
		k := c.newKey("gpview")
		return c.do(Op{Kind: "view", Key: k, Parent: parent}, func() error {
			_, err := c.sn.View(ctx, k, parent)
			return err
		})
	default:
		return c.prepareWriteCommit(ctx, committed)
	}
}

// guestPullLayer makes a guest-pull layer as containerd's CRI plugin asks
// for one (its labels on the extraction key); the daemon answers
// AlreadyExists with the layer committed under the target name. Its parent
// is another guest-pull layer or none.
func (c *client) guestPullLayer(ctx context.Context) bool {
	remotes := c.remotes()
	parent := ""
	if len(remotes) > 0 && c.rng.Intn(2) == 0 {
		parent = c.pick(remotes)
	}
	target := c.newKey("remote")
	op := Op{Kind: "gpprepare", Key: "extract-" + target, Name: target, Parent: parent}
	return c.do(op, func() error {
		_, err := c.sn.Prepare(ctx, op.Key, parent, snapshots.WithLabels(gpLabels(target)))
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("guest-pull Prepare answered OK instead of AlreadyExists")
		}
		return err
	})
}

// prepareWriteCommit prepares an active snapshot (on a committed parent or
// none), writes 1–3 files through its mounts, and commits it.
func (c *client) prepareWriteCommit(ctx context.Context, committed []string) bool {
	parent := ""
	if len(committed) > 0 && c.rng.Intn(3) != 0 {
		parent = c.pick(committed)
	}
	k := c.newKey("active")
	var mounts []mount.Mount
	if !c.do(Op{Kind: "prepare", Key: k, Parent: parent}, func() error {
		var err error
		mounts, err = c.sn.Prepare(ctx, k, parent)
		return err
	}) {
		return false
	}
	files := map[string]string{}
	for i := 0; i < 1+c.rng.Intn(3); i++ {
		files[fmt.Sprintf("%s/f%d", k, i)] = fmt.Sprintf("%s %d %d", k, i, c.rng.Int63())
	}
	write := writeThrough
	if c.direct {
		write = writeDirect
	}
	if err := write(mounts, filepath.Join(c.scratch, k), files); err != nil {
		c.unexpected = append(c.unexpected, "write through mounts of "+k+": "+err.Error())
		return false
	}
	name := c.newKey("layer")
	return c.do(Op{Kind: "commit", Key: k, Name: name, Files: files}, func() error {
		return c.sn.Commit(ctx, name, k)
	})
}

// writeThrough mounts `mounts` on a fresh dir, writes files, unmounts.
func writeThrough(mounts []mount.Mount, target string, files map[string]string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	defer os.Remove(target)
	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mount %+v: %v", mounts, err)
	}
	werr := writeFiles(target, files)
	if err := unmount(target); err != nil && werr == nil {
		werr = err
	}
	return werr
}

// writeDirect writes files into the one writable directory of mounts, as
// writes through them would leave them, without a mount.
func writeDirect(mounts []mount.Mount, _ string, files map[string]string) error {
	if len(mounts) != 1 {
		return fmt.Errorf("mounts %+v: want one", mounts)
	}
	dir := ""
	switch m := mounts[0]; m.Type {
	case "bind":
		dir = m.Source
	case "overlay":
		for _, o := range m.Options {
			if strings.HasPrefix(o, "upperdir=") {
				dir = strings.TrimPrefix(o, "upperdir=")
			}
		}
	}
	if dir == "" {
		return fmt.Errorf("mounts %+v: no writable directory", mounts)
	}
	return writeFiles(dir, files)
}

// writeFiles writes files (relative paths) under dir.
func writeFiles(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func unmount(target string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(target, 0); err == nil || err == unix.EINVAL {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err = unix.Unmount(target, unix.MNT_DETACH); err == nil {
		return nil
	}
	return fmt.Errorf("umount %s: %v", target, err)
}
