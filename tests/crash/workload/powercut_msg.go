package main

// powercut_msg.go: what the power-cut host (powercut_host.go) and the guest
// (powercut_guest.go, the VM's /init) say to each other over one
// virtio-serial port: a stream of JSON objects, one per message.
//
// guest -> host                          host -> guest
//   hello                                  boot (the boot's plan, journals)
//   canary-state (last boot's canaries)    ok (a journal record is kept)
//   journal (one record; waits for ok)     canary (write the unsynced canary)
//   log (daemon output)
//   daemon-started, work, canary-written
//   verified (findings, outcomes), unexpected (an RPC error)
//   final (clean stop done), fatal (the guest cannot go on)

import (
	"bytes"
	"fmt"
	"os"
)

// pcStartCheck is the check a daemon that does not come up fails.
const pcStartCheck = "daemon starts after every power cut"

type pcBoot struct {
	Boot     int            `json:"boot"`
	Mode     string         `json:"mode"` // strict, eager, default: the guest's writeback
	Clients  int            `json:"clients"`
	Seed     int64          `json:"seed"`
	Journals map[int]string `json:"journals"`
	// StartupCut: start the daemon and wait for the cut (no verify, no work).
	StartupCut bool `json:"startup_cut,omitempty"`
	// Final: verify, stop the daemon with SIGTERM, unmount, power off.
	Final bool `json:"final,omitempty"`
	// Preload: LD_PRELOAD of the daemon (the negative control's no-sync shim).
	Preload string `json:"preload,omitempty"`
	Token   string `json:"token"` // this boot's canary content
	Prev    string `json:"prev"`  // the previous boot's token ("" on the first)
}

type pcMsg struct {
	T        string         `json:"t"`
	Boot     *pcBoot        `json:"boot,omitempty"`
	Client   int            `json:"c,omitempty"`
	Line     string         `json:"line,omitempty"`
	Text     string         `json:"text,omitempty"`
	Findings Findings       `json:"findings,omitempty"`
	Outcomes map[string]int `json:"outcomes,omitempty"`
	Synced   string         `json:"synced,omitempty"`   // canary-state
	Unsynced string         `json:"unsynced,omitempty"` // canary-state
}

const canarySize = 256 << 10

// canaryContent is what a canary file of `token` holds.
func canaryContent(token, kind string) []byte {
	line := []byte(fmt.Sprintf("%s %s canary\n", token, kind))
	return bytes.Repeat(line, canarySize/len(line)+1)[:canarySize]
}

// canaryState says what is left of the canary `kind` of `token` at path:
// missing, empty, short (a prefix), complete, or wrong (other bytes).
func canaryState(path, token, kind string) string {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "missing"
	}
	if err != nil {
		return "wrong: " + err.Error()
	}
	want := canaryContent(token, kind)
	switch {
	case len(b) == 0:
		return "empty"
	case bytes.Equal(b, want):
		return "complete"
	case len(b) < len(want) && bytes.Equal(b, want[:len(b)]):
		return "short"
	}
	if len(b) <= len(want) && zerosOrPrefix(b, want) {
		return "short" // with blocks the cut left unwritten (zeros)
	}
	return fmt.Sprintf("wrong (%d bytes)", len(b))
}

// zerosOrPrefix: every byte of b is want's byte at that offset or zero.
func zerosOrPrefix(b, want []byte) bool {
	for i, c := range b {
		if c != 0 && c != want[i] {
			return false
		}
	}
	return true
}
