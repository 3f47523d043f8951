// Command peerbench drives several snapshotters through containerd's own
// gRPC proxy client (core/snapshots/proxy) in the same run, interleaved:
// every round runs each workload on every server in turn (the order
// rotates per round), so a busy machine slows all servers alike. It prints
// one line per (figure, server) with the ratios against containerd 1.6's
// and 2.x's overlayfs. No thresholds: a figure a server could not produce
// is printed as SKIP with the reason (tests/bench/peers_bench.sh counts
// them as skips). Documented in tests/bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/proxy"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	serverFlags = flag.String("servers", "", "comma-separated NAME=SOCKET list, table order")
	rounds      = flag.Int("rounds", 3, "interleaved rounds of every workload")
	depth       = flag.Int("depth", 10, "layers per image-pull-shaped chain")
	chains      = flag.Int("chains", 4, "chains per client per round")
	clients     = flag.Int("clients", 8, "concurrent clients of the concurrent workloads")
	lookups     = flag.Int("lookups", 300, "sequential Stat/Mounts/Usage calls per round")
	listN       = flag.Int("list", 1000, "snapshots present for the List (Walk) figure")
	scratch     = flag.String("scratch", "", "directory for mount points of the data figures (empty: skipped)")
	dataLayers  = flag.Int("data-layers", 50, "layers of the data chain (mounted and written)")
	usageFiles  = flag.Int("usage-files", 1000, "files in the active snapshot of the computed Usage figure")
	bigMB       = flag.Int("big-mb", 100, "MiB of the large layer committed under concurrent Stat calls")
	noisyMB     = flag.Int("noisy-mb", 0, "MiB of other processes' dirty data for the noisy-neighbour figures (0: none)")
	noisyDir    = flag.String("noisy-dir", "", "directory on the servers' filesystem for the noisy-neighbour data")
	noisyRounds = flag.Int("noisy-rounds", 11, "interleaved rounds of the noisy-neighbour figures (their median: a chain that meets a stall of the machine can take 2-4x as long, clean or dirty)")
	perCall     = flag.Duration("call-timeout", 30*time.Second, "time limit of one RPC")
)

type server struct {
	name string
	sock string
	sn   snapshots.Snapshotter
	// figures[key] collects one value per round; errs[key] the first error.
	figures map[string][]float64
	errs    map[string]error
	// why[key]: the reason printed when a figure has no value and no error.
	why map[string]string
	// remote counts Prepares answered AlreadyExists (a remote snapshot).
	remote atomic.Int64
}

// floorName is tests/bench/peers/floorserver's name in -servers: it keeps
// nothing on disk, so it has the API figures only (no data, noisy
// neighbour or restart rows) and is the floor the others are read against.
const floorName = "floor"

func (s *server) keepsData() bool { return s.name != floorName }

// dataOnly: the figures of servers that keep data.
func dataOnly(key string) bool {
	for _, k := range append(dataKeys, "noisy-clean", "noisy-dirty", "noisy-ratio") {
		if k == key {
			return true
		}
	}
	return false
}

type figure struct{ key, label, unit string }

var figureList []figure

func addFigure(key, label, unit string) { figureList = append(figureList, figure{key, label, unit}) }

func main() {
	flag.Parse()
	var servers []*server
	for _, spec := range strings.Split(*serverFlags, ",") {
		name, sock, ok := strings.Cut(spec, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "peerbench: bad -servers entry %q\n", spec)
			os.Exit(2)
		}
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintf(os.Stderr, "peerbench: %s: %v\n", name, err)
			os.Exit(2)
		}
		defer conn.Close()
		servers = append(servers, &server{name: name, sock: sock,
			sn:      proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "bench"),
			figures: map[string][]float64{}, errs: map[string]error{}, why: map[string]string{}})
	}
	ctx := namespaces.WithNamespace(context.Background(), "bench")
	if *populate > 0 {
		populateAll(ctx, servers)
		return
	}
	if *restartNs > 0 {
		for _, s := range servers {
			timeRestart(ctx, s)
		}
		return
	}
	for _, cri := range []bool{false, true} {
		for _, c := range []int{1, *clients} {
			addFigure(fmt.Sprintf("chain-%v-%d", cri, c),
				fmt.Sprintf("pull chains (Prepare+Mounts+Commit+Stat), %d client(s), %s", c, labelKind(cri)), "ops/s")
		}
	}
	// The same runs counted in layers: a guest-pull layer needs 2 RPCs
	// (Prepare answered AlreadyExists, Stat), an unpacked one 4, so RPCs/s
	// alone hides how fast a pull goes.
	for _, cri := range []bool{false, true} {
		for _, c := range []int{1, *clients} {
			addFigure(fmt.Sprintf("layers-%v-%d", cri, c),
				fmt.Sprintf("pull chains, layers done, %d client(s), %s", c, labelKind(cri)), "layers/s")
		}
	}
	addFigure("stat", "Stat p50 (committed)", "us")
	addFigure("stat99", "Stat p99 (committed)", "us")
	addFigure("mounts", "Mounts p50 (active)", "us")
	addFigure("usage", "Usage p50 (committed)", "us")
	addFigure("stat-missing", "Stat p50 of a missing key (NotFound: the RPC alone)", "us")
	addFigure("list", fmt.Sprintf("List (Walk) of %d snapshots, median", *listN), "ms")
	addDataFigures()
	if *noisyMB > 0 {
		addFigure("noisy-clean", fmt.Sprintf("%d CRI-labelled layers, clean filesystem", *depth), "ms")
		addFigure("noisy-dirty", fmt.Sprintf("%d CRI-labelled layers, %d MiB of others' dirty data", *depth, *noisyMB), "ms")
		addFigure("noisy-ratio", "noisy neighbour slowdown (dirty / clean, per server)", "x")
	}
	for r := 0; r < *rounds; r++ {
		for i := range servers {
			s := servers[(i+r)%len(servers)]
			s.round(ctx, r)
		}
		fmt.Fprintf(os.Stderr, "peerbench: round %d/%d done\n", r+1, *rounds)
	}
	for i := range servers {
		servers[(i)%len(servers)].listRounds(ctx, servers)
		break
	}
	if *noisyMB > 0 {
		noisyRoundsRun(ctx, servers)
	}
	for _, s := range servers {
		fmt.Fprintf(os.Stderr, "peerbench: %s: %d layer Prepares answered AlreadyExists (remote snapshot)\n", s.name, s.remote.Load())
	}
	printTable(servers)
}

func labelKind(cri bool) string {
	if cri {
		return "CRI labels"
	}
	return "plain"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// criLabels are the labels containerd's CRI plugin sends on a layer Prepare
// (/work/shared/notes/containerd.md): only these reach a proxy snapshotter.
// Each chain is the pull of an image of its own (its chain IDs differ), so
// its manifest digest is its own too: the chain's prefix hashed.
func criLabels(prefix, chainID string, layer int) map[string]string {
	manifest := fnv.New64a()
	manifest.Write([]byte(prefix))
	return map[string]string{
		"containerd.io/snapshot.ref":                 chainID,
		"containerd.io/snapshot/cri.image-ref":       "127.0.0.1:5000/bench/image:latest",
		"containerd.io/snapshot/cri.layer-digest":    digest("blob", layer),
		"containerd.io/snapshot/cri.manifest-digest": fmt.Sprintf("sha256:%064x", manifest.Sum64()),
		"containerd.io/snapshot/cri.image-layers":    digest("blob", layer) + "," + digest("blob", layer+1),
	}
}

func digest(kind string, n int) string { return fmt.Sprintf("sha256:%064x", len(kind)*1000003+n) }

// pullChain creates one image-pull-shaped chain the way containerd's
// unpacker does: Prepare(extract key, parent) -> Mounts -> Commit(chainID)
// -> Stat(chainID); a Prepare answered AlreadyExists (a remote snapshot,
// e.g. nydus proxy mode with CRI labels) is followed by Stat only. Returns
// the RPC count and the committed names (top last).
func (s *server) pullChain(ctx context.Context, prefix string, cri bool) (int, []string, error) {
	sn := s.sn
	parent, rpcs := "", 0
	var names []string
	for l := 0; l < *depth; l++ {
		chainID := fmt.Sprintf("sha256:%s-%02d", prefix, l)
		key := fmt.Sprintf("extract-%s-%02d %s", prefix, l, chainID)
		var opts []snapshots.Opt
		if cri {
			opts = append(opts, snapshots.WithLabels(criLabels(prefix, chainID, l)))
		}
		c, cancel := context.WithTimeout(ctx, *perCall)
		_, err := sn.Prepare(c, key, parent, opts...)
		rpcs++
		if err == nil {
			_, err = sn.Mounts(c, key)
			rpcs++
			if err == nil {
				err = sn.Commit(c, chainID, key, opts...)
				rpcs++
			}
		} else if errdefs.IsAlreadyExists(err) {
			s.remote.Add(1)
			err = nil
		}
		if err == nil {
			_, err = sn.Stat(c, chainID)
			rpcs++
		}
		cancel()
		if err != nil {
			return rpcs, names, fmt.Errorf("layer %d: %w", l, err)
		}
		names = append(names, chainID)
		parent = chainID
	}
	return rpcs, names, nil
}

// removeAll removes names top first (untimed clean-up).
func removeAll(ctx context.Context, sn snapshots.Snapshotter, names []string) {
	for i := len(names) - 1; i >= 0; i-- {
		_ = sn.Remove(ctx, names[i])
	}
}

func (s *server) fail(key string, err error) {
	if s.errs[key] == nil {
		s.errs[key] = err
	}
}

func (s *server) round(ctx context.Context, r int) {
	for _, cri := range []bool{false, true} {
		for _, c := range []int{1, *clients} {
			key := fmt.Sprintf("chain-%v-%d", cri, c)
			layersKey := fmt.Sprintf("layers-%v-%d", cri, c)
			var mu sync.Mutex
			var all []string
			var firstErr error
			total := 0
			var wg sync.WaitGroup
			start := time.Now()
			for w := 0; w < c; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < *chains; i++ {
						n, names, err := s.pullChain(ctx, fmt.Sprintf("r%d-%s-%v-%d-w%d-c%d", r, s.name, cri, c, w, i), cri)
						mu.Lock()
						total += n
						all = append(all, names...)
						if err != nil && firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			if firstErr != nil {
				s.fail(key, firstErr)
				s.fail(layersKey, firstErr)
			} else {
				s.figures[key] = append(s.figures[key], float64(total)/elapsed.Seconds())
				s.figures[layersKey] = append(s.figures[layersKey], float64(len(all))/elapsed.Seconds())
			}
			removeAll(ctx, s.sn, all)
		}
	}
	s.lookupsRound(ctx, r)
	if s.keepsData() {
		s.dataRound(ctx, r)
	}
}

func p50(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return us(d[len(d)/2])
}

// p99 (nearest rank) in microseconds.
func p99(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := (len(d)*99+99)/100 - 1
	if i >= len(d) {
		i = len(d) - 1
	}
	return us(d[i])
}

func (s *server) lookupsRound(ctx context.Context, r int) {
	_, names, err := s.pullChain(ctx, fmt.Sprintf("lk%d-%s", r, s.name), false)
	if err != nil {
		for _, k := range []string{"stat", "stat99", "mounts", "usage", "stat-missing"} {
			s.fail(k, fmt.Errorf("setting up the chain: %w", err))
		}
		return
	}
	active := fmt.Sprintf("lk%d-%s-active", r, s.name)
	if _, err := s.sn.Prepare(ctx, active, names[len(names)-1]); err != nil {
		s.fail("mounts", err)
	}
	var st, mo, us, miss []time.Duration
	for i := 0; i < *lookups; i++ {
		name := names[i%len(names)]
		t := time.Now()
		if _, err := s.sn.Stat(ctx, name); err != nil {
			s.fail("stat", err)
			break
		}
		st = append(st, time.Since(t))
		t = time.Now()
		if _, err := s.sn.Mounts(ctx, active); err != nil {
			s.fail("mounts", err)
			break
		}
		mo = append(mo, time.Since(t))
		t = time.Now()
		if _, err := s.sn.Usage(ctx, name); err != nil {
			s.fail("usage", err)
			break
		}
		us = append(us, time.Since(t))
		t = time.Now()
		if _, err := s.sn.Stat(ctx, "missing-"+name); !errdefs.IsNotFound(err) {
			s.fail("stat-missing", fmt.Errorf("Stat of a missing key: %v", err))
			break
		}
		miss = append(miss, time.Since(t))
	}
	s.figures["stat"] = append(s.figures["stat"], p50(st))
	s.figures["stat99"] = append(s.figures["stat99"], p99(st))
	s.figures["mounts"] = append(s.figures["mounts"], p50(mo))
	s.figures["usage"] = append(s.figures["usage"], p50(us))
	s.figures["stat-missing"] = append(s.figures["stat-missing"], p50(miss))
	_ = s.sn.Remove(ctx, active)
	removeAll(ctx, s.sn, names)
}

func walkCount(ctx context.Context, sn snapshots.Snapshotter) (int, error) {
	n := 0
	err := sn.Walk(ctx, func(context.Context, snapshots.Info) error { n++; return nil })
	return n, err
}

// listRounds fills every server with -list committed snapshots (chains of
// -depth, untimed), then Walks them, servers interleaved, 5 rounds.
func (_ *server) listRounds(ctx context.Context, servers []*server) {
	chainsNeeded := (*listN + *depth - 1) / *depth
	made := map[*server][]string{}
	for _, s := range servers {
		for i := 0; i < chainsNeeded; i++ {
			_, names, err := s.pullChain(ctx, fmt.Sprintf("list-%s-%d", s.name, i), false)
			made[s] = append(made[s], names...)
			if err != nil {
				s.fail("list", fmt.Errorf("creating %d snapshots: %w", *listN, err))
				break
			}
		}
	}
	for r := 0; r < 5; r++ {
		for i := range servers {
			s := servers[(i+r)%len(servers)]
			if s.errs["list"] != nil {
				continue
			}
			start := time.Now()
			n, err := walkCount(ctx, s.sn)
			d := time.Since(start)
			if err == nil && n < *listN {
				err = fmt.Errorf("Walk listed %d of %d snapshots", n, *listN)
			}
			if err != nil {
				s.fail("list", err)
				continue
			}
			s.figures["list"] = append(s.figures["list"], ms(d))
		}
	}
	fmt.Fprintf(os.Stderr, "peerbench: list done\n")
	if os.Getenv("PEERBENCH_KEEP") == "" {
		for _, s := range servers {
			removeAll(ctx, s.sn, made[s])
		}
	}
}

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

// printTable prints "label [unit] | server | value | /ovl1.6 | /ovl2.x |
// /floor";
// the value is the median over rounds. Ratios divide this server's figure
// by the peer's (ops/s: above 1 is faster; latencies: below 1 is faster).
func printTable(servers []*server) {
	value := func(s *server, key string) (float64, bool) {
		if s == nil || s.errs[key] != nil || len(s.figures[key]) == 0 {
			return 0, false
		}
		return median(s.figures[key]), true
	}
	find := func(name string) *server {
		for _, s := range servers {
			if s.name == name {
				return s
			}
		}
		return nil
	}
	ratio := func(v float64, peer *server, key string) string {
		p, ok := value(peer, key)
		if !ok || p == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v/p)
	}
	fmt.Printf("%-74s | %-6s | %10s | %7s | %7s | %7s\n", "figure [unit]", "server", "value", "/ovl1.6", "/ovl2.x", "/floor")
	fmt.Println(strings.Repeat("-", 126))
	for _, f := range figureList {
		for _, s := range servers {
			if !s.keepsData() && dataOnly(f.key) {
				continue
			}
			label := fmt.Sprintf("%s [%s]", f.label, f.unit)
			if v, ok := value(s, f.key); ok {
				fmt.Printf("%-74s | %-6s | %10s | %7s | %7s | %7s\n", label, s.name, valueText(v, f.unit),
					ratio(v, find("ovl1.6"), f.key), ratio(v, find("ovl2.x"), f.key), ratio(v, find(floorName), f.key))
			} else {
				err := s.errs[f.key]
				if err == nil && s.why[f.key] != "" {
					err = errors.New(s.why[f.key])
				}
				if err == nil {
					err = errors.New("no figure")
				}
				fmt.Printf("%-74s | %-6s | SKIP %s\n", label, s.name, strings.ReplaceAll(err.Error(), "\n", " "))
			}
		}
	}
}

// valueText: one decimal, two for ratios ("x"), none for counts.
func valueText(v float64, unit string) string {
	if unit == "x" {
		return fmt.Sprintf("%.2f", v)
	}
	if unit == "calls" {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
