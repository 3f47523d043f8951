// Package unixdial connects a gRPC client to a snapshotter's unix socket;
// shared by the conformance harness and the benchmarks.
package unixdial

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
)

// Timeout bounds how long Dial waits for the socket to accept.
const Timeout = 10 * time.Second

// Dial blocks until the gRPC server on `socket` accepts, or Timeout passes.
func Dial(ctx context.Context, socket string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}
	conn, err := grpc.DialContext(ctx, socket, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", socket, err)
	}
	return conn, nil
}
