// Snapshot operations with data (the figures of the former
// tests/bench/snapbench, now interleaved with the other servers): a chain
// whose layers are mounted and written between Prepare and Commit, Usage
// of an active snapshot (computed by walking it), a large Commit under
// concurrent Stat calls, and Remove of the chain. Needs -scratch (mount
// points); without it these figures are skipped.
package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
)

const statWorkers = 8

var dataKeys = []string{"data-rpc", "data-cycle", "usage-active", "big-commit", "big-stat50",
	"big-stat99", "big-statn", "remove", "remove-total"}

func addDataFigures() {
	addFigure("data-rpc", fmt.Sprintf("data chain of %d layers: Prepare+Commit RPCs per layer, mean", *dataLayers), "ms")
	addFigure("data-cycle", "data chain: layer cycle incl. mount + write 2 files + umount, mean", "ms")
	addFigure("usage-active", fmt.Sprintf("Usage of an active snapshot of %d files (computed), median of 10", *usageFiles), "ms")
	addFigure("big-commit", fmt.Sprintf("Commit of a %d MiB base layer written without sync", *bigMB), "ms")
	addFigure("big-stat50", fmt.Sprintf("Stat p50 during that Commit (%d goroutines)", statWorkers), "us")
	addFigure("big-stat99", fmt.Sprintf("Stat p99 during that Commit (%d goroutines)", statWorkers), "us")
	addFigure("big-statn", "Stat calls completed during that Commit", "calls")
	addFigure("remove", "Remove of the data chain, top first, per layer, mean", "ms")
	addFigure("remove-total", "Remove of the data chain + Cleanup, total", "ms")
}

// withMounted mounts mounts on a fresh directory under -scratch while fn runs.
func withMounted(mounts []mount.Mount, fn func(dir string) error) (err error) {
	dir, err := os.MkdirTemp(*scratch, "m")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := mount.All(mounts, dir); err != nil {
		// The options can be long (base64 volumes): keep the type and the
		// error's end, which says why.
		msg := err.Error()
		if len(msg) > 160 {
			msg = "..." + msg[len(msg)-160:]
		}
		kind := "?"
		if len(mounts) > 0 {
			kind = mounts[0].Type
		}
		return fmt.Errorf("mount of type %s failed: %s", kind, strings.ReplaceAll(msg, "\n", " "))
	}
	defer func() {
		if uerr := mount.UnmountAll(dir, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmount %s: %w", dir, uerr)
		}
	}()
	return fn(dir)
}

// fillDir writes n files root/d<i % dirs>/f<i> with data(i), no sync.
func fillDir(root string, n, dirs int, data func(i int) []byte) error {
	for i := 0; i < n; i++ {
		sub := filepath.Join(root, fmt.Sprintf("d%02d", i%dirs))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), data(i), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// dataRound runs the data figures once on s; a failing step skips the rest
// of the round (each error is kept for its figure).
func (s *server) dataRound(ctx context.Context, r int) {
	if *scratch == "" {
		for _, k := range dataKeys {
			s.fail(k, fmt.Errorf("-scratch not set"))
		}
		return
	}
	prefix := fmt.Sprintf("d%d-%s", r, s.name)
	names, err := s.dataChain(ctx, prefix)
	if err != nil {
		s.fail("data-rpc", err)
		s.fail("data-cycle", err)
		removeAll(ctx, s.sn, names)
		return
	}
	if err := s.usageActive(ctx, prefix, names[len(names)-1]); err != nil {
		s.fail("usage-active", err)
	}
	if err := s.bigCommit(ctx, prefix, names); err != nil {
		for _, k := range []string{"big-commit", "big-stat50", "big-stat99", "big-statn"} {
			s.fail(k, err)
		}
	}
	if err := s.removeChain(ctx, names); err != nil {
		s.fail("remove", err)
		s.fail("remove-total", err)
	}
}

func (s *server) dataChain(ctx context.Context, prefix string) ([]string, error) {
	small := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(small)
	var rpc, cycle time.Duration
	var names []string
	parent := ""
	for i := 0; i < *dataLayers; i++ {
		name := fmt.Sprintf("%s-layer-%03d", prefix, i)
		key := name + "-active"
		t0 := time.Now()
		mounts, err := s.sn.Prepare(ctx, key, parent)
		if err != nil {
			return names, fmt.Errorf("Prepare %s: %w", key, err)
		}
		t1 := time.Now()
		err = withMounted(mounts, func(dir string) error {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("layer-%03d", i)), small, 0o644); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "etc", "layer"), []byte(name+"\n"), 0o644)
		})
		if err != nil {
			_ = s.sn.Remove(ctx, key)
			return names, fmt.Errorf("writing %s: %w", key, err)
		}
		t2 := time.Now()
		if err := s.sn.Commit(ctx, name, key); err != nil {
			_ = s.sn.Remove(ctx, key)
			return names, fmt.Errorf("Commit %s: %w", name, err)
		}
		t3 := time.Now()
		rpc += t1.Sub(t0) + t3.Sub(t2)
		cycle += t3.Sub(t0)
		names = append(names, name)
		parent = name
	}
	// A view of the top layer sees the first layer's file and the top's etc/layer.
	view := prefix + "-view"
	mounts, err := s.sn.View(ctx, view, parent)
	if err != nil {
		return names, fmt.Errorf("View: %w", err)
	}
	err = withMounted(mounts, func(dir string) error {
		if _, err := os.Stat(filepath.Join(dir, "layer-000")); err != nil {
			return fmt.Errorf("top layer view: %w", err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "etc", "layer"))
		if err != nil || strings.TrimSpace(string(b)) != parent {
			return fmt.Errorf("top layer view: etc/layer = %q, %v (want %s)", b, err, parent)
		}
		return nil
	})
	_ = s.sn.Remove(ctx, view)
	if err != nil {
		return names, err
	}
	s.figures["data-rpc"] = append(s.figures["data-rpc"], ms(rpc)/float64(*dataLayers))
	s.figures["data-cycle"] = append(s.figures["data-cycle"], ms(cycle)/float64(*dataLayers))
	return names, nil
}

func (s *server) usageActive(ctx context.Context, prefix, parent string) error {
	key := prefix + "-usage-active"
	mounts, err := s.sn.Prepare(ctx, key, parent)
	if err != nil {
		return fmt.Errorf("Prepare %s: %w", key, err)
	}
	defer s.sn.Remove(ctx, key)
	buf := make([]byte, 4096)
	err = withMounted(mounts, func(dir string) error {
		return fillDir(filepath.Join(dir, "usage"), *usageFiles, 50, func(int) []byte { return buf })
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	var lat []time.Duration
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		u, err := s.sn.Usage(ctx, key)
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("Usage %s: %w", key, err)
		}
		if u.Inodes < int64(*usageFiles) || u.Size < int64(*usageFiles)*4096 {
			return fmt.Errorf("Usage %s: %+v, want >= %d inodes and %d bytes", key, u, *usageFiles, *usageFiles*4096)
		}
	}
	s.figures["usage-active"] = append(s.figures["usage-active"], p50(lat)/1000)
	return nil
}

// bigCommit: a base layer (its mount is a bind mount of the upper
// directory, so unmounting does not sync) written with -big-mb MiB, then
// committed while statWorkers goroutines Stat the chain in a loop; only
// Stat calls that ran entirely during the Commit count.
func (s *server) bigCommit(ctx context.Context, prefix string, chain []string) error {
	key, name := prefix+"-big-active", prefix+"-big"
	mounts, err := s.sn.Prepare(ctx, key, "")
	if err != nil {
		return fmt.Errorf("Prepare %s: %w", key, err)
	}
	chunk := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(chunk)
	err = withMounted(mounts, func(dir string) error {
		return fillDir(filepath.Join(dir, "big"), *bigMB, 10, func(i int) []byte {
			chunk[0], chunk[1] = byte(i), byte(i>>8)
			return chunk
		})
	})
	if err != nil {
		_ = s.sn.Remove(ctx, key)
		return fmt.Errorf("writing %s: %w", key, err)
	}
	type sample struct {
		t0 time.Time
		d  time.Duration
	}
	var (
		stop    atomic.Bool
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
			for i := 0; i < 1000000 && !stop.Load(); i++ {
				t0 := time.Now()
				if _, err := s.sn.Stat(ctx, chain[(w*31+i)%len(chain)]); err != nil {
					mu.Lock()
					statErr = err
					mu.Unlock()
					break
				}
				mine = append(mine, sample{t0, time.Since(t0)})
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}(w)
	}
	commitStart := time.Now()
	close(started)
	err = s.sn.Commit(ctx, name, key)
	commitEnd := time.Now()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		_ = s.sn.Remove(ctx, key)
		return fmt.Errorf("Commit %s: %w", name, err)
	}
	defer s.sn.Remove(ctx, name)
	if statErr != nil {
		return fmt.Errorf("Stat during Commit: %w", statErr)
	}
	var lat []time.Duration
	for _, smp := range samples {
		if !smp.t0.Before(commitStart) && !smp.t0.Add(smp.d).After(commitEnd) {
			lat = append(lat, smp.d)
		}
	}
	if u, err := s.sn.Usage(ctx, name); err != nil || u.Size < int64(*bigMB)<<20 {
		return fmt.Errorf("Usage %s: %+v, %v (want >= %d MiB)", name, u, err, *bigMB)
	}
	s.figures["big-commit"] = append(s.figures["big-commit"], ms(commitEnd.Sub(commitStart)))
	s.figures["big-statn"] = append(s.figures["big-statn"], float64(len(lat)))
	if len(lat) == 0 { // a fast Commit: no sample this round (not an error)
		s.why["big-stat50"] = "no Stat call completed during the Commit in any round"
		s.why["big-stat99"] = s.why["big-stat50"]
		return nil
	}
	s.figures["big-stat50"] = append(s.figures["big-stat50"], p50(lat))
	s.figures["big-stat99"] = append(s.figures["big-stat99"], p99(lat))
	return nil
}

func (s *server) removeChain(ctx context.Context, names []string) error {
	t0 := time.Now()
	for i := len(names) - 1; i >= 0; i-- {
		if err := s.sn.Remove(ctx, names[i]); err != nil {
			return fmt.Errorf("Remove %s: %w", names[i], err)
		}
	}
	removed := time.Since(t0)
	if c, ok := s.sn.(snapshots.Cleaner); ok {
		if err := c.Cleanup(ctx); err != nil && !errdefs.IsNotImplemented(err) {
			return fmt.Errorf("Cleanup: %w", err)
		}
	}
	total := time.Since(t0)
	s.figures["remove"] = append(s.figures["remove"], ms(removed)/float64(len(names)))
	s.figures["remove-total"] = append(s.figures["remove-total"], ms(total))
	return nil
}
