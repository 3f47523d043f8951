package main

// fault_start.go: the fault suite's start-up cases. The daemon starts with
// the shim armed from its first call, so the Nth call of a kind made while
// it opens its store fails: the survey and recovery, the store-id and
// store-open markers (temp file, rename, the fsync of the root), the WAL's
// header commit, the sweep that follows. Each kind is tried on the store
// the RPC cases left (with every acknowledged mutation in the clients'
// journals) and on a root being created. The start must then serve, or
// exit by itself with a non-zero status (not a signal) and an error in its
// log; and the next start without the fault must serve, with everything
// acknowledged before (verify.go) or, on the new root, an empty store. A
// fault at start must never lose a snapshot nor leave a store that refuses
// every later start.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
)

var startChecks = []string{
	"a start with a fault serves or exits with an error",
	"the next start after a start-up fault serves",
}

// startCalls bounds the calls of one kind tried at start: a start makes
// fewer of each (the loop stops at the first n the start never reaches).
const startCalls = 80

// startCase runs the start-up case (kind, n) on the current root (fresh:
// removed first, then created by the start); it returns whether the fault
// was hit.
func (d *faultDriver) startCase(kind string, n int, fresh bool) (bool, error) {
	d.cases++
	name := fmt.Sprintf("start/%s#%d", kind, n)
	if fresh {
		name = fmt.Sprintf("create/%s#%d", kind, n)
		if err := os.RemoveAll(d.root); err != nil {
			return false, err
		}
	}
	before := d.injections()
	if err := os.WriteFile(d.arm, nil, 0o644); err != nil {
		return false, err
	}
	if err := d.startWith(kind, n); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, dialErr := d.dial(ctx)
	if err := os.Remove(d.arm); err != nil {
		return false, err
	}
	hit := d.injections() > before
	const served = "a start with a fault serves or exits with an error"
	switch {
	case dialErr == nil:
		conn.Close()
		if hit {
			d.startServed++
		}
		if err := d.stop(); err != nil {
			d.findings.add(served, "%s: served, then SIGTERM: %v (%s)", name, err, lastLine(d.logPath()))
		}
	case d.cmd != nil: // still running, not serving
		d.findings.add(served, "%s: neither serving nor exited in %v (%s)", name, 30*time.Second, lastLine(d.logPath()))
		d.kill()
	default:
		d.startRefused++
		d.checkStartExit(name, dialErr)
	}
	if hit {
		d.injected++
	}
	return hit, d.serveAfterStartFault(name, fresh)
}

// logPath is the daemon's log (driver.start).
func (d *faultDriver) logPath() string { return filepath.Join(d.work, "daemon.log") }

// checkStartExit: a start that did not serve exited with a status (not a
// signal: a crash) and logged why.
func (d *faultDriver) checkStartExit(name string, dialErr error) {
	const check = "a start with a fault serves or exits with an error"
	var exit *exec.ExitError
	if !errors.As(d.lastExit, &exit) {
		d.findings.add(check, "%s: exited with %v (%v)", name, d.lastExit, dialErr)
		return
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		d.findings.add(check, "%s: killed by %v (%s)", name, ws.Signal(), lastLine(d.logPath()))
		return
	}
	if line := lastLine(d.logPath()); !strings.Contains(line, "fatal") && !strings.Contains(line, "rror") {
		d.findings.add(check, "%s: exit %d without an error line (last: %q)", name, exit.ExitCode(), line)
	}
}

// serveAfterStartFault starts the daemon without the fault: on the store,
// it must hold everything acknowledged (verify); on a new root, nothing.
func (d *faultDriver) serveAfterStartFault(name string, fresh bool) error {
	const check = "the next start after a start-up fault serves"
	if err := d.start(); err != nil {
		return err
	}
	defer d.kill()
	if !fresh {
		conn, err := d.verify(&Figures{Outcomes: map[string]int{}})
		if err != nil {
			d.findings.add(check, "%s: %v (%s)", name, err, lastLine(d.logPath()))
			return nil
		}
		conn.Close()
		return d.stopAfterStartFault(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := d.dial(ctx)
	if err != nil {
		d.findings.add(check, "%s: %v (%s)", name, err, lastLine(d.logPath()))
		return nil
	}
	defer conn.Close()
	stream, err := snapshotsapi.NewSnapshotsClient(conn).List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: gpSnapshotter})
	count := 0
	for err == nil {
		var resp *snapshotsapi.ListSnapshotsResponse
		if resp, err = stream.Recv(); err == nil {
			count += len(resp.Info)
		}
	}
	if !errors.Is(err, io.EOF) || count != 0 {
		d.findings.add(check, "%s: List of the new store: %d snapshots, %v", name, count, err)
	}
	return d.stopAfterStartFault(name)
}

func (d *faultDriver) stopAfterStartFault(name string) error {
	if err := d.stop(); err != nil {
		d.findings.add("the next start after a start-up fault serves", "%s: SIGTERM: %v", name, err)
	}
	return nil
}

// runStartFaults enumerates the start-up cases of every kind, on the store
// and then on a root being created (in <work>/fresh-root).
func runStartFaults(d *faultDriver, kinds []string) error {
	for _, fresh := range []bool{false, true} {
		if fresh {
			saved := d.root
			d.root = filepath.Join(d.work, "fresh-root")
			defer func() { d.root = saved }()
		}
		for _, kind := range kinds {
			for n := 1; n <= startCalls; n++ {
				hit, err := d.startCase(kind, n, fresh)
				if err != nil {
					return err
				}
				if !hit {
					break
				}
			}
		}
	}
	return nil
}
