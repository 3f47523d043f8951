// Restart figures (long mode of tests/bench/peers_bench.sh): filling a
// server's store untimed (-populate, plain or CRI-labelled), then timing a
// server that the script has just started: from its start to the first
// answered RPC (socket dialled in a tight bounded loop, 1 ms apart), then a
// full Walk.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

var (
	populate    = flag.Int("populate", 0, "only fill every server with this many committed snapshots (chains of -depth, -clients concurrent clients), untimed")
	populateCRI = flag.Bool("populate-cri", false, "-populate with the CRI plugin's layer labels (the guest-pull path for ours and nydus)")
	restartNs   = flag.Int64("restart-since", 0, "only time every server from this start (unix ns) to its first answered RPC, then a full Walk")
	dialWait    = flag.Duration("dial-wait", 60*time.Second, "-restart-since: how long to wait for the socket")
)

// populateAll fills each server in turn; prints "POPULATE name count error".
func populateAll(ctx context.Context, servers []*server) {
	chainsNeeded := (*populate + *depth - 1) / *depth
	for _, s := range servers {
		var (
			mu    sync.Mutex
			made  int
			first error
			wg    sync.WaitGroup
			next  = make(chan int)
		)
		for c := 0; c < *clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					_, names, err := s.pullChain(ctx, fmt.Sprintf("store-%s-%v-%d", s.name, *populateCRI, i), *populateCRI)
					mu.Lock()
					made += len(names)
					if err != nil && first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < chainsNeeded; i++ {
			mu.Lock()
			failed := first != nil
			mu.Unlock()
			if failed {
				break
			}
			next <- i
		}
		close(next)
		wg.Wait()
		fmt.Printf("POPULATE %s %d %v\n", s.name, made, first)
	}
}

// timeRestart waits (bounded by -dial-wait) until the socket accepts a
// connection, then until an RPC is answered (a Stat of a key that does not
// exist: NotFound is an answer); prints
// "RESTART name ms-to-serving walk-count walk-ms error".
func timeRestart(ctx context.Context, s *server) {
	since := time.Unix(0, *restartNs)
	deadline := time.Now().Add(*dialWait)
	var err error
	for {
		var conn net.Conn
		if conn, err = net.Dial("unix", s.sock); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			fmt.Printf("RESTART %s - - - socket not accepting after %v: %v\n", s.name, *dialWait, err)
			return
		}
		time.Sleep(time.Millisecond)
	}
	c, cancel := context.WithDeadline(ctx, deadline)
	_, err = s.sn.Stat(c, "peerbench-restart-probe")
	cancel()
	if err != nil && !errdefs.IsNotFound(err) {
		fmt.Printf("RESTART %s - - - first RPC: %v\n", s.name, err)
		return
	}
	ready := time.Since(since)
	start := time.Now()
	n, err := walkCount(ctx, s.sn)
	fmt.Printf("RESTART %s %.1f %d %.1f %v\n", s.name, ms(ready), n, ms(time.Since(start)), err)
}
