package main

// fault_start.go: the fault suite's start-up cases. The daemon starts with
// the shim armed from its first call, so the Nth call of a kind made while
// it opens its store fails: the survey and recovery, the store-id and
// store-open markers (temp file, rename, the fsync of the root), the WAL's
// header commit, the sweep that follows. Each kind is tried on the store
// the RPC cases left (with every acknowledged mutation in the clients'
// journals) and on a root being created. The start must then serve, or
// exit by itself with a non-zero status (not a signal) and an error in its
// log (also after serving reads, when its start-up writes, which writes
// wait for, fail: then it acknowledged no write); and the next start without the fault must serve, with everything
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var startChecks = []string{
	"a start with a fault serves or exits with an error",
	"a start that serves despite a fault serves everything",
	"a start without a fault serves",
	"the next start after a start-up fault serves",
}

// startCalls bounds the calls of one kind tried at start; a start makes
// fewer of each (the -wal's preallocation alone makes 80 writes), and the
// loop stops at the first n the start never reaches. Reaching the bound is
// a finding: the calls beyond it would go untested.
const startCalls = 400

// startWait bounds a start (dial) and a stop in these cases.
const startWait = 30 * time.Second

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
		os.Remove(d.arm)
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	conn, dialErr := d.dial(ctx)
	// Still armed: the start-up writes run after the socket is up, and the
	// probe waits for them (it makes no call of its own that could fail).
	writes := dialErr == nil && d.takesWrites(conn)
	if err := os.Remove(d.arm); err != nil {
		return false, err
	}
	hit := d.injections() > before
	const served = "a start with a fault serves or exits with an error"
	switch {
	case dialErr == nil && hit && !writes:
		// Its start-up writes (which only writes wait for) failed after
		// it began serving reads: it stops by itself, as a start that
		// failed, having acknowledged no write.
		conn.Close()
		d.startRefused++
		d.awaitStartExit(name)
	case dialErr == nil:
		if hit {
			d.startServed++
			d.checkState(name, "a start that serves despite a fault serves everything", conn, fresh)
		}
		conn.Close()
		d.stopWithin(name, served)
	case d.cmd != nil: // still running, not serving
		d.findings.add(served, "%s: neither serving nor exited in %v (%s)", name, startWait, lastLine(d.logPath()))
		d.kill()
	case !hit:
		d.findings.add("a start without a fault serves", "%s: %v (%s)", name, dialErr, lastLine(d.logPath()))
	default:
		d.startRefused++
		d.checkStartExit(name, dialErr)
	}
	if hit {
		d.injected++
	}
	return hit, d.serveAfterStartFault(name, fresh)
}

// takesWrites: a Remove of a key no snapshot has, which waits for the
// store's start-up writes, answers NotFound.
func (d *faultDriver) takesWrites(conn *grpc.ClientConn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	_, err := snapshotsapi.NewSnapshotsClient(conn).Remove(ctx, &snapshotsapi.RemoveSnapshotRequest{
		Snapshotter: gpSnapshotter, Key: "fault-start-probe-no-such-key"})
	return status.Code(err) == codes.NotFound
}

// awaitStartExit: a daemon whose start-up writes failed exits by itself
// within startWait, as checkStartExit wants of a start that failed.
func (d *faultDriver) awaitStartExit(name string) {
	const check = "a start with a fault serves or exits with an error"
	select {
	case err := <-d.waitCh:
		d.cmd, d.waitCh, d.lastExit = nil, nil, err
		d.checkStartExit(name, errors.New("its start-up writes failed after it served reads"))
	case <-time.After(startWait):
		d.findings.add(check, "%s: serves reads, takes no write and still runs %v later (%s)", name, startWait, lastLine(d.logPath()))
		d.kill()
	}
}

// checkState: the daemon on `conn` serves the state a start must (every
// acknowledged mutation, verify.go; on a new root, no snapshot); findings
// go under `check`.
func (d *faultDriver) checkState(name, check string, conn *grpc.ClientConn, fresh bool) {
	if fresh {
		if n, err := d.countSnapshots(conn); err != nil || n != 0 {
			d.findings.add(check, "%s: List of the new store: %d snapshots, %v", name, n, err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	f, err := Verify(ctx, newSnapshotter(conn), d.root, d.work, filepath.Join(d.work, "mnt"), d.clients,
		&Figures{Outcomes: map[string]int{}})
	for c, list := range f {
		for _, l := range list {
			d.findings.add(check, "%s: %s: %s", name, c, l)
		}
	}
	if err != nil {
		d.findings.add(check, "%s: %v", name, err)
	}
}

// stopWithin stops the daemon with SIGTERM, or SIGKILL after startWait (a
// finding under `check`).
func (d *faultDriver) stopWithin(name, check string) {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.waitCh:
		d.cmd, d.waitCh = nil, nil
		if err != nil {
			d.findings.add(check, "%s: SIGTERM: %v (%s)", name, err, lastLine(d.logPath()))
		}
	case <-time.After(startWait):
		d.findings.add(check, "%s: still running %v after SIGTERM", name, startWait)
		d.kill()
	}
}

// countSnapshots lists every snapshot.
func (d *faultDriver) countSnapshots(conn *grpc.ClientConn) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	stream, err := snapshotsapi.NewSnapshotsClient(conn).List(ctx, &snapshotsapi.ListSnapshotsRequest{Snapshotter: gpSnapshotter})
	count := 0
	for err == nil {
		var resp *snapshotsapi.ListSnapshotsResponse
		if resp, err = stream.Recv(); err == nil {
			count += len(resp.Info)
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return count, err
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

// serveAfterStartFault starts the daemon without the fault: it must serve
// the state a start must (checkState).
func (d *faultDriver) serveAfterStartFault(name string, fresh bool) error {
	const check = "the next start after a start-up fault serves"
	if err := d.start(); err != nil {
		return err
	}
	defer d.kill()
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	conn, err := d.dial(ctx)
	if err != nil {
		d.findings.add(check, "%s: %v (%s)", name, err, lastLine(d.logPath()))
		return nil
	}
	d.checkState(name, check, conn, fresh)
	conn.Close()
	d.stopWithin(name, check)
	return nil
}

// runStartFaults enumerates the start-up cases of every kind, on the store
// and then on a root being created (in <work>/fresh-root).
func runStartFaults(d *faultDriver, kinds []string) error {
	savedTries := d.dialTries
	d.dialTries = int(startWait / (20 * time.Millisecond))
	defer func() { d.dialTries = savedTries }()
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
				if n == startCalls {
					d.findings.add("a start with a fault serves or exits with an error",
						"%s: still a call at #%d (fresh root: %v); raise startCalls", kind, n, fresh)
				}
			}
		}
	}
	return nil
}
