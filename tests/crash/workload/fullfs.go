package main

// fullfs.go: -mode fullfs (tests/faults/faults.sh mounts a small tmpfs as
// the daemon's root): with snapshots acknowledged before, fill the
// filesystem, then mutate until the daemon runs out of space; every answer
// must be OK or ResourceExhausted naming a path under the root. Then free
// the space: the daemon still serves, and after a restart the state is
// consistent (verify.go).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fill writes `path` until the filesystem is full (bounded).
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1<<14; i++ {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("%s: not full after 1 GiB", path)
}

func runFullFS(d *faultDriver) error {
	if err := d.start(); err != nil {
		return err
	}
	conn, err := d.verify(&Figures{Outcomes: map[string]int{}})
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	j, err := OpenJournal(journalPath(d.work, 0))
	if err != nil {
		return err
	}
	defer j.Close()
	c := &client{id: 0, sn: newSnapshotter(conn), j: j, m: Model{}, rng: d.rng, scratch: filepath.Join(d.work, "mnt")}
	for i := 0; i < 3; i++ {
		if !c.prepareWriteCommit(ctx, c.keys("committed")) {
			d.findings.add("setup mutations succeed", "before the fill: %v", c.unexpected)
			return fmt.Errorf("setup failed: %v", c.unexpected)
		}
	}
	filler := filepath.Join(d.root, "filler")
	if err := fill(filler); err != nil {
		return err
	}
	raw := snapshotsapi.NewSnapshotsClient(conn)
	parent := c.keys("committed")[0]
	pad := strings.Repeat("p", 3000)
	full := 0
	for i := 0; i < 500 && full < 3; i++ {
		op := Op{Kind: "prepare", Key: c.newKey("full"), Parent: parent,
			Labels: map[string]string{"crash/a": pad, "crash/b": pad, "crash/c": pad}}
		c.j.Next(&op)
		if err := c.j.Write(op, "inflight"); err != nil {
			return err
		}
		_, err := raw.Prepare(ctx, &snapshotsapi.PrepareSnapshotRequest{Snapshotter: gpSnapshotter, Key: op.Key, Parent: op.Parent, Labels: op.Labels})
		switch status.Code(err) {
		case codes.OK:
			if err := c.j.Write(op, "ack"); err != nil {
				return err
			}
		case codes.ResourceExhausted:
			full++
			fmt.Printf("full filesystem: %v\n", err)
			if !strings.Contains(status.Convert(err).Message(), d.root) {
				d.findings.add("ENOSPC is ResourceExhausted with the path", "%v", err)
			}
		default:
			d.findings.add("ENOSPC is ResourceExhausted with the path", "Prepare on a full filesystem: %v", err)
			full++
		}
	}
	if full == 0 {
		d.findings.add("ENOSPC is ResourceExhausted with the path", "500 Prepares on a full filesystem all succeeded")
	}
	if _, err := raw.List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: gpSnapshotter}); err != nil {
		d.findings.add("daemon serves after a fault", "List on a full filesystem: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		return err
	}
	if err := d.stop(); err != nil {
		d.findings.add("daemon serves after a fault", "SIGTERM after the fill: %v", err)
	}
	fmt.Printf("FIGURE ResourceExhausted answers on the full filesystem: %d\n", full)
	return d.restartAndVerify()
}
