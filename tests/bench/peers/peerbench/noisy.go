// Noisy neighbour: the guest-pull workload (one chain of -depth CRI-labelled
// layer Prepares and Commits, as containerd's unpacker sends them) timed on
// a clean filesystem (everything synced first) and again right after other
// processes left -noisy-mb MiB of dirty, unsynced data on the same
// filesystem (written like `dd` without fsync). A server that syncs the
// whole filesystem (syncfs) waits for the neighbours' data; one that
// flushes only its own writes does not.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeDirty writes mb MiB to path without any fsync (page cache only).
func writeDirty(path string, mb int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9) // not all zeros: no filesystem shortcut
	}
	for i := 0; i < mb; i++ {
		buf[0] = byte(i)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// timedChain runs one CRI-labelled chain and removes it (untimed).
func (s *server) timedChain(ctx context.Context, prefix string) (float64, error) {
	start := time.Now()
	_, names, err := s.pullChain(ctx, prefix, true)
	d := time.Since(start)
	removeAll(ctx, s.sn, names)
	return ms(d), err
}

// noisyRoundsRun: per round and server (order rotating): sync, time the
// chain; write the dirty data, time the chain; delete the data, sync.
func noisyRoundsRun(ctx context.Context, servers []*server) {
	if *noisyDir == "" {
		for _, s := range servers {
			s.fail("noisy-clean", fmt.Errorf("-noisy-dir not set"))
		}
		return
	}
	noise := filepath.Join(*noisyDir, "peerbench-noise")
	for r := 0; r < *noisyRounds; r++ {
		for i := range servers {
			s := servers[(i+r)%len(servers)]
			if !s.keepsData() {
				continue
			}
			syscall.Sync()
			clean, err := s.timedChain(ctx, fmt.Sprintf("nc%d-%s", r, s.name))
			if err != nil {
				s.fail("noisy-clean", err)
				continue
			}
			if err := writeDirty(noise, *noisyMB); err != nil {
				s.fail("noisy-dirty", fmt.Errorf("writing the dirty data: %w", err))
				os.Remove(noise)
				continue
			}
			dirty, err := s.timedChain(ctx, fmt.Sprintf("nd%d-%s", r, s.name))
			os.Remove(noise)
			syscall.Sync()
			if err != nil {
				s.fail("noisy-dirty", err)
				continue
			}
			s.figures["noisy-clean"] = append(s.figures["noisy-clean"], clean)
			s.figures["noisy-dirty"] = append(s.figures["noisy-dirty"], dirty)
			s.figures["noisy-ratio"] = append(s.figures["noisy-ratio"], dirty/clean)
		}
		fmt.Fprintf(os.Stderr, "peerbench: noisy round %d/%d done\n", r+1, *noisyRounds)
	}
}
