package main

// powercut_host.go: the power-cut suite's host side (-mode powercut, run by
// tests/powercut/powercut.sh). It boots the guest (powercut_guest.go as the
// initramfs's /init, the daemon inside) on two raw ext4 disks, keeps the
// clients' journals the guest streams, and at a random moment of the
// workload (or of the daemon's startup) asks the guest to write a canary it
// never syncs and SIGKILLs QEMU as soon as that is written: the guest's page
// cache, with everything not yet written to the virtual disks, dies with it.
// The next boot verifies every acknowledged mutation on the same disks. The
// last boot verifies, stops the daemon with SIGTERM and powers off; e2fsck
// then checks the data disk.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var pcChecks = append([]string{
	pcStartCheck,
	"no unexpected RPC error while the daemon runs",
	"guest runs every boot to the cut",
}, append(verifyChecks,
	"an fsync'd canary survives every power cut",
	"unsynced writes are lost in a power cut (control)",
	"daemon stops cleanly at the end",
	"data filesystem clean after the last boot (e2fsck -fn)",
)...)

type pcHost struct {
	qemu, kernel, initrd, accel, work string
	preload                           string   // the daemon's LD_PRELOAD in the guest
	modes                             []string // writeback modes the boots cycle through
	memory, clients, minMs, maxMs     int
	rng                               *rand.Rand
	f                                 Findings
	outcomes                          map[string]int
	acked, cuts, startupCuts          int
	modeBoots                         map[string]int
	syncedOK, syncedChecked           int
	unsynced                          map[string]int // state -> cuts
	toDaemon, toWork, worked          time.Duration  // QEMU start to the daemon, to the workload; workload to cut
	daemonBoots, workBoots            int
	prevUnsynced                      bool // the last boot wrote its unsynced canary
}

func (h *pcHost) journal(c int) string { return journalPath(filepath.Join(h.work, "journal"), c) }

func (h *pcHost) appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}

func (h *pcHost) qemuArgs(sock, console string) []string {
	drive := func(file, id, serial string) []string {
		return []string{"-drive", "file=" + file + ",if=none,id=" + id + ",format=raw,cache=writeback",
			"-device", "virtio-blk-pci,drive=" + id + ",serial=" + serial}
	}
	args := []string{"-accel", h.accel, "-nographic", "-nodefaults", "-no-reboot",
		"-m", fmt.Sprint(h.memory), "-smp", "1", "-kernel", h.kernel, "-initrd", h.initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init",
		"-serial", "file:" + console, "-monitor", "none", "-nic", "none"}
	args = append(args, drive(filepath.Join(h.work, "data.img"), "d0", "pcdata")...)
	args = append(args, drive(filepath.Join(h.work, "canary.img"), "d1", "pccanary")...)
	return append(args, "-device", "virtio-serial-pci,id=vs0",
		"-chardev", "socket,id=pc,path="+sock,
		"-device", "virtserialport,bus=vs0.0,chardev=pc,name=pc.0")
}

// canaryState checks what the guest found of the last boot's canaries.
func (h *pcHost) canaryState(m pcMsg) {
	h.syncedChecked++
	if m.Synced == "complete" {
		h.syncedOK++
	} else {
		h.f.add("an fsync'd canary survives every power cut", "after cut %d: %s", h.cuts, m.Synced)
	}
	if h.prevUnsynced {
		state := strings.SplitN(m.Unsynced, " ", 2)[0]
		h.unsynced[state]++
	}
	h.prevUnsynced = false
}

// bootOnce runs one boot; it returns an error when the run cannot go on.
func (h *pcHost) bootOnce(b *pcBoot) error {
	tag := fmt.Sprintf("boot %d (%s)", b.Boot, b.Mode)
	b.Journals = map[int]string{}
	for c := 0; c < h.clients; c++ {
		text, err := os.ReadFile(h.journal(c))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		b.Journals[c] = string(text)
	}
	sock := filepath.Join(h.work, "pc.sock")
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()
	console := filepath.Join(h.work, fmt.Sprintf("console-%d.log", b.Boot))
	cmd := exec.Command(h.qemu, h.qemuArgs(sock, console)...)
	qout, err := os.OpenFile(filepath.Join(h.work, "qemu.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer qout.Close()
	cmd.Stdout, cmd.Stderr = qout, qout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %v", h.qemu, err)
	}
	exitCh := make(chan error, 1)
	go func() { exitCh <- cmd.Wait() }()
	started, workAt := time.Now(), time.Time{}
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Kill()
			killed = true
		}
	}
	defer func() { kill(); <-exitCh }()
	connCh := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			connCh <- c
		}
	}()
	var conn net.Conn
	select {
	case conn = <-connCh:
	case err := <-exitCh:
		exitCh <- err
		return fmt.Errorf("%s: QEMU exited before connecting: %v (see qemu.out)", tag, err)
	case <-time.After(120 * time.Second):
		return fmt.Errorf("%s: QEMU did not connect in 120 s", tag)
	}
	defer conn.Close()
	enc := json.NewEncoder(conn)
	msgs := make(chan pcMsg, 64)
	go func() {
		defer close(msgs)
		dec := json.NewDecoder(conn)
		for {
			var m pcMsg
			if dec.Decode(&m) != nil {
				return
			}
			msgs <- m
		}
	}()
	var cutAt, canaryDeadline <-chan time.Time
	deadline := time.After(600 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			switch m.T {
			case "hello":
				if err := enc.Encode(pcMsg{T: "boot", Boot: b}); err != nil {
					return err
				}
			case "canary-state":
				h.canaryState(m)
			case "journal":
				if err := h.appendFile(h.journal(m.Client), m.Line+"\n"); err != nil {
					return err
				}
				if strings.Contains(m.Line, `"state":"ack"`) {
					h.acked++
				}
				if err := enc.Encode(pcMsg{T: "ok"}); err != nil {
					return err
				}
			case "log":
				h.appendFile(filepath.Join(h.work, "daemon.log"), m.Text)
			case "daemon-started":
				h.appendFile(filepath.Join(h.work, "daemon.log"), fmt.Sprintf("--- %s: daemon started\n", tag))
				h.toDaemon += time.Since(started)
				h.daemonBoots++
				if b.StartupCut {
					cutAt = time.After(time.Duration(h.rng.Intn(1500)) * time.Millisecond)
				}
			case "verified":
				for k, v := range m.Findings {
					h.f[k] = append(h.f[k], v...)
				}
				for k, n := range m.Outcomes {
					h.outcomes[k] += n
				}
			case "work":
				workAt = time.Now()
				h.toWork += workAt.Sub(started)
				h.workBoots++
				cutAt = time.After(time.Duration(h.minMs+h.rng.Intn(h.maxMs-h.minMs+1)) * time.Millisecond)
			case "canary-written":
				kill()
				if !workAt.IsZero() {
					h.worked += time.Since(workAt)
				}
				h.prevUnsynced = true
				h.cuts++
				if b.StartupCut {
					h.startupCuts++
				}
				return nil
			case "unexpected":
				h.f.add("no unexpected RPC error while the daemon runs", "%s: %s", tag, m.Text)
			case "fatal":
				check := "guest runs every boot to the cut"
				if strings.Contains(m.Text, "daemon exited") {
					check = pcStartCheck
				}
				h.f.add(check, "%s: %s", tag, m.Text)
				return fmt.Errorf("%s: %s", tag, m.Text)
			case "final":
				for k, v := range m.Findings {
					h.f[k] = append(h.f[k], v...)
				}
				select {
				case err := <-exitCh:
					exitCh <- err
				case <-time.After(60 * time.Second):
					h.f.add("daemon stops cleanly at the end", "the guest did not power off in 60 s")
				}
				return nil
			}
		case <-cutAt:
			cutAt = nil
			if err := enc.Encode(pcMsg{T: "canary"}); err != nil {
				return err
			}
			canaryDeadline = time.After(30 * time.Second)
		case <-canaryDeadline:
			kill() // a cut all the same, without the control
			h.cuts++
			return nil
		case err := <-exitCh:
			exitCh <- err
			h.f.add("guest runs every boot to the cut", "%s: QEMU exited (%v); console-%d.log: %s", tag, err, b.Boot, tail(console, 15))
			return fmt.Errorf("%s: QEMU exited", tag)
		case <-deadline:
			h.f.add("guest runs every boot to the cut", "%s: no cut after 600 s; console: %s", tag, tail(console, 15))
			return fmt.Errorf("%s: stalled", tag)
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// mkfs makes a sparse raw file of `mib` MiB holding an empty ext4.
func mkfs(path string, mib int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(mib << 20)
	f.Close()
	if err != nil {
		return err
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v: %s", path, err, out)
	}
	return nil
}

func (h *pcHost) run(cuts int) error {
	if err := os.MkdirAll(filepath.Join(h.work, "journal"), 0o755); err != nil {
		return err
	}
	if err := mkfs(filepath.Join(h.work, "data.img"), 512); err != nil {
		return err
	}
	if err := mkfs(filepath.Join(h.work, "canary.img"), 32); err != nil {
		return err
	}
	modes := h.modes
	first := h.rng.Intn(len(modes))
	prev := ""
	for boot := 0; boot <= cuts; boot++ {
		b := &pcBoot{Boot: boot, Mode: modes[(first+boot)%len(modes)], Clients: h.clients, Seed: h.rng.Int63(),
			Final: boot == cuts, Token: fmt.Sprintf("boot%d-%x", boot, h.rng.Int63()), Prev: prev}
		b.StartupCut = !b.Final && boot > 0 && h.rng.Intn(5) == 0
		b.Preload = h.preload
		h.modeBoots[b.Mode]++
		if err := h.bootOnce(b); err != nil {
			return err
		}
		prev = b.Token
	}
	out, err := exec.Command("e2fsck", "-fn", filepath.Join(h.work, "data.img")).CombinedOutput()
	if err != nil {
		h.f.add("data filesystem clean after the last boot (e2fsck -fn)", "%v: %s", err, out)
	}
	return nil
}

func (h *pcHost) report() {
	lost := h.unsynced["missing"] + h.unsynced["empty"] + h.unsynced["short"]
	states, written := tally(h.unsynced)
	if written > 0 && lost == 0 {
		h.f.add("unsynced writes are lost in a power cut (control)",
			"the unsynced canary survived all %d cuts %v: the cut does not lose what the guest did not sync, so this run proves nothing", written, states)
	}
	report(h.f, pcChecks)
	if written == 0 {
		fmt.Println("SKIP unsynced writes are lost in a power cut (control): no cut was checked by a later boot")
	}
	outs, total := tally(h.outcomes)
	ms, _ := tally(h.modeBoots)
	fmt.Printf("FIGURE power cuts: %d (%d during daemon startup)\n", h.cuts, h.startupCuts)
	fmt.Printf("FIGURE boots by guest writeback mode: %v\n", ms)
	fmt.Printf("FIGURE acknowledged mutations verified: %d\n", h.acked)
	fmt.Printf("FIGURE in-flight mutations resolved: %d %v\n", total, outs)
	fmt.Printf("FIGURE unsynced canary lost: %d of %d cuts %v\n", lost, written, states)
	fmt.Printf("FIGURE fsync'd canary intact: %d of %d cuts\n", h.syncedOK, h.syncedChecked)
	if h.workBoots > 0 {
		fmt.Printf("FIGURE mean QEMU start to daemon start: %.1f s\n", h.toDaemon.Seconds()/float64(h.daemonBoots))
		fmt.Printf("FIGURE mean QEMU start to workload (boot, daemon start, verify): %.1f s\n", h.toWork.Seconds()/float64(h.workBoots))
		fmt.Printf("FIGURE mean workload before the cut: %.1f s\n", h.worked.Seconds()/float64(h.workBoots))
	}
}

// pcOptions are the -mode powercut flags.
type pcOptions struct {
	qemu, kernel, initrd, accel, preload, modes string
	memory                                      int
}

func powercutHostMain(work string, cuts, clients, minMs, maxMs int, seed int64, o pcOptions) {
	h := &pcHost{qemu: o.qemu, kernel: o.kernel, initrd: o.initrd, accel: o.accel, work: work, memory: o.memory,
		preload: o.preload, modes: strings.Split(o.modes, ","),
		clients: clients, minMs: minMs, maxMs: maxMs, rng: rand.New(rand.NewSource(seed)), f: Findings{},
		outcomes: map[string]int{}, modeBoots: map[string]int{}, unsynced: map[string]int{}}
	for _, m := range h.modes {
		if m != "strict" && m != "eager" && m != "default" {
			fmt.Fprintf(os.Stderr, "workload: -writeback %q: modes are strict, eager, default\n", o.modes)
			os.Exit(2)
		}
	}
	err := h.run(cuts)
	h.report()
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", err)
		os.Exit(1)
	}
}
