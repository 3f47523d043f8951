package main

// verify.go: after a restart, through the API and the filesystem only:
// resolve every mutation left in flight (it happened entirely or not at
// all), check every acknowledged one survived (kind, parent, labels, and
// for committed snapshots exactly the files written before Commit, read
// through a real mount of a View), then Cleanup and check the records and
// the directories agree.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/snapshots"
)

// verifyChecks are the names Verify reports findings under.
var verifyChecks = []string{
	"acknowledged mutations survived",
	"in-flight mutations atomic",
	"records match the journal",
	dirsCheck,
	"no leftover new-/trash- after Cleanup",
	"nothing quarantined",
}

// Findings are the problems one verification found, by check.
type Findings map[string][]string

func (f Findings) add(check, format string, args ...interface{}) {
	f[check] = append(f[check], fmt.Sprintf(format, args...))
}

// Figures counts what one verification saw.
type Figures struct {
	Outcomes map[string]int // "<kind> done" / "<kind> notdone"
	// Records seen over the verifications, and those whose directory a
	// mount named (checked by identity, dir_ids.go).
	Records, DirsNamed int
}

type verifier struct {
	sn      snapshots.Snapshotter
	root    string
	scratch string
	f       Findings
	fig     *Figures
	ids     *dirIDs
}

func kindName(k snapshots.Kind) string {
	switch k {
	case snapshots.KindActive:
		return "active"
	case snapshots.KindView:
		return "view"
	case snapshots.KindCommitted:
		return "committed"
	}
	return "unknown"
}

// stat returns nil, nil for NotFound.
func (v *verifier) stat(ctx context.Context, key string) (*snapshots.Info, error) {
	info, err := v.sn.Stat(ctx, key)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &info, nil
}

func crashLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, val := range l {
		if strings.HasPrefix(k, "crash/") {
			out[k] = val
		}
	}
	return out
}

// resolve decides whether op (in flight at the kill) happened, from what
// the daemon shows, and journals "done" or "notdone".
func (v *verifier) resolve(ctx context.Context, m Model, j *Journal, op Op) error {
	before, err := v.stat(ctx, op.Key)
	if err != nil {
		return err
	}
	done := false
	switch op.Kind {
	case "prepare", "view":
		want := map[string]string{"prepare": "active", "view": "view"}[op.Kind]
		if before != nil {
			if kindName(before.Kind) != want || before.Parent != op.Parent {
				v.f.add("in-flight mutations atomic", "%s %s: found %s on %q", op.Kind, op.Key, kindName(before.Kind), before.Parent)
			}
			done = true
		}
	case "commit":
		after, err := v.stat(ctx, op.Name)
		if err != nil {
			return err
		}
		switch {
		case after != nil && before == nil:
			done = true
		case after == nil && before != nil:
		default:
			v.f.add("in-flight mutations atomic", "commit %s -> %s: active present=%v, committed present=%v", op.Key, op.Name, before != nil, after != nil)
			done = after != nil
		}
	case "gpprepare":
		after, err := v.stat(ctx, op.Name)
		if err != nil {
			return err
		}
		if before != nil {
			v.f.add("in-flight mutations atomic", "guest-pull prepare %s: the extraction key exists", op.Key)
		}
		if after != nil {
			if kindName(after.Kind) != "committed" || after.Parent != op.Parent {
				v.f.add("in-flight mutations atomic", "guest-pull prepare %s: %s on %q", op.Name, kindName(after.Kind), after.Parent)
			}
			done = true
		}
	case "remove":
		done = before == nil
	case "update":
		if before == nil {
			v.f.add("in-flight mutations atomic", "update %s: snapshot gone", op.Key)
			break
		}
		got := crashLabels(before.Labels)
		old := m[op.Key]
		switch {
		case reflect.DeepEqual(got, crashLabels(op.Labels)):
			done = true
		case old != nil && reflect.DeepEqual(got, crashLabels(old.Labels)):
		default:
			v.f.add("in-flight mutations atomic", "update %s: labels %v are neither the old nor the new set", op.Key, got)
		}
	}
	state := "notdone"
	if done {
		state = "done"
		if err := m.Apply(op); err != nil {
			return err
		}
	}
	v.fig.Outcomes[op.Kind+" "+state]++
	return j.Write(op, state)
}

// checkModel checks every key the model expects.
func (v *verifier) checkModel(ctx context.Context, m Model) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Every key's record first: a mount is attributed along the model's
	// chain only where no key of it disagrees (dir_ids.go).
	infos := map[string]*snapshots.Info{}
	for _, k := range keys {
		info, err := v.stat(ctx, k)
		if err != nil {
			return err
		}
		infos[k] = info
		if info == nil || kindName(info.Kind) != m[k].Kind || info.Parent != m[k].Parent {
			v.ids.disagree[k] = true
		}
	}
	for _, k := range keys {
		s, info := m[k], infos[k]
		if info == nil {
			v.f.add("acknowledged mutations survived", "%s (%s) is missing", k, s.Kind)
			continue
		}
		if kindName(info.Kind) != s.Kind || info.Parent != s.Parent {
			v.f.add("acknowledged mutations survived", "%s: %s on %q, want %s on %q", k, kindName(info.Kind), info.Parent, s.Kind, s.Parent)
		}
		if got, want := crashLabels(info.Labels), crashLabels(s.Labels); !reflect.DeepEqual(got, want) {
			v.f.add("acknowledged mutations survived", "%s: labels %v, want %v", k, got, want)
		}
		if s.Kind == "committed" && !s.Remote {
			if err := v.checkContent(ctx, m, k); err != nil {
				return err
			}
		}
		if s.Kind == "active" || s.Kind == "view" {
			if err := v.checkActive(ctx, m, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkActive proves an acknowledged active or view snapshot usable: its
// Mounts answer and, when they are host mounts (overlay, bind), they mount.
// Its directory was not flushed at Prepare (it was empty): after a power
// cut the daemon's start must have made it again. Mounted read-only, so
// the unmount syncs nothing for the daemon. A guest-pull mount is for the
// guest, but its lower directories (the guest-pull layers', made when a
// snapshot on them is created or mounted) must exist on the host once
// Mounts answered (Mounts makes those a power cut lost: this proves it
// does, not that they survived).
func (v *verifier) checkActive(ctx context.Context, m Model, k string) error {
	mounts, err := v.sn.Mounts(ctx, k)
	if err != nil {
		v.f.add("acknowledged mutations survived", "%s: Mounts: %v", k, err)
		return nil
	}
	v.seeMounts(m, k, mounts, true)
	for i := range mounts {
		if mounts[i].Type != "overlay" && mounts[i].Type != "bind" {
			for _, o := range mounts[i].Options {
				if !strings.HasPrefix(o, "lowerdir=") {
					continue
				}
				for _, dir := range strings.Split(strings.TrimPrefix(o, "lowerdir="), ":") {
					if st, err := os.Stat(dir); err != nil {
						v.f.add("acknowledged mutations survived", "%s: lower directory of its %s mount: %v", k, mounts[i].Type, err)
					} else if !st.IsDir() {
						v.f.add("acknowledged mutations survived", "%s: lower directory %s of its %s mount is not a directory", k, dir, mounts[i].Type)
					}
				}
			}
			return nil
		}
		mounts[i].Options = append(append([]string(nil), mounts[i].Options...), "ro")
	}
	target := filepath.Join(v.scratch, "verify-active")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	defer os.Remove(target)
	if err := mountAll(mounts, target); err != nil {
		v.f.add("acknowledged mutations survived", "%s: %v", k, err)
		return nil
	}
	return unmount(target)
}

// checkContent views committed snapshot k, reads its tree through a real
// mount and compares it with what was written before each Commit.
func (v *verifier) checkContent(ctx context.Context, m Model, k string) error {
	vk := "verify-" + k
	mounts, err := v.sn.View(ctx, vk, k)
	if err != nil {
		return fmt.Errorf("view %s: %v", k, err)
	}
	defer v.sn.Remove(ctx, vk)
	v.seeMounts(m, k, mounts, false)
	target := filepath.Join(v.scratch, vk)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	defer os.Remove(target)
	got := map[string]string{}
	if err := mountAll(mounts, target); err != nil {
		return err
	}
	werr := filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(target, p)
		got[rel] = string(b)
		return err
	})
	if err := unmount(target); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if want := m.Tree(k); !reflect.DeepEqual(got, want) {
		v.f.add("acknowledged mutations survived", "%s: content %v, want %v", k, got, want)
	}
	return nil
}

// guestPulledLabel marks a layer the daemon committed without host content.
const guestPulledLabel = "containerd.io/snapshot/guest-pull.remote"

// checkKeys compares the daemon's list with the union of the models; it
// returns the number of snapshots and of guest-pull layers among them.
func (v *verifier) checkKeys(ctx context.Context, all Model) (int, int, error) {
	n, remote := 0, 0
	err := v.sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		n++
		if info.Labels[guestPulledLabel] == "true" {
			remote++
		}
		if _, ok := all[info.Name]; !ok {
			v.f.add("records match the journal", "unexpected snapshot %s (%s)", info.Name, kindName(info.Kind))
		}
		return nil
	})
	return n, remote, err
}

// checkDirs runs Cleanup and compares snapshots/ with the records: one
// directory per record, except that a guest-pull layer without files has
// one only once a snapshot on it needed it; by count, then by identity
// (dir_ids.go).
func (v *verifier) checkDirs(ctx context.Context, records, remote int) error {
	if c, ok := v.sn.(snapshots.Cleaner); ok {
		if err := c.Cleanup(ctx); err != nil {
			v.f.add(dirsCheck, "Cleanup: %v", err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(v.root, "snapshots"))
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), "new-"), strings.HasPrefix(e.Name(), "trash-"):
			v.f.add("no leftover new-/trash- after Cleanup", "snapshots/%s", e.Name())
		case strings.HasPrefix(e.Name(), "spare-") && len(e.Name()) == len("spare-XXXXXX"):
			// Made ahead of Prepares by this run of the daemon: empty.
			if !emptySpare(filepath.Join(v.root, "snapshots", e.Name())) {
				v.f.add("spare directories hold an empty fs/ and work/ only", "snapshots/%s", e.Name())
			}
		default:
			ids = append(ids, e.Name())
		}
	}
	if dirs := len(ids); dirs > records || dirs < records-remote {
		v.f.add(dirsCheck, "%d snapshot directories, %d records (%d of them guest-pull layers)", dirs, records, remote)
	}
	v.checkIdentities(ids, records)
	v.fig.Records += records
	v.fig.DirsNamed += len(v.ids.ofKey)
	q, err := os.ReadDir(filepath.Join(v.root, "quarantine"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range q {
		v.f.add("nothing quarantined", "quarantine/%s", e.Name())
	}
	return nil
}

// Verify runs every check for the journals in dir.
func Verify(ctx context.Context, sn snapshots.Snapshotter, root, dir, scratch string, clients int, fig *Figures) (Findings, error) {
	v := &verifier{sn: sn, root: root, scratch: scratch, f: Findings{}, fig: fig, ids: newDirIDs(root)}
	all := Model{}
	for c := 0; c < clients; c++ {
		ops, err := ReadJournal(journalPath(dir, c))
		if err != nil {
			return nil, err
		}
		m, pending, err := Replay(ops)
		if err != nil {
			return nil, err
		}
		j, err := OpenJournal(journalPath(dir, c))
		if err != nil {
			return nil, err
		}
		for _, op := range pending {
			if err := v.resolve(ctx, m, j, op); err != nil {
				j.Close()
				return nil, err
			}
		}
		j.Close()
		if err := v.checkModel(ctx, m); err != nil {
			return nil, err
		}
		for k, s := range m {
			all[k] = s
		}
	}
	n, remote, err := v.checkKeys(ctx, all)
	if err != nil {
		return nil, err
	}
	return v.f, v.checkDirs(ctx, n, remote)
}

// emptySpare: dir holds nothing but an empty fs/ and an empty work/ (either
// may be missing while it is being made).
func emptySpare(dir string) bool {
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return os.IsNotExist(err) // taken meanwhile
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return os.IsNotExist(err) // taken meanwhile
	}
	for _, e := range entries {
		if (e.Name() != "fs" && e.Name() != "work") || !e.IsDir() {
			return false
		}
		inner, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if (err != nil && !os.IsNotExist(err)) || len(inner) > 0 {
			return false
		}
	}
	return true
}
