package main

// One VM run: QEMU with the agent's port on a unix socket we listen on, the
// conversation with the agent, and the result.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// result is what --result writes (and what decides the exit status).
type result struct {
	ExitCode *int   `json:"exit_code,omitempty"` // the process's, when it ran
	Error    string `json:"error,omitempty"`
	Kind     string `json:"kind,omitempty"`  // guest failure kind, or "timeout" / "no-result" / "host"
	Layer    string `json:"layer,omitempty"` // layer digest at fault, if any
	Timings  struct {
		HelloMs       int64 `json:"hello_ms"`        // QEMU start to the agent's hello
		FirstOutputMs int64 `json:"first_output_ms"` // QEMU start to the process's first output byte
		TotalMs       int64 `json:"total_ms"`
	} `json:"timings"`
	BlobBytes  int64 `json:"blob_bytes"` // bytes served to the guest
	exitStatus int
}

func hostError(format string, args ...interface{}) result {
	return result{Error: fmt.Sprintf(format, args...), Kind: "host", exitStatus: exitHostError}
}

type storageSource struct {
	Storage struct {
		Source string `json:"source"`
	} `json:"storage"`
}

func run(o *options) result {
	request, err := os.ReadFile(o.request)
	if err != nil {
		return hostError("read request: %v", err)
	}
	var req storageSource
	if err := json.Unmarshal(request, &req); err != nil {
		return hostError("request %s is not JSON: %v", o.request, err)
	}
	host, repo, err := splitSource(req.Storage.Source)
	if err != nil {
		return hostError("%v", err)
	}
	if o.registry != "" {
		host = o.registry
	}
	if host == "" {
		return hostError("no registry: the source has no host and --registry is not set")
	}
	if !isLoopback(host) {
		return hostError("registry %s is not on loopback", host)
	}
	tmp, err := os.MkdirTemp("", "guestvm.")
	if err != nil {
		return hostError("temp dir: %v", err)
	}
	defer os.RemoveAll(tmp)
	console := o.console
	if console == "" {
		console = filepath.Join(tmp, "console.log")
	}
	sock := filepath.Join(tmp, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return hostError("listen %s: %v", sock, err)
	}
	defer ln.Close()

	start := time.Now()
	deadline := start.Add(o.timeout)
	cmd := exec.Command(o.qemu, qemuArgs(o, sock, console)...)
	cmd.Stdin = nil
	// QEMU must not outlive the runner (e.g. a container stopped by its
	// runtime kills only the runner).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	qemuOut, _ := os.Create(filepath.Join(tmp, "qemu.out"))
	cmd.Stdout, cmd.Stderr = qemuOut, qemuOut
	if err := cmd.Start(); err != nil {
		return hostError("start %s: %v", o.qemu, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	res := converse(o, ln, request, newRegistryClient(host, repo), start, deadline, exited)
	res.Timings.TotalMs = time.Since(start).Milliseconds()
	// After its last frame the agent powers off: give it a moment. Without a
	// result from the agent there is nothing to wait for.
	grace := 15 * time.Second
	if res.ExitCode == nil && res.Kind != "" && res.exitStatus != exitGuestFail {
		grace = 0
	}
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-exited
	}
	if res.exitStatus == exitNoResult || res.exitStatus == exitTimeout || o.verbose {
		fmt.Fprint(os.Stderr, consoleTail(console, filepath.Join(tmp, "qemu.out"), 40))
	}
	return res
}

func isLoopback(hostPort string) bool {
	h, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		h = hostPort
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func qemuArgs(o *options, sock, console string) []string {
	accel := o.accel
	return []string{
		"-accel", accel, "-nographic", "-nodefaults", "-no-reboot",
		"-m", fmt.Sprint(o.memoryMB), "-smp", "1",
		"-kernel", o.kernel, "-initrd", o.initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4",
		"-serial", "file:" + console,
		"-monitor", "none",
		"-nic", "none",
		"-device", "virtio-serial-pci,id=vs0",
		"-chardev", "socket,id=agent,path=" + sock,
		"-device", "virtserialport,bus=vs0.0,chardev=agent,name=agent.0",
	}
}

// converse runs the protocol until the agent reports a result, the VM stops
// or the deadline passes.
func converse(o *options, ln net.Listener, request []byte, reg *registryClient, start, deadline time.Time,
	exited <-chan error) result {
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() { c, err := ln.Accept(); acc <- accepted{c, err} }()
	var conn net.Conn
	select {
	case a := <-acc:
		if a.err != nil {
			return hostError("accept: %v", a.err)
		}
		conn = a.c
	case err := <-exited:
		return result{Error: fmt.Sprintf("QEMU exited before connecting: %v", err), Kind: "no-result", exitStatus: exitNoResult}
	case <-time.After(time.Until(deadline)):
		return result{Error: "timeout waiting for QEMU", Kind: "timeout", exitStatus: exitTimeout}
	}
	defer conn.Close()
	conn.SetDeadline(deadline)

	var agentLog *os.File
	if o.agentLog != "" {
		f, err := os.OpenFile(o.agentLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return hostError("open --log %s: %v", o.agentLog, err)
		}
		defer f.Close()
		agentLog = f
	}
	var res result
	for {
		f, err := readFrame(conn)
		if err != nil {
			if time.Now().After(deadline) {
				return result{Error: fmt.Sprintf("timeout after %v", o.timeout), Kind: "timeout", exitStatus: exitTimeout,
					Timings: res.Timings, BlobBytes: res.BlobBytes}
			}
			res.Error = fmt.Sprintf("the VM stopped without reporting a result (%v)", err)
			res.Kind = "no-result"
			res.exitStatus = exitNoResult
			return res
		}
		switch f.typ {
		case frameHello:
			res.Timings.HelloMs = time.Since(start).Milliseconds()
			if o.verbose {
				fmt.Fprintf(os.Stderr, "guestvm: agent hello %s\n", f.payload)
			}
			if err := writeFrame(conn, frameRequest, request); err != nil {
				return hostError("send request: %v", err)
			}
		case frameGet:
			n, err := reg.serveGet(conn, f.payload)
			res.BlobBytes += n
			if err != nil {
				return hostError("serve %s: %v", f.payload, err)
			}
		case frameLog:
			if agentLog != nil {
				fmt.Fprintf(agentLog, "%s\n", strings.TrimRight(string(f.payload), "\n"))
			}
			if o.verbose {
				fmt.Fprintf(os.Stderr, "guest: %s\n", strings.TrimRight(string(f.payload), "\n"))
			}
		case frameStdout, frameStderr:
			if res.Timings.FirstOutputMs == 0 {
				res.Timings.FirstOutputMs = time.Since(start).Milliseconds()
			}
			if f.typ == frameStdout {
				os.Stdout.Write(f.payload)
			} else {
				os.Stderr.Write(f.payload)
			}
		case frameExit:
			var x struct {
				ExitCode int `json:"exit_code"`
			}
			if err := json.Unmarshal(f.payload, &x); err != nil {
				return hostError("bad exit frame %q", f.payload)
			}
			res.ExitCode = &x.ExitCode
			res.exitStatus = x.ExitCode
			return res
		case frameFailure:
			var x struct {
				Error string `json:"error"`
				Kind  string `json:"kind"`
				Layer string `json:"layer"`
			}
			if err := json.Unmarshal(f.payload, &x); err != nil {
				x.Error, x.Kind = string(f.payload), "internal"
			}
			res.Error = "guest: " + x.Error
			res.Kind, res.Layer = x.Kind, x.Layer
			res.exitStatus = exitGuestFail
			return res
		default:
			return hostError("unexpected frame %q from the guest", f.typ)
		}
	}
}

// consoleTail returns the last lines of the guest console and QEMU's output.
func consoleTail(console, qemuOut string, lines int) string {
	var b strings.Builder
	for _, f := range []string{console, qemuOut} {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "guestvm: --- %s (last %d lines)\n", filepath.Base(f), len(all))
		for _, l := range all {
			fmt.Fprintf(&b, "  | %s\n", l)
		}
	}
	return b.String()
}
