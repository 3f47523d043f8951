// go_match answers with Go's own filepath.Match and filepath.Glob for the
// cases on stdin: the reference that deploy/k8s/scripts/go_glob.py (how the
// installer reads containerd's `imports` globs) is checked against.
//
// stdin:  {"match": [[pattern, name], ...], "glob": [pattern, ...]}
// stdout: {"match": ["true"|"false"|"bad", ...], "glob": [[path, ...] or null if bad, ...]}
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

type request struct {
	Match [][2]string `json:"match"`
	Glob  []string    `json:"glob"`
}

type reply struct {
	Match []string   `json:"match"`
	Glob  [][]string `json:"glob"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "go_match: stdin:", err)
		os.Exit(1)
	}
	out := reply{Match: []string{}, Glob: [][]string{}}
	for _, c := range req.Match {
		ok, err := filepath.Match(c[0], c[1])
		switch {
		case errors.Is(err, filepath.ErrBadPattern):
			out.Match = append(out.Match, "bad")
		case err != nil:
			fmt.Fprintln(os.Stderr, "go_match:", err)
			os.Exit(1)
		default:
			out.Match = append(out.Match, fmt.Sprint(ok))
		}
	}
	for _, p := range req.Glob {
		paths, err := filepath.Glob(p)
		if err != nil {
			out.Glob = append(out.Glob, nil)
			continue
		}
		if paths == nil {
			paths = []string{}
		}
		out.Glob = append(out.Glob, paths)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "go_match: stdout:", err)
		os.Exit(1)
	}
}
