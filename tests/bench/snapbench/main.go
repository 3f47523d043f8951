// Command snapbench measures snapshotter operations through containerd's own
// gRPC proxy client (snapshots/proxy) against two servers in the same run:
// containerd-guest-pull-grpc ("ours") and containerd's overlayfs snapshotter
// served by tests/conformance/refserver ("ref"). It prints one table row per
// figure with the ratio ours/ref. There are no thresholds: a row "passes"
// when both sides completed the measurement. The last line is
// "measurements: N passed, M failed" (snapshots_bench.sh counts the rows
// through tests/harness/harness.sh).
//
// Workload per server (documented in tests/bench/README.md):
//  1. chain: L layers, each Prepare(parent = previous layer) -> mount the
//     returned mounts with containerd's mount package -> write one 4 KiB
//     file and one small file in a shared directory -> unmount -> Commit,
//     like containerd's unpacker applying a diff;
//  2. Stat of chain layers (sequential, p50/p99);
//  3. extra committed snapshots (Prepare+Commit, no mount) up to a total of
//     -list snapshots, each a child of a chain layer; Walk of all of them;
//  4. Usage of committed layers (stored) and of an active snapshot holding
//     -usage-files files (computed by walking the upper directory);
//  5. a -big-mb MiB base layer written through its bind mount without
//     sync, then Commit while 8 goroutines Stat in a loop (p99 of Stat
//     calls that ran entirely during the Commit);
//  6. Remove of the chain, top layer first, then Cleanup.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"

	"guestpull/conformance/unixdial"
)

const (
	namespace       = "bench"
	snapshotterName = "bench"
	refLabel        = "containerd.io/snapshot.ref"
	statWorkers     = 8
	// Upper bound on Stat calls per worker during the big Commit.
	maxStatsPerWorker = 1000000
)

var (
	oursSocket = flag.String("ours", "", "unix socket of containerd-guest-pull-grpc")
	refSocket  = flag.String("ref", "", "unix socket of the overlayfs reference server")
	scratch    = flag.String("scratch", "", "directory for temporary mount points")
	layers     = flag.Int("layers", 200, "layers in the chain")
	listTotal  = flag.Int("list", 1000, "snapshots present for the List (Walk) figure")
	statCalls  = flag.Int("stats", 2000, "sequential Stat calls")
	usageFiles = flag.Int("usage-files", 1000, "files in the active snapshot for computed Usage")
	bigMB      = flag.Int("big-mb", 100, "size of the large layer committed under concurrent Stat, MiB")
	perServer  = flag.Duration("timeout", 50*time.Second, "time limit per server")
)

// metric is one table row.
type metric struct {
	key, label, unit string
}

var metrics = []metric{
	{"chain_rpc", "chain: Prepare+Commit RPCs per layer (mean)", "ms"},
	{"chain_cycle", "chain: layer cycle incl. mount+write+umount (mean)", "ms"},
	{"stat_p50", "Stat latency p50", "us"},
	{"stat_p99", "Stat latency p99", "us"},
	{"extra_pc", "Prepare+Commit, no mount (mean)", "ms"},
	{"list", "List (Walk) of all snapshots (median of 20)", "ms"},
	{"usage_committed", "Usage of a committed layer p50", "us"},
	{"usage_active", "Usage of an active snapshot, computed (median of 10)", "ms"},
	{"big_commit", "Commit of the large layer", "ms"},
	{"big_stat_p50", "Stat p50 during large Commit (8 goroutines)", "us"},
	{"big_stat_p99", "Stat p99 during large Commit (8 goroutines)", "us"},
	{"big_stat_n", "Stat calls completed during large Commit", "calls"},
	{"remove_chain", "Remove of the chain, total incl. Cleanup", "ms"},
	{"remove_each", "Remove per layer (mean)", "ms"},
}

type results map[string]float64

type server struct {
	name string
	sn   snapshots.Snapshotter
	res  results
	errs []string
}

func main() {
	flag.Parse()
	if *oursSocket == "" || *refSocket == "" || *scratch == "" {
		fmt.Fprintln(os.Stderr, "snapbench: -ours, -ref and -scratch are required")
		fmt.Printf("measurements: 0 passed, %d failed\n", len(metrics))
		os.Exit(2)
	}
	if *listTotal < *layers {
		*listTotal = *layers
	}
	servers := []*server{{name: "ours"}, {name: "ref"}}
	sockets := []string{*oursSocket, *refSocket}
	for i, s := range servers {
		s.res = results{}
		func() {
			ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), *perServer)
			defer cancel()
			conn, err := unixdial.Dial(ctx, sockets[i])
			if err != nil {
				s.errs = append(s.errs, err.Error())
				return
			}
			defer conn.Close()
			s.sn = proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), snapshotterName)
			fmt.Fprintf(os.Stderr, "snapbench: measuring %s (%s)\n", s.name, sockets[i])
			start := time.Now()
			if err := s.run(ctx); err != nil {
				s.errs = append(s.errs, err.Error())
			}
			fmt.Fprintf(os.Stderr, "snapbench: %s done in %.1fs\n", s.name, time.Since(start).Seconds())
		}()
	}
	for _, s := range servers {
		for _, e := range s.errs {
			fmt.Printf("ERROR %s: %s\n", s.name, e)
		}
	}
	passed, failed := printTable(servers[0], servers[1])
	fmt.Printf("measurements: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func printTable(ours, ref *server) (passed, failed int) {
	fmt.Printf("%-54s %12s %12s %8s\n", "operation", "ours", "overlayfs", "ratio")
	fmt.Println(strings.Repeat("-", 89))
	for _, m := range metrics {
		o, okO := ours.res[m.key]
		r, okR := ref.res[m.key]
		cell := func(v float64, ok bool) string {
			if !ok {
				return "FAILED"
			}
			return format(v, m.unit)
		}
		ratio := "-"
		if okO && okR && r > 0 {
			ratio = fmt.Sprintf("%.2f", o/r)
		}
		fmt.Printf("%-54s %12s %12s %8s\n", fmt.Sprintf("%s [%s]", m.label, m.unit), cell(o, okO), cell(r, okR), ratio)
		if okO && okR {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

func format(v float64, unit string) string {
	switch {
	case unit == "calls":
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// percentile of sorted durations, nearest-rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(p*float64(len(sorted))+0.999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(sorted) {
		idx = len(sorted) - 1
	}
	return sorted[idx]
}

func sortDurations(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

func layerName(i int) string { return fmt.Sprintf("layer-%03d", i) }

func labels(name string) snapshots.Opt {
	return snapshots.WithLabels(map[string]string{refLabel: name})
}

// withMounted mounts mounts on a fresh directory under scratch while fn runs.
func withMounted(mounts []mount.Mount, fn func(dir string) error) (err error) {
	dir, err := os.MkdirTemp(*scratch, "m")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := mount.All(mounts, dir); err != nil {
		return fmt.Errorf("mount %+v: %w", mounts, err)
	}
	defer func() {
		if uerr := mount.UnmountAll(dir, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmount %s: %w", dir, uerr)
		}
	}()
	return fn(dir)
}

func (s *server) run(ctx context.Context) error {
	if err := s.chain(ctx); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	// Each later phase needs only the chain; a failure in one does not
	// stop the others.
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"stat", s.stat},
		{"list", s.list},
		{"usage", s.usage},
		{"big commit", s.bigCommit},
		{"remove", s.remove},
	}
	for _, p := range phases {
		if err := p.fn(ctx); err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	return nil
}

func (s *server) chain(ctx context.Context) error {
	small := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(small)
	var rpc, cycle time.Duration
	parent := ""
	for i := 0; i < *layers; i++ {
		name := layerName(i)
		key := name + "-active"
		t0 := time.Now()
		mounts, err := s.sn.Prepare(ctx, key, parent, labels(key))
		if err != nil {
			return fmt.Errorf("Prepare %s: %w", key, err)
		}
		t1 := time.Now()
		err = withMounted(mounts, func(dir string) error {
			if err := os.WriteFile(filepath.Join(dir, name), small, 0o644); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "etc", "layer"), []byte(name+"\n"), 0o644)
		})
		if err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
		t2 := time.Now()
		if err := s.sn.Commit(ctx, name, key, labels(name)); err != nil {
			return fmt.Errorf("Commit %s: %w", name, err)
		}
		t3 := time.Now()
		rpc += t1.Sub(t0) + t3.Sub(t2)
		cycle += t3.Sub(t0)
		parent = name
	}
	// Sanity check: a view of the top layer sees the first and last files.
	mounts, err := s.sn.View(ctx, "verify-view", parent)
	if err != nil {
		return fmt.Errorf("View: %w", err)
	}
	err = withMounted(mounts, func(dir string) error {
		for _, f := range []string{layerName(0), parent} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return fmt.Errorf("top layer view: %w", err)
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, "etc", "layer"))
		if err != nil || strings.TrimSpace(string(b)) != parent {
			return fmt.Errorf("top layer view: etc/layer = %q, %v (want %s)", b, err, parent)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.sn.Remove(ctx, "verify-view"); err != nil {
		return fmt.Errorf("Remove view: %w", err)
	}
	s.res["chain_rpc"] = ms(rpc) / float64(*layers)
	s.res["chain_cycle"] = ms(cycle) / float64(*layers)
	return nil
}

func (s *server) stat(ctx context.Context) error {
	lat := make([]time.Duration, 0, *statCalls)
	for i := 0; i < *statCalls; i++ {
		name := layerName(i % *layers)
		t0 := time.Now()
		info, err := s.sn.Stat(ctx, name)
		if err != nil {
			return fmt.Errorf("Stat %s: %w", name, err)
		}
		lat = append(lat, time.Since(t0))
		if info.Kind != snapshots.KindCommitted {
			return fmt.Errorf("Stat %s: kind %v", name, info.Kind)
		}
	}
	sortDurations(lat)
	s.res["stat_p50"] = us(percentile(lat, 0.50))
	s.res["stat_p99"] = us(percentile(lat, 0.99))
	return nil
}

func (s *server) list(ctx context.Context) error {
	extra := *listTotal - *layers
	var total time.Duration
	for j := 0; j < extra; j++ {
		key := fmt.Sprintf("extra-%04d-active", j)
		name := fmt.Sprintf("extra-%04d", j)
		t0 := time.Now()
		if _, err := s.sn.Prepare(ctx, key, layerName(j%*layers), labels(key)); err != nil {
			return fmt.Errorf("Prepare %s: %w", key, err)
		}
		if err := s.sn.Commit(ctx, name, key, labels(name)); err != nil {
			return fmt.Errorf("Commit %s: %w", name, err)
		}
		total += time.Since(t0)
	}
	if extra > 0 {
		s.res["extra_pc"] = ms(total) / float64(extra)
	}
	const rounds = 20
	lat := make([]time.Duration, 0, rounds)
	for r := 0; r < rounds; r++ {
		n := 0
		t0 := time.Now()
		err := s.sn.Walk(ctx, func(context.Context, snapshots.Info) error {
			n++
			if n > *listTotal+16 {
				return fmt.Errorf("more than %d snapshots", *listTotal+16)
			}
			return nil
		})
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("Walk: %w", err)
		}
		if n != *listTotal {
			return fmt.Errorf("Walk listed %d snapshots, want %d", n, *listTotal)
		}
	}
	sortDurations(lat)
	s.res["list"] = ms(percentile(lat, 0.5))
	return nil
}

func (s *server) usage(ctx context.Context) error {
	lat := make([]time.Duration, 0, *layers)
	for i := 0; i < *layers; i++ {
		t0 := time.Now()
		u, err := s.sn.Usage(ctx, layerName(i))
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("Usage %s: %w", layerName(i), err)
		}
		if u.Size < 4096 {
			return fmt.Errorf("Usage %s: size %d < 4096", layerName(i), u.Size)
		}
	}
	sortDurations(lat)
	s.res["usage_committed"] = us(percentile(lat, 0.5))

	const key = "usage-active"
	mounts, err := s.sn.Prepare(ctx, key, layerName(*layers-1), labels(key))
	if err != nil {
		return fmt.Errorf("Prepare %s: %w", key, err)
	}
	defer s.sn.Remove(ctx, key)
	buf := make([]byte, 4096)
	err = withMounted(mounts, func(dir string) error {
		for i := 0; i < *usageFiles; i++ {
			sub := filepath.Join(dir, "usage", fmt.Sprintf("d%02d", i%50))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	const rounds = 10
	alat := make([]time.Duration, 0, rounds)
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		u, err := s.sn.Usage(ctx, key)
		alat = append(alat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("Usage %s: %w", key, err)
		}
		if u.Inodes < int64(*usageFiles) || u.Size < int64(*usageFiles)*4096 {
			return fmt.Errorf("Usage %s: %+v, want >= %d inodes and %d bytes", key, u, *usageFiles, *usageFiles*4096)
		}
	}
	sortDurations(alat)
	s.res["usage_active"] = ms(percentile(alat, 0.5))
	if err := s.sn.Remove(ctx, key); err != nil {
		return fmt.Errorf("Remove %s: %w", key, err)
	}
	return nil
}

func (s *server) bigCommit(ctx context.Context) error {
	const key, name = "big-active", "big"
	// A base layer (no parent): its mount is a bind mount of the upper
	// directory, so unmounting does not sync, and the written pages are
	// still dirty when Commit runs.
	mounts, err := s.sn.Prepare(ctx, key, "", labels(key))
	if err != nil {
		return fmt.Errorf("Prepare %s: %w", key, err)
	}
	chunk := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(chunk)
	err = withMounted(mounts, func(dir string) error {
		for i := 0; i < *bigMB; i++ {
			chunk[0], chunk[1] = byte(i), byte(i>>8)
			sub := filepath.Join(dir, "big", fmt.Sprintf("d%d", i%10))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", i)), chunk, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}

	type sample struct {
		t0 time.Time
		d  time.Duration
	}
	var (
		stop    int32
		started = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		samples []sample
		statErr error
	)
	for w := 0; w < statWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-started
			var mine []sample
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for i := 0; i < maxStatsPerWorker && atomic.LoadInt32(&stop) == 0; i++ {
				t0 := time.Now()
				if _, err := s.sn.Stat(ctx, layerName((w*31+i)%*layers)); err != nil {
					mu.Lock()
					statErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, sample{t0, time.Since(t0)})
			}
		}(w)
	}
	commitStart := time.Now()
	close(started)
	err = s.sn.Commit(ctx, name, key, labels(name))
	commitEnd := time.Now()
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("Commit %s: %w", name, err)
	}
	if statErr != nil {
		return fmt.Errorf("Stat during Commit: %w", statErr)
	}
	// Only calls that ran entirely during the Commit.
	var lat []time.Duration
	for _, smp := range samples {
		if !smp.t0.Before(commitStart) && !smp.t0.Add(smp.d).After(commitEnd) {
			lat = append(lat, smp.d)
		}
	}
	u, err := s.sn.Usage(ctx, name)
	if err != nil {
		return fmt.Errorf("Usage %s: %w", name, err)
	}
	if u.Size < int64(*bigMB)<<20 {
		return fmt.Errorf("Usage %s: size %d < %d MiB", name, u.Size, *bigMB)
	}
	s.res["big_commit"] = ms(commitEnd.Sub(commitStart))
	s.res["big_stat_n"] = float64(len(lat))
	if len(lat) > 0 {
		sortDurations(lat)
		s.res["big_stat_p50"] = us(percentile(lat, 0.5))
		s.res["big_stat_p99"] = us(percentile(lat, 0.99))
	} else {
		s.errs = append(s.errs, "big commit: no Stat call completed during the Commit")
	}
	if err := s.sn.Remove(ctx, name); err != nil {
		return fmt.Errorf("Remove %s: %w", name, err)
	}
	return nil
}

func (s *server) remove(ctx context.Context) error {
	// Extra snapshots are leaves; remove them first (not timed).
	for j := 0; j < *listTotal-*layers; j++ {
		name := fmt.Sprintf("extra-%04d", j)
		if err := s.sn.Remove(ctx, name); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("Remove %s: %w", name, err)
		}
	}
	t0 := time.Now()
	for i := *layers - 1; i >= 0; i-- {
		if err := s.sn.Remove(ctx, layerName(i)); err != nil {
			return fmt.Errorf("Remove %s: %w", layerName(i), err)
		}
	}
	removed := time.Since(t0)
	if c, ok := s.sn.(snapshots.Cleaner); ok {
		if err := c.Cleanup(ctx); err != nil && !errdefs.IsNotImplemented(err) {
			return fmt.Errorf("Cleanup: %w", err)
		}
	}
	total := time.Since(t0)
	n := 0
	if err := s.sn.Walk(ctx, func(context.Context, snapshots.Info) error {
		n++
		return nil
	}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("Walk after removal: %w", err)
	}
	if n != 0 {
		return fmt.Errorf("%d snapshots left after removal", n)
	}
	s.res["remove_chain"] = ms(total)
	s.res["remove_each"] = ms(removed) / float64(*layers)
	return nil
}
