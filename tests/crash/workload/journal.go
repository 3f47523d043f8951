package main

// journal.go: the client-side journal. Every mutation is written (and
// fsync'd) as "inflight" before its RPC, and as "ack" after the RPC returned
// OK, or "fail" when it returned a definite error. After a kill the verifier
// appends "done" or "notdone" for each mutation left in flight, from what it
// observed through the API. The model of what must exist is a replay of the
// journal files, never of anything kept in memory across a kill.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Op is one mutation, as journaled.
type Op struct {
	Seq    int               `json:"seq"`
	State  string            `json:"state"` // inflight, ack, fail, done, notdone
	Kind   string            `json:"kind"`  // prepare, view, commit, remove, update, gpprepare
	Key    string            `json:"key"`
	Parent string            `json:"parent,omitempty"`
	Name   string            `json:"name,omitempty"`  // commit, gpprepare: the committed name
	Files  map[string]string `json:"files,omitempty"` // commit: files written before Commit
	Labels map[string]string `json:"labels,omitempty"`
}

// Journal appends records to one client's file, fsync'ing each.
type Journal struct {
	f    *os.File
	path string
	seq  int
}

// journalMirror, when set, receives every record after it is on disk and
// before Write returns (the power-cut guest sends it to the host, which
// outlives the guest's disk).
var journalMirror func(path string, line []byte) error

func OpenJournal(path string) (*Journal, error) {
	ops, err := ReadJournal(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	j := &Journal{f: f, path: path}
	for _, op := range ops {
		if op.Seq > j.seq {
			j.seq = op.Seq
		}
	}
	return j, nil
}

func (j *Journal) Close() error { return j.f.Close() }

// Next gives op a fresh sequence number.
func (j *Journal) Next(op *Op) { j.seq++; op.Seq = j.seq }

// Write appends op in `state` and fsyncs the file.
func (j *Journal) Write(op Op, state string) error {
	op.State = state
	b, err := json.Marshal(op)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	if journalMirror != nil {
		return journalMirror(j.path, b)
	}
	return nil
}

// ReadJournal returns the records of a journal file (none if missing).
func ReadJournal(path string) ([]Op, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("%s: bad record %q: %v", path, sc.Text(), err)
		}
		ops = append(ops, op)
	}
	return ops, sc.Err()
}

// Snap is what the model expects of one snapshot.
type Snap struct {
	Kind   string // active, view, committed
	Remote bool   // a guest-pull layer: no host content, never a local parent
	Parent string
	Files  map[string]string // committed: files this layer added
	Labels map[string]string
}

// Model is the expected state of one client's keys.
type Model map[string]*Snap

// Replay builds the model from a journal: acknowledged mutations and
// in-flight ones resolved "done" are applied in order; it also returns the
// mutations still in flight (unresolved).
func Replay(ops []Op) (Model, []Op, error) {
	m := Model{}
	bySeq := map[int]Op{}
	final := map[int]string{}
	var order []int
	for _, op := range ops {
		if op.State == "inflight" {
			bySeq[op.Seq] = op
			order = append(order, op.Seq)
		}
		final[op.Seq] = op.State
	}
	sort.Ints(order)
	var pending []Op
	for _, seq := range order {
		switch final[seq] {
		case "ack", "done":
			if err := m.Apply(bySeq[seq]); err != nil {
				return nil, nil, fmt.Errorf("replay seq %d: %v", seq, err)
			}
		case "inflight":
			pending = append(pending, bySeq[seq])
		}
	}
	return m, pending, nil
}

// Apply changes the model as a successful op does.
func (m Model) Apply(op Op) error {
	switch op.Kind {
	case "prepare", "view":
		kind := "active"
		if op.Kind == "view" {
			kind = "view"
		}
		labels := map[string]string{}
		for k, v := range op.Labels {
			labels[k] = v
		}
		m[op.Key] = &Snap{Kind: kind, Parent: op.Parent, Labels: labels}
	case "gpprepare": // a guest-pull layer: committed as Name, no files
		m[op.Name] = &Snap{Kind: "committed", Parent: op.Parent, Remote: true, Labels: map[string]string{}}
	case "commit":
		s, ok := m[op.Key]
		if !ok {
			return fmt.Errorf("commit of unknown %s", op.Key)
		}
		delete(m, op.Key)
		m[op.Name] = &Snap{Kind: "committed", Parent: s.Parent, Files: op.Files, Labels: s.Labels}
	case "remove":
		delete(m, op.Key)
	case "update":
		s, ok := m[op.Key]
		if !ok {
			return fmt.Errorf("update of unknown %s", op.Key)
		}
		s.Labels = op.Labels
	default:
		return fmt.Errorf("unknown op kind %q", op.Kind)
	}
	return nil
}

// Children returns the keys whose parent is `key`.
func (m Model) Children(key string) []string {
	var out []string
	for k, s := range m {
		if s.Parent == key {
			out = append(out, k)
		}
	}
	return out
}

// Tree returns every file a mount of `key` must show: its ancestors' and
// its own, by path.
func (m Model) Tree(key string) map[string]string {
	out := map[string]string{}
	for k := key; k != ""; {
		s := m[k]
		if s == nil {
			break
		}
		for p, c := range s.Files {
			if _, ok := out[p]; !ok {
				out[p] = c
			}
		}
		k = s.Parent
	}
	return out
}

func journalPath(dir string, client int) string {
	return filepath.Join(dir, fmt.Sprintf("client-%d.jsonl", client))
}
