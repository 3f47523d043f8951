// Package serve runs a containerd Snapshotter over the
// containerd.services.snapshots.v1 gRPC API on a unix socket, through
// containerd 2.x's own service adapter, with containerd-guest-pull-grpc's
// command-line flags (so the benchmarks start every server the same way),
// until SIGTERM or SIGINT.
package serve

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/contrib/snapshotservice"
	"github.com/containerd/containerd/v2/core/snapshots"
	"google.golang.org/grpc"
)

// Main parses the flags, opens the snapshotter on --root with open and
// serves it on --address; on an error it prints it as "name: error" and
// exits 1.
func Main(name string, open func(root string) (snapshots.Snapshotter, error)) {
	address := flag.String("address", "", "unix socket to serve on")
	root := flag.String("root", "", "snapshotter root directory")
	_ = flag.String("config", "", "ignored (command-line compatibility)")
	_ = flag.String("log-level", "info", "ignored (command-line compatibility)")
	flag.Parse()
	if err := run(*address, *root, open); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(address, root string, open func(string) (snapshots.Snapshotter, error)) error {
	if address == "" || root == "" {
		return fmt.Errorf("--address and --root are required")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	sn, err := open(root)
	if err != nil {
		return err
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
