package main

// powercut_guest.go: /init of the power-cut guest (tests/powercut). It
// mounts the daemon's data disk (ext4 on virtio-blk, serial "pcdata") and a
// canary disk ("pccanary"), reports what is left of the previous boot's
// canaries, writes this boot's fsync'd canary, starts the daemon on
// /data/root, verifies the state against the journals the host sent
// (verify.go), and runs the crash suite's clients (client.go) with guest-
// pull layers until the host cuts the power. Every journal record goes to
// the host and is kept there before the client goes on (journalMirror), so
// the host's copy is what the clients knew when the guest died. On the host's
// "canary" it writes a canary it never syncs: the host cuts right after.

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

type guest struct {
	port   *os.File
	enc    *json.Encoder
	sendMu sync.Mutex
	okCh   chan struct{}
	jMu    sync.Mutex
	boot   pcBoot
}

func (g *guest) send(m pcMsg) error {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	return g.enc.Encode(m)
}

// Write sends the daemon's output as log messages.
func (g *guest) Write(b []byte) (int, error) {
	if err := g.send(pcMsg{T: "log", Text: string(b)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

// mirror sends one journal record and waits until the host kept it.
func (g *guest) mirror(path string, line []byte) error {
	var c int
	if _, err := fmt.Sscanf(filepath.Base(path), "client-%d.jsonl", &c); err != nil {
		return fmt.Errorf("journal %s: %v", path, err)
	}
	g.jMu.Lock()
	defer g.jMu.Unlock()
	if err := g.send(pcMsg{T: "journal", Client: c, Line: string(line)}); err != nil {
		return err
	}
	select {
	case <-g.okCh:
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the host did not keep a journal record in 60 s")
	}
}

func mountBasics() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %v", m.dst, err)
		}
	}
	return nil
}

// loadModules loads the modules listed in /lib/modules/powercut.list, in order.
func loadModules() error {
	b, err := os.ReadFile("/lib/modules/powercut.list")
	if err != nil {
		return err
	}
	for _, path := range strings.Fields(string(b)) {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %v", path, err)
		}
	}
	return nil
}

// findDev waits (10 s) for a device whose sysfs file `attr` under `class`
// reads `want`, and returns /dev/<name>.
func findDev(class, attr, want string) (string, error) {
	for i := 0; i < 500; i++ {
		entries, _ := os.ReadDir(class)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(class, e.Name(), attr))
			if err == nil && strings.TrimSpace(string(b)) == want {
				dev := "/dev/" + e.Name()
				if _, err := os.Stat(dev); err == nil {
					return dev, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("no %s with %s %q", class, attr, want)
}

// writeback sets how the guest kernel writes back what nobody synced:
// strict never (until a sync), eager within ~0.2 s, default the kernel's.
func writeback(mode string) (mountOpts string, err error) {
	vm := map[string]map[string]string{
		"strict": {"dirty_writeback_centisecs": "0", "dirty_expire_centisecs": "360000", "dirty_background_ratio": "80", "dirty_ratio": "90"},
		"eager":  {"dirty_writeback_centisecs": "10", "dirty_expire_centisecs": "10"},
	}[mode]
	for k, v := range vm {
		if err := os.WriteFile("/proc/sys/vm/"+k, []byte(v), 0o644); err != nil {
			return "", err
		}
	}
	return map[string]string{"strict": "commit=600", "eager": "commit=1"}[mode], nil
}

func mountDisk(serial, dir, opts string) error {
	dev, err := findDev("/sys/block", "serial", serial)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, dir, "ext4", 0, opts); err != nil {
		return fmt.Errorf("mount %s on %s: %v", dev, dir, err)
	}
	return nil
}

// canaries reports the previous boot's canaries, removes them (durably) and
// writes this boot's fsync'd one.
func (g *guest) canaries() error {
	if g.boot.Prev != "" {
		m := pcMsg{T: "canary-state", Synced: canaryState("/canary/synced", g.boot.Prev, "synced"),
			Unsynced: canaryState("/canary/unsynced", g.boot.Prev, "unsynced")}
		if err := g.send(m); err != nil {
			return err
		}
	}
	for _, f := range []string{"/canary/synced", "/canary/unsynced"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	f, err := os.OpenFile("/canary/synced", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(canaryContent(g.boot.Token, "synced")); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	dir, err := os.Open("/canary")
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Syncfs(int(dir.Fd()))
}

// unsyncedCanary writes this boot's canary without any sync.
func (g *guest) unsyncedCanary() {
	err := os.WriteFile("/canary/unsynced", canaryContent(g.boot.Token, "unsynced"), 0o644)
	if err != nil {
		g.send(pcMsg{T: "fatal", Text: "unsynced canary: " + err.Error()})
		return
	}
	g.send(pcMsg{T: "canary-written"})
}

func (g *guest) readHost(dec *json.Decoder) {
	for {
		var m pcMsg
		if err := dec.Decode(&m); err != nil {
			return
		}
		switch m.T {
		case "ok":
			g.okCh <- struct{}{}
		case "canary":
			go g.unsyncedCanary()
		}
	}
}

func (g *guest) setup() (*driver, error) {
	if err := mountBasics(); err != nil {
		return nil, err
	}
	if err := loadModules(); err != nil {
		return nil, err
	}
	dev, err := findDev("/sys/class/virtio-ports", "name", "pc.0")
	if err != nil {
		return nil, err
	}
	if g.port, err = os.OpenFile(dev, os.O_RDWR, 0); err != nil {
		return nil, err
	}
	g.enc = json.NewEncoder(g.port)
	dec := json.NewDecoder(g.port)
	if err := g.send(pcMsg{T: "hello"}); err != nil {
		return nil, err
	}
	var m pcMsg
	if err := dec.Decode(&m); err != nil || m.Boot == nil {
		return nil, fmt.Errorf("no boot message from the host: %v", err)
	}
	g.boot = *m.Boot
	g.okCh = make(chan struct{}, 1)
	go g.readHost(dec)
	opts, err := writeback(g.boot.Mode)
	if err != nil {
		return nil, err
	}
	if err := mountDisk("pcdata", "/data", opts); err != nil {
		return nil, err
	}
	if err := mountDisk("pccanary", "/canary", opts); err != nil {
		return nil, err
	}
	if err := g.canaries(); err != nil {
		return nil, fmt.Errorf("canaries: %v", err)
	}
	work := "/run/pc"
	if err := os.MkdirAll(filepath.Join(work, "mnt"), 0o755); err != nil {
		return nil, err
	}
	for c, text := range g.boot.Journals {
		if err := os.WriteFile(journalPath(work, c), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	journalMirror = g.mirror
	if g.boot.Preload != "" {
		os.Setenv("LD_PRELOAD", g.boot.Preload) // the daemon is the only child
	}
	d := &driver{daemon: "/bin/containerd-guest-pull-grpc", root: "/data/root", work: work,
		socket: filepath.Join(work, "s.sock"), config: filepath.Join(work, "config.toml"),
		clients: g.boot.Clients, rng: rand.New(rand.NewSource(g.boot.Seed)), findings: Findings{},
		logw: g, dialTries: 6000, guestPull: true, writeDirect: true}
	return d, os.WriteFile(d.config, []byte("version = 1\n"), 0o644)
}

// verified sends the verification's findings (the restart check renamed).
func (g *guest) verified(d *driver, fig *Figures) error {
	f := Findings{}
	for k, v := range d.findings {
		if k == "daemon restarts after every SIGKILL" {
			k = pcStartCheck
		}
		f[k] = v
	}
	d.findings = Findings{}
	return g.send(pcMsg{T: "verified", Findings: f, Outcomes: fig.Outcomes})
}

func (g *guest) run() error {
	d, err := g.setup()
	if err != nil {
		return err
	}
	if err := d.start(); err != nil {
		return err
	}
	if err := g.send(pcMsg{T: "daemon-started"}); err != nil {
		return err
	}
	if g.boot.StartupCut {
		return nil // the cut comes while the daemon recovers or idles
	}
	fig := &Figures{Outcomes: map[string]int{}}
	conn, verr := d.verify(fig)
	if err := g.verified(d, fig); err != nil {
		return err
	}
	if verr != nil {
		return fmt.Errorf("verify: %v", verr)
	}
	if g.boot.Final {
		conn.Close()
		return g.final(d)
	}
	go func() {
		err := <-d.waitCh
		g.send(pcMsg{T: "fatal", Text: fmt.Sprintf("the daemon died during the workload: %v", err)})
	}()
	if err := g.send(pcMsg{T: "work"}); err != nil {
		return err
	}
	_, err = d.runClients(conn, func() {}, func(c *client) {
		for _, u := range c.unexpected {
			g.send(pcMsg{T: "unexpected", Text: fmt.Sprintf("client %d: %s", c.id, u)})
		}
	})
	if err != nil {
		return err
	}
	return g.send(pcMsg{T: "idle"})
}

// final stops the daemon, unmounts both disks and powers off.
func (g *guest) final(d *driver) error {
	f := Findings{}
	if err := d.stop(); err != nil {
		f.add("daemon stops cleanly at the end", "SIGTERM: %v", err)
	}
	for _, dir := range []string{"/data", "/canary"} {
		if err := unix.Unmount(dir, 0); err != nil {
			f.add("daemon stops cleanly at the end", "umount %s: %v", dir, err)
		}
	}
	if err := g.send(pcMsg{T: "final", Findings: f}); err != nil {
		return err
	}
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// powercutGuestMain is /init: it never returns (pid 1 must not exit); the
// host ends the VM.
func powercutGuestMain() {
	g := &guest{}
	if err := g.run(); err != nil {
		msg := pcMsg{T: "fatal", Text: err.Error()}
		if g.enc == nil || g.send(msg) != nil {
			fmt.Fprintf(os.Stderr, "powercut guest: %v\n", err)
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
