// Command refserver serves containerd's own overlayfs snapshotter over the
// containerd.services.snapshots.v1 gRPC API on a unix socket. It accepts the
// same command-line flags as containerd-guest-pull-grpc so that the
// conformance harness and the end-to-end suites can be exercised against a
// known-good reference while the real daemon is developed.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "", "unix socket to serve on")
	root := flag.String("root", "", "snapshotter root directory")
	// Accepted for command-line compatibility with the real daemon.
	_ = flag.String("config", "", "ignored")
	_ = flag.String("log-level", "info", "ignored")
	flag.Parse()
	if err := run(*address, *root); err != nil {
		fmt.Fprintf(os.Stderr, "refserver: %v\n", err)
		os.Exit(1)
	}
}

func run(address, root string) error {
	if address == "" || root == "" {
		return fmt.Errorf("--address and --root are required")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	sn, err := overlay.NewSnapshotter(root)
	if err != nil {
		return fmt.Errorf("overlay snapshotter: %w", err)
	}
	defer sn.Close()

	if err := os.Remove(address); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := net.Listen("unix", address)
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(emptyWalk{sn}))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "refserver: %v received, stopping\n", sig)
		server.Stop()
	}()
	fmt.Fprintf(os.Stderr, "refserver: serving overlayfs at %s (root %s)\n", address, root)
	if err := server.Serve(l); err != nil && err != grpc.ErrServerStopped {
		return err
	}
	return nil
}

// emptyWalk corrects a quirk of containerd's bolt storage: before the first
// snapshot is created, Walk fails with "bucket does not exist" (and
// snapshotservice reports it as Unknown) instead of listing nothing.
type emptyWalk struct {
	snapshots.Snapshotter
}

func (e emptyWalk) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	called := false
	err := e.Snapshotter.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		called = true
		return fn(ctx, info)
	}, filters...)
	if err != nil && !called && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// Cleanup forwards to the overlay snapshotter's Cleanup, which has the same
// quirk as Walk on a store that never held a snapshot.
func (e emptyWalk) Cleanup(ctx context.Context) error {
	if c, ok := e.Snapshotter.(snapshots.Cleaner); ok {
		if err := c.Cleanup(ctx); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	}
	return errdefs.ErrNotImplemented
}
