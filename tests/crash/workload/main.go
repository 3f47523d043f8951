// Command workload is the crash suite's driver (tests/crash/crash.sh): it
// runs the real daemon on a temp root, lets 4 concurrent clients mutate it
// through containerd's snapshots proxy client (Prepare, writes through the
// real mounts, Commit, View, Remove, Update), SIGKILLs the daemon at a
// random moment, restarts it and verifies the state against the clients'
// fsync'd journals (verify.go). It prints "FINDING <check>: <detail>" for
// every problem, then one "CHECK <check>: ok|failed (N)" per check and
// "FIGURE <name>: <value>" lines; it exits 0 even when a check failed
// (the suite counts the CHECK lines), non-zero only when it could not run.
// -mode powercut drives the power-cut suite (tests/powercut: the daemon in a
// QEMU guest that is killed hard, powercut_host.go); run as pid 1, the same
// binary is that guest's /init (powercut_guest.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"

	"guestpull/conformance/unixdial"
)

var checks = append([]string{
	"daemon restarts after every SIGKILL",
	"no unexpected RPC error while the daemon runs",
}, verifyChecks...)

type driver struct {
	daemon, root, work, socket, config string
	clients                            int
	rng                                *rand.Rand
	cmd                                *exec.Cmd
	findings                           Findings
	waitCh                             chan error
	lastExit                           error     // how the daemon exited, when dial saw it exit
	logw                               io.Writer // daemon output; nil: <work>/daemon.log
	dialTries                          int       // 20 ms apart; 0: 300
	guestPull                          bool      // clients also make CRI-labelled guest-pull layers
	writeDirect                        bool      // clients write layer files without a mount (client.direct)
}

func (d *driver) start() error {
	logw := d.logw
	if logw == nil {
		logf, err := os.OpenFile(filepath.Join(d.work, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		logw = logf
	}
	d.cmd = exec.Command(d.daemon, "--address="+d.socket, "--root="+d.root, "--config="+d.config, "--log-level=info")
	d.cmd.Stdout, d.cmd.Stderr = logw, logw
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return err
	}
	ch, cmd := make(chan error, 1), d.cmd
	go func() { ch <- cmd.Wait() }()
	d.waitCh = ch
	return nil
}

// dial waits for the socket; an exit of the daemon is an error.
func (d *driver) dial(ctx context.Context) (*grpc.ClientConn, error) {
	tries := d.dialTries
	if tries == 0 {
		tries = 300
	}
	for i := 0; i < tries; i++ {
		select {
		case err := <-d.waitCh:
			d.cmd, d.waitCh, d.lastExit = nil, nil, err
			return nil, fmt.Errorf("daemon exited during startup: %v (see daemon.log)", err)
		default:
		}
		if _, err := os.Stat(d.socket); err == nil {
			// At most a second an attempt: a daemon that stops as it
			// starts refuses, then removes, its socket, and its exit is
			// seen between attempts.
			actx, cancel := context.WithTimeout(ctx, time.Second)
			conn, err := unixdial.Dial(actx, d.socket)
			cancel()
			if err == nil {
				return conn, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("socket %s not up in %d ms", d.socket, tries*20)
}

func (d *driver) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.waitCh
	d.cmd, d.waitCh = nil, nil
}

func (d *driver) stop() error {
	if d.cmd == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	err := <-d.waitCh
	d.cmd, d.waitCh = nil, nil
	return err
}

// restartAndVerify starts the daemon, verifies the state, and stops it.
func (d *driver) restartAndVerify() error {
	if err := d.start(); err != nil {
		return err
	}
	conn, err := d.verify(&Figures{Outcomes: map[string]int{}})
	if err != nil {
		return err
	}
	conn.Close()
	return d.stop()
}

func newSnapshotter(conn *grpc.ClientConn) snapshots.Snapshotter {
	return proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "guest-pull")
}

func mountAll(mounts []mount.Mount, target string) error {
	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mount %+v: %v", mounts, err)
	}
	return nil
}

// workRound runs the clients until the daemon is killed after `delay`.
func (d *driver) workRound(conn *grpc.ClientConn, delay time.Duration) (acked int, err error) {
	return d.runClients(conn, func() { time.Sleep(delay); d.kill() }, nil)
}

// runClients runs the clients (at most 60 s) while `stop` runs, then waits
// for them; onDone, when set, sees each client as it stops.
func (d *driver) runClients(conn *grpc.ClientConn, stop func(), onDone func(*client)) (acked int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sn := newSnapshotter(conn)
	var cs []*client
	for c := 0; c < d.clients; c++ {
		ops, err := ReadJournal(journalPath(d.work, c))
		if err != nil {
			return 0, err
		}
		m, pending, err := Replay(ops)
		if err != nil {
			return 0, err
		}
		if len(pending) > 0 {
			return 0, fmt.Errorf("client %d: %d mutations still unresolved", c, len(pending))
		}
		j, err := OpenJournal(journalPath(d.work, c))
		if err != nil {
			return 0, err
		}
		defer j.Close()
		cs = append(cs, &client{id: c, sn: sn, j: j, m: m, rng: rand.New(rand.NewSource(d.rng.Int63())),
			scratch: filepath.Join(d.work, "mnt"), guestPull: d.guestPull, direct: d.writeDirect})
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			c.run(ctx)
			if onDone != nil {
				onDone(c)
			}
		}(c)
	}
	stop()
	wg.Wait()
	for _, c := range cs {
		acked += c.acked
		for _, u := range c.unexpected {
			d.findings.add("no unexpected RPC error while the daemon runs", "client %d: %s", c.id, u)
		}
	}
	return acked, nil
}

// verify dials the restarted daemon and runs Verify; it returns the
// connection for the next round.
func (d *driver) verify(fig *Figures) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	conn, err := d.dial(ctx)
	if err != nil {
		d.findings.add("daemon restarts after every SIGKILL", "%v", err)
		return nil, err
	}
	f, err := Verify(ctx, newSnapshotter(conn), d.root, d.work, filepath.Join(d.work, "mnt"), d.clients, fig)
	for check, list := range f {
		d.findings[check] = append(d.findings[check], list...)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// report prints the findings (at most 20 a check) and one CHECK line per
// check; a finding under a name not in `names` is printed as a check too.
func report(f Findings, names []string) {
	for check, list := range f { // a state seen at several restarts counts once
		var uniq []string
		said := map[string]bool{}
		for _, line := range list {
			if !said[line] {
				said[line] = true
				uniq = append(uniq, line)
			}
		}
		f[check] = uniq
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for check := range f {
		if !seen[check] {
			names = append(names, check)
			seen[check] = true
		}
	}
	for check, list := range f {
		for i, line := range list {
			if i == 20 {
				fmt.Printf("FINDING %s: ... %d more\n", check, len(list)-20)
				break
			}
			fmt.Printf("FINDING %s: %s\n", check, line)
		}
	}
	for _, c := range names {
		if n := len(f[c]); n > 0 {
			fmt.Printf("CHECK %s: failed (%d)\n", c, n)
		} else {
			fmt.Printf("CHECK %s: ok\n", c)
		}
	}
}

// tally lists counts as sorted "key=n" and sums them.
func tally(counts map[string]int) (list []string, total int) {
	for k, n := range counts {
		list = append(list, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(list)
	return list, total
}

func main() {
	if os.Getpid() == 1 {
		powercutGuestMain() // the power-cut guest's /init
	}
	daemon := flag.String("daemon", "", "daemon binary")
	work := flag.String("work", "", "work dir (root, journals, logs)")
	kills := flag.Int("kills", 200, "SIGKILLs")
	clients := flag.Int("clients", 4, "concurrent clients")
	minMs := flag.Int("min-ms", 20, "shortest run before a kill")
	maxMs := flag.Int("max-ms", 400, "longest run before a kill")
	seed := flag.Int64("seed", time.Now().UnixNano(), "random seed")
	mode := flag.String("mode", "crash", "crash, faults or fullfs")
	shim := flag.String("shim", "", "faults: the LD_PRELOAD fault shim")
	maxN := flag.Int("max-n", 30, "faults: the most calls of one kind tried per RPC")
	qemu := flag.String("qemu", "qemu-system-x86_64", "powercut: QEMU")
	kernel := flag.String("kernel", "", "powercut: guest kernel")
	initrd := flag.String("initrd", "", "powercut: guest initramfs (this binary as /init, the daemon)")
	accel := flag.String("accel", "tcg", "powercut: QEMU accelerator")
	memory := flag.Int("memory", 1024, "powercut: guest MiB")
	preload := flag.String("preload", "", "powercut: the daemon's LD_PRELOAD in the guest")
	modes := flag.String("writeback", "strict,eager,default", "powercut: the guest writeback modes the boots cycle through")
	flag.Parse()
	if *mode == "powercut" {
		if *work == "" || *kernel == "" || *initrd == "" {
			fmt.Fprintln(os.Stderr, "usage: workload -mode powercut -work DIR -kernel K -initrd I [-kills N] [-seed S]")
			os.Exit(2)
		}
		fmt.Printf("seed %d\n", *seed)
		powercutHostMain(*work, *kills, *clients, *minMs, *maxMs, *seed,
			pcOptions{qemu: *qemu, kernel: *kernel, initrd: *initrd, accel: *accel, preload: *preload, modes: *modes, memory: *memory})
		return
	}
	if *daemon == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: workload -daemon BIN -work DIR [-kills N] [-seed S]")
		os.Exit(2)
	}
	fmt.Printf("seed %d\n", *seed)
	d := &driver{daemon: *daemon, root: filepath.Join(*work, "root"), work: *work,
		socket: filepath.Join(*work, "s.sock"), config: filepath.Join(*work, "config.toml"),
		clients: *clients, rng: rand.New(rand.NewSource(*seed)), findings: Findings{}}
	config := "version = 1\n"
	if *mode == "faults" {
		// A fault injected into the N-th mkdir must hit the RPC's own, not
		// one the spare thread makes ahead (spare_dirs_test covers its
		// failures; -mode fullfs runs with spares).
		config += "spare_dirs = 0\n"
	}
	if err := os.WriteFile(d.config, []byte(config), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *mode != "crash" {
		faultMain(d, *shim, *mode, *maxN)
		return
	}
	// As in the power-cut runs: guest-pull layers and views on them too.
	d.guestPull = true
	fig := &Figures{Outcomes: map[string]int{}}
	acked, startupKills, rounds := 0, 0, 0
	fatal := error(nil)
	for ; rounds < *kills; rounds++ {
		if err := d.start(); err != nil {
			fatal = err
			break
		}
		// One kill in ten lands during startup recovery instead.
		if d.rng.Intn(10) == 0 {
			time.Sleep(time.Duration(d.rng.Intn(40)) * time.Millisecond)
			d.kill()
			startupKills++
			continue
		}
		conn, err := d.verify(fig)
		if err != nil {
			fatal = err
			break
		}
		delay := time.Duration(*minMs+d.rng.Intn(*maxMs-*minMs+1)) * time.Millisecond
		n, err := d.workRound(conn, delay)
		conn.Close()
		acked += n
		if err != nil {
			fatal = err
			break
		}
	}
	if fatal == nil {
		if err := d.start(); err == nil {
			var conn *grpc.ClientConn
			conn, fatal = d.verify(fig)
			if fatal == nil {
				conn.Close()
				if err := d.stop(); err != nil {
					d.findings.add("daemon restarts after every SIGKILL", "final SIGTERM: %v", err)
				}
			}
		} else {
			fatal = err
		}
	}
	d.kill()
	report(d.findings, checks)
	fmt.Printf("FIGURE sigkills: %d\n", rounds)
	fmt.Printf("FIGURE sigkills during startup: %d\n", startupKills)
	fmt.Printf("FIGURE acknowledged mutations verified: %d\n", acked)
	outs, total := tally(fig.Outcomes)
	fmt.Printf("FIGURE in-flight mutations resolved: %d %v\n", total, outs)
	fmt.Printf("FIGURE records whose directory was checked by identity: %d of %d\n", fig.DirsNamed, fig.Records)
	if fatal != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", fatal)
		os.Exit(1)
	}
}
