// guestvm: runs one container in a real Linux guest whose kernel verifies
// every image layer with dm-verity (the guest agent, //guest_agent). It
// starts QEMU (TCG by default, no network device at all) with the kernel and
// the agent's initramfs, hands the agent the request over virtio-serial,
// serves the agent's manifest and blob fetches from a registry on loopback,
// relays the process's stdout/stderr and exits with its exit code.
//
// Usage:
//
//	guestvm run --kernel K --initrd I --request request.json [--registry 127.0.0.1:PORT]
//	            [--timeout 300s] [--memory 512] [--accel tcg|kvm] [--console FILE]
//	            [--result FILE] [--log FILE] [--verbose] [--qemu qemu-system-x86_64]
//
// Exit: the process's exit code; 123 usage or host-side error; 124 timeout;
// 125 the guest reported a failure (message on stderr, details in --result);
// 126 the VM stopped without reporting a result. tests/vm/README.md is the
// full contract.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

const (
	exitHostError = 123
	exitTimeout   = 124
	exitGuestFail = 125
	exitNoResult  = 126
)

type options struct {
	kernel, initrd, request, registry string
	timeout                           time.Duration
	memoryMB                          int
	accel                             string
	console, result, agentLog         string
	verbose                           bool
	qemu                              string
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("guestvm run", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.kernel, "kernel", "", "guest kernel (vmlinuz)")
	fs.StringVar(&o.initrd, "initrd", "", "initramfs with the guest agent as /init (tests/vm/build_initramfs.sh)")
	fs.StringVar(&o.request, "request", "", "request JSON file (storage + process)")
	fs.StringVar(&o.registry, "registry", "", "registry host:port (loopback, plain HTTP); default: the host in the request's source")
	fs.DurationVar(&o.timeout, "timeout", 300*time.Second, "bound for the whole run")
	fs.IntVar(&o.memoryMB, "memory", 512, "guest memory in MiB")
	fs.StringVar(&o.accel, "accel", "tcg", "tcg, or kvm (opt-in; bounded by --timeout like everything else)")
	fs.StringVar(&o.console, "console", "", "write the guest's serial console here (default: a temp file, removed)")
	fs.StringVar(&o.result, "result", "", "write the run's result JSON here")
	fs.StringVar(&o.agentLog, "log", "", "append the agent's progress lines to this file")
	fs.BoolVar(&o.verbose, "verbose", false, "print the agent's progress lines and timings on stderr")
	fs.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "QEMU binary")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	for name, v := range map[string]string{"--kernel": o.kernel, "--initrd": o.initrd, "--request": o.request} {
		if v == "" {
			return nil, fmt.Errorf("%s is required", name)
		}
	}
	if o.accel != "tcg" && o.accel != "kvm" {
		return nil, fmt.Errorf("--accel must be tcg or kvm")
	}
	if o.timeout <= 0 || o.memoryMB < 128 {
		return nil, fmt.Errorf("--timeout must be positive and --memory at least 128")
	}
	return o, nil
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: guestvm run --kernel K --initrd I --request request.json [--registry HOST:PORT] [flags]")
		os.Exit(exitHostError)
	}
	o, err := parseFlags(os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "guestvm: %v\n", err)
		os.Exit(exitHostError)
	}
	res := run(o)
	if o.result != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.result, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "guestvm: write result: %v\n", err)
		}
	}
	if res.Error != "" {
		fmt.Fprintf(os.Stderr, "guestvm: %s\n", res.Error)
	}
	if o.verbose {
		fmt.Fprintf(os.Stderr, "guestvm: timings_ms hello=%d first_output=%d total=%d\n",
			res.Timings.HelloMs, res.Timings.FirstOutputMs, res.Timings.TotalMs)
	}
	os.Exit(res.exitStatus)
}
