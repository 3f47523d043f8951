package main

// dir_ids.go: which snapshot directory belongs to which record, read from
// the mounts the verification asks for anyway (Mounts of every active
// snapshot and view, a View of every committed one). checkDirs then
// compares snapshots/ with the records by identity: every directory a
// record's mounts show exists, no directory is shown for two records, and
// the directories no record showed are at most the records whose own
// directory no mount shows (a View's, a guest-pull layer nothing runs on).

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/containerd/mount"
)

const dirsCheck = "records and directories agree after Cleanup"

// dirIDs is the directory id (snapshots/<id>) seen for each key, and back.
type dirIDs struct {
	snapshots string // <root>/snapshots
	ofKey     map[string]string
	ofID      map[string]string
	// Keys whose kind or parent differ from the model's (already a
	// finding): their mounts are not attributed along the model's chain.
	disagree map[string]bool
}

func newDirIDs(root string) *dirIDs {
	return &dirIDs{snapshots: filepath.Join(root, "snapshots"), ofKey: map[string]string{}, ofID: map[string]string{}, disagree: map[string]bool{}}
}

// mountDirs returns the upper directory (empty if none) and the lower ones,
// top first, of the mounts a snapshotter gives for one snapshot: an
// overlay (or a guest-pull mount, with the same options) or a bind mount,
// whose source counts as the upper directory if it is writable and as the
// only lower one if not.
func mountDirs(ms []mount.Mount) (upper string, lowers []string) {
	for _, m := range ms {
		if m.Type == "bind" {
			ro := false
			for _, o := range m.Options {
				ro = ro || o == "ro"
			}
			if ro {
				lowers = append(lowers, m.Source)
			} else {
				upper = m.Source
			}
			continue
		}
		for _, o := range m.Options {
			switch {
			case strings.HasPrefix(o, "upperdir="):
				upper = strings.TrimPrefix(o, "upperdir=")
			case strings.HasPrefix(o, "lowerdir="):
				lowers = append(lowers, strings.Split(strings.TrimPrefix(o, "lowerdir="), ":")...)
			}
		}
	}
	return upper, lowers
}

// see records that path (<root>/snapshots/<id>/fs) is key's directory.
func (v *verifier) see(key, path string) {
	rel, err := filepath.Rel(v.ids.snapshots, path)
	parts := strings.Split(rel, string(filepath.Separator))
	if err != nil || len(parts) != 2 || parts[1] != "fs" || strings.HasPrefix(rel, "..") {
		v.f.add(dirsCheck, "%s: its mounts name %s, not a snapshot directory", key, path)
		return
	}
	id := parts[0]
	if old, ok := v.ids.ofKey[key]; ok && old != id {
		v.f.add(dirsCheck, "%s: its mounts name snapshots/%s and snapshots/%s", key, old, id)
	}
	if other, ok := v.ids.ofID[id]; ok && other != key {
		v.f.add(dirsCheck, "snapshots/%s is named by the mounts of %s and of %s", id, other, key)
	}
	v.ids.ofKey[key], v.ids.ofID[id] = id, key
}

// seeMounts attributes the directories of ms, the mounts of snapshot key
// (own = true: an active snapshot's or a view's, whose writable or only
// directory is its own; false: a View made on committed key, whose top
// lower directory is key's).
func (v *verifier) seeMounts(m Model, key string, ms []mount.Mount, own bool) {
	if v.ids.disagree[key] {
		return
	}
	upper, lowers := mountDirs(ms)
	chain := []string{}
	if !own {
		chain = append(chain, key)
	}
	for p := m[key].Parent; p != "" && m[p] != nil && len(chain) < len(lowers); p = m[p].Parent {
		chain = append(chain, p)
		if v.ids.disagree[p] {
			break // below it the daemon's chain is not the model's
		}
	}
	if upper != "" {
		v.see(key, upper)
	} else if own && m[key].Parent == "" && len(lowers) == 1 {
		v.see(key, lowers[0]) // a View of nothing: its own empty directory, read-only
		return
	}
	for i := 0; i < len(lowers) && i < len(chain); i++ {
		v.see(chain[i], lowers[i])
	}
}

// checkIdentities compares the directories in snapshots/ (ids) with the
// ones records' mounts named, for `records` records.
func (v *verifier) checkIdentities(ids []string, records int) {
	present := map[string]bool{}
	for _, id := range ids {
		present[id] = true
	}
	var unnamed []string
	for _, id := range ids {
		if _, ok := v.ids.ofID[id]; !ok {
			unnamed = append(unnamed, id)
		}
	}
	for id, key := range v.ids.ofID {
		if !present[id] {
			v.f.add(dirsCheck, "%s: snapshots/%s, which its mounts named, is gone after Cleanup", key, id)
		}
	}
	if unseen := records - len(v.ids.ofKey); len(unnamed) > unseen {
		sort.Strings(unnamed)
		if len(unnamed) > 10 {
			unnamed = append(unnamed[:10], "...")
		}
		v.f.add(dirsCheck, "%d directories no record's mounts named (%s), but only %d records whose own directory no mount shows",
			len(unnamed), strings.Join(unnamed, " "), unseen)
	}
}
