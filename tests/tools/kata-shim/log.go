package main

import (
	"fmt"
	"os"
	"time"
)

// decisionLog appends one line per decision to GUEST_PULL_SHIM_LOG, which
// the tests read. Lines start with the time and the shim's pid.
type decisionLog struct{ path string }

func newDecisionLog() *decisionLog {
	p := os.Getenv("GUEST_PULL_SHIM_LOG")
	if p == "" {
		p = "/tmp/kata-shim.log"
	}
	return &decisionLog{path: p}
}

func (l *decisionLog) Printf(format string, args ...interface{}) {
	line := fmt.Sprintf("%s kata-shim[%d]: %s\n", time.Now().UTC().Format("15:04:05.000"), os.Getpid(),
		fmt.Sprintf(format, args...))
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprint(os.Stderr, line)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line)
}
