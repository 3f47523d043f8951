// Command refserver2 serves containerd 2.x's own overlayfs snapshotter over
// the containerd.services.snapshots.v1 gRPC API on a unix socket, with the
// same command-line flags as containerd-guest-pull-grpc (and as
// tests/conformance/refserver, the containerd 1.6 one), so the benchmark
// starts every server the same way.
package main

import (
	"fmt"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"

	"guestpull/benchpeers/serve"
)

func main() {
	serve.Main("refserver2", func(root string) (snapshots.Snapshotter, error) {
		sn, err := overlay.NewSnapshotter(root)
		if err != nil {
			return nil, fmt.Errorf("overlay snapshotter: %w", err)
		}
		return sn, nil
	})
}
