// Restart figures (long mode of tests/bench/peers_bench.sh): filling a
// server's store untimed (-populate, plain or CRI-labelled), then timing a
// server that the script has just started: from its start to the first
// answered RPC (socket dialled in a tight bounded loop, 1 ms apart), then a
// full Walk, then containerd's remote-snapshot lookup (the filtered Walk
// its metadata store makes after every layer Prepare answered
// AlreadyExists) on that store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
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

// remoteLookups is how many lookups the median of lookupMs is taken over.
const remoteLookups = 15

// lookupMs is the median time of containerd's remote-snapshot lookup
// (core/metadata, after a Prepare answered AlreadyExists: a Walk filtered
// by labels."containerd.io/snapshot.ref" and parent) for a target no
// snapshot has: the servers compared scan their whole store for it.
func lookupMs(ctx context.Context, sn snapshots.Snapshotter) (float64, error) {
	filter := fmt.Sprintf(`labels.%q==%s,parent==%q`, snapshots.LabelSnapshotRef,
		"sha256:peerbench-absent", "sha256:peerbench-absent-parent")
	var times []float64
	for i := 0; i < remoteLookups; i++ {
		start := time.Now()
		if err := sn.Walk(ctx, func(context.Context, snapshots.Info) error {
			return errors.New("lookup: the filter matched a snapshot")
		}, filter); err != nil {
			return 0, err
		}
		times = append(times, ms(time.Since(start)))
	}
	sort.Float64s(times)
	return times[len(times)/2], nil
}

// timeRestart waits (bounded by -dial-wait) until the socket accepts a
// connection, then until an RPC is answered (a Stat of a key that does not
// exist: NotFound is an answer); prints
// "RESTART name ms-to-serving walk-count walk-ms lookup-ms error".
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
			fmt.Printf("RESTART %s - - - - socket not accepting after %v: %v\n", s.name, *dialWait, err)
			return
		}
		time.Sleep(time.Millisecond)
	}
	c, cancel := context.WithDeadline(ctx, deadline)
	_, err = s.sn.Stat(c, "peerbench-restart-probe")
	cancel()
	if err != nil && !errdefs.IsNotFound(err) {
		fmt.Printf("RESTART %s - - - - first RPC: %v\n", s.name, err)
		return
	}
	ready := time.Since(since)
	start := time.Now()
	n, err := walkCount(ctx, s.sn)
	walk := time.Since(start)
	lookup := "-" // a failed lookup costs only its own figure
	if err == nil {
		if l, lerr := lookupMs(ctx, s.sn); lerr != nil {
			fmt.Fprintf(os.Stderr, "peerbench: remote-snapshot lookup on %s: %v\n", s.name, lerr)
		} else {
			lookup = fmt.Sprintf("%.2f", l)
		}
	}
	fmt.Printf("RESTART %s %.1f %d %.1f %s %v\n", s.name, ms(ready), n, ms(walk), lookup, err)
}
