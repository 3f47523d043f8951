// Command refserver2 serves containerd 2.x's own overlayfs snapshotter over
// the containerd.services.snapshots.v1 gRPC API on a unix socket, with the
// same command-line flags as containerd-guest-pull-grpc (and as
// tests/conformance/refserver, the containerd 1.6 one), so the benchmark
// starts every server the same way.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "", "unix socket to serve on")
	root := flag.String("root", "", "snapshotter root directory")
	_ = flag.String("config", "", "ignored (command-line compatibility)")
	_ = flag.String("log-level", "info", "ignored (command-line compatibility)")
	flag.Parse()
	if err := run(*address, *root); err != nil {
		fmt.Fprintf(os.Stderr, "refserver2: %v\n", err)
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
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(sn))
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		server.Stop()
	}()
	if err := server.Serve(l); err != nil && err != grpc.ErrServerStopped {
		return err
	}
	return nil
}
