package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// holderEnv makes the test binary, re-executed by TestQuorumHolderProcesses, the quorum holder:
// its arguments after the test flags are main's ("quorum" and the holder's flags).
const holderEnv = "WOLFPACK_AGENT_TEST_QUORUM_HOLDER"

// TestQuorumHolderProcesses runs the real quorum holder ("node-agent quorum": this test binary,
// re-executed) as two processes on one disk file against envtest: node-a formats the disk and
// takes it at epoch 1; node-b, started next to it, does not take the disk from a live holder;
// node-a crashes (SIGKILL, no release) and node-b takes over at epoch 2 after watching the disk
// for a lease period; node-b stops on SIGTERM, exits 0 and clears the Lease; the quorum log on
// the disk holds both ownership changes.
func TestQuorumHolderProcesses(t *testing.T) {
	if os.Getenv(holderEnv) == "1" {
		os.Exit(holderMain(flag.Args()))
	}
	start := time.Now()
	const (
		cluster       = "qd-holder-processes"
		leaseDuration = 2 * time.Second
	)
	ctx := context.Background()
	c, err := client.New(restConfig, client.Options{Scheme: newScheme()})
	if err != nil {
		t.Fatal(err)
	}
	leases := kubernetes.NewForConfigOrDie(restConfig).CoordinationV1().Leases(envtest.LeaseNamespace)
	leaseName := membership.QuorumLeaseName(cluster)

	qd := builder.QuorumDisk(cluster).Claim(envtest.LeaseNamespace, cluster).KeySecret(envtest.LeaseNamespace, keySecret).
		// interval x threshold (the default 4) = 1s, shorter than the lease, as CEL requires.
		HeartbeatInterval(250 * time.Millisecond).LeaseDuration(leaseDuration).Obj()
	if err := c.Create(ctx, qd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), qd)
		_ = leases.Delete(context.Background(), leaseName, metav1.DeleteOptions{})
	})
	uid, err := uuid.Parse(string(qd.UID))
	if err != nil {
		t.Fatalf("QuorumDisk UID %q: %v", qd.UID, err)
	}

	dir := t.TempDir() // before the processes, so that they are killed before it is removed
	device := filepath.Join(dir, "quorum.img")
	getLease := func() (*coordinationv1.Lease, error) { return leases.Get(ctx, leaseName, metav1.GetOptions{}) }

	// 1. node-a formats the disk (the file does not exist yet) and takes it at epoch 1.
	a := startHolder(t, dir, "node-a", cluster, device)
	var l *coordinationv1.Lease
	poll.Wait(t, "the Lease names node-a at epoch 1", patience, func() error {
		if err := a.exited(); err != nil {
			return err
		}
		if l, err = getLease(); err != nil {
			return err
		}
		return leaseIs(l, "node-a", "1")
	})
	t.Logf("node-a holds the disk at epoch 1, %v after the test started", time.Since(start).Round(time.Millisecond))
	if got := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); got != int32(leaseDuration/time.Second) {
		t.Errorf("leaseDurationSeconds %d, want %d", got, leaseDuration/time.Second)
	}

	// Every write of the Lease from now on.
	w, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + leaseName, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// 2. node-b, on the same disk, must not take it from a live holder: for two lease periods,
	// every write of the Lease names node-a at epoch 1, and node-b keeps running (waiting).
	b := startHolder(t, dir, "node-b", cluster, device)
	renewals := 0
	for end := time.After(2 * leaseDuration); ; {
		l, ok := nextLease(t, w, end)
		if !ok {
			break
		}
		if err := leaseIs(l, "node-a", "1"); err != nil {
			t.Fatalf("with node-a alive and node-b started: %v", err)
		}
		renewals++
	}
	if err := b.exited(); err != nil {
		t.Fatal(err)
	}
	if l, err = getLease(); err != nil {
		t.Fatal(err)
	}
	if err := leaseIs(l, "node-a", "1"); err != nil {
		t.Fatalf("%v after node-b watched the disk for %v", err, 2*leaseDuration)
	}
	if renewals == 0 {
		t.Fatalf("node-a did not renew its Lease in %v", 2*leaseDuration)
	}
	t.Logf("node-b started: node-a renewed the Lease %d times in %v and still holds it", renewals, 2*leaseDuration)

	// 3. node-a crashes right after a renewal (its last disk write landed just before its Lease
	// write): SIGKILL, no release.
	l, ok := nextLease(t, w, time.After(patience))
	if !ok {
		t.Fatalf("node-a did not renew its Lease within %v", patience)
	}
	if err := leaseIs(l, "node-a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-a.done
	var exitErr *exec.ExitError
	if !errors.As(a.err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("node-a ended with %v, want killed by SIGKILL", a.err)
	}

	// 4. node-b takes over at epoch 2, after watching the disk for a lease period.
	deadline := time.After(patience)
	for {
		if l, ok = nextLease(t, w, deadline); !ok {
			t.Fatalf("the Lease did not name node-b at epoch 2 within %v of node-a's crash", patience)
		}
		if leaseIs(l, "node-b", "2") == nil {
			break
		}
	}
	takeover := time.Since(killed)
	acquired := "none"
	if l.Spec.AcquireTime != nil {
		acquired = l.Spec.AcquireTime.Sub(killed).Round(time.Millisecond).String()
	}
	t.Logf("kill to takeover: %v until the Lease named node-b at epoch 2 (its acquireTime %s after the kill)",
		takeover.Round(time.Millisecond), acquired)
	if takeover < leaseDuration {
		t.Errorf("node-b took over %v after node-a's crash, before a whole lease period (%v)", takeover, leaseDuration)
	}
	if got := ptr.Deref(l.Spec.LeaseTransitions, -1); got != 1 {
		t.Errorf("leaseTransitions %d after the takeover, want 1", got)
	}
	w.Stop()

	// 5. SIGTERM: node-b releases the disk, clears the Lease and exits 0.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termed := time.Now()
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
		t.Fatal("node-b did not exit within 15s of SIGTERM")
	}
	if b.err != nil {
		t.Fatalf("node-b after SIGTERM: %v, want exit status 0", b.err)
	}
	t.Logf("node-b exited 0 %v after SIGTERM", time.Since(termed).Round(time.Millisecond))
	if l, err = getLease(); err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" {
		t.Errorf("the Lease names %q after node-b stopped, want no holder", h)
	}

	// 6. The quorum log on the disk: node-a at epoch 1 on a free disk, then node-b at epoch 2
	// taking it over from node-a.
	dev, err := quorum.OpenFile(device)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dev.Close() }()
	disk, err := quorum.Open(dev, uid)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := disk.ReadLog()
	if err != nil {
		t.Fatalf("the quorum log: %v", err)
	}
	want := []struct {
		epoch           uint64
		owner, previous string
		reason          quorum.LogReason
	}{{1, "node-a", "", quorum.ReasonFree}, {2, "node-b", "node-a", quorum.ReasonTakeover}}
	if len(entries) != len(want) {
		t.Fatalf("the quorum log has %d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		if w := want[i]; e.Epoch != w.epoch || e.Owner != w.owner || e.Previous != w.previous || e.Reason != w.reason ||
			e.Incarnation == 0 || e.Time.IsZero() {
			t.Errorf("quorum log entry %d: %+v (reason %v), want epoch %d, owner %s, previous %q, reason %v, an incarnation and a time",
				i, e, e.Reason, w.epoch, w.owner, w.previous, w.reason)
		}
	}
	if entries[0].Incarnation == entries[1].Incarnation {
		t.Errorf("both holders have incarnation %d", entries[0].Incarnation)
	}
	t.Logf("the test took %v", time.Since(start).Round(time.Millisecond))
}

// holderMain is main's dispatch of "quorum" in the re-executed test binary.
func holderMain(args []string) int {
	if len(args) == 0 || args[0] != "quorum" {
		fmt.Fprintf(os.Stderr, "want the quorum subcommand, got %q\n", args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runQuorum(ctx, args[1:])
}

// holderProcess is one quorum holder process.
type holderProcess struct {
	node string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
	err  error         // cmd.Wait's, once done is closed
	// hangAgent stops the node's stand-in agent from writing its record, as a hung agent.
	hangAgent func()
}

// startHolder starts node's quorum holder on device against the test's envtest, its output in
// a file of dir that is logged if the test fails. The process is killed when the test ends.
func startHolder(t *testing.T, dir, node, cluster, device string) *holderProcess {
	t.Helper()
	path := filepath.Join(dir, node+".log")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// The node's agent, as far as the holder sees it: its node-local record, fresh and not
	// fenced, in a directory of this node's own.
	localDir := filepath.Join(dir, "local-"+node)
	hang := runAgentRecord(t, localDir, cluster, node)
	// The process is killed when the test ends (its context); its own test timeout ends it
	// should the parent die first.
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.timeout=3m",
		"quorum", "--node-name="+node, "--cluster="+cluster, "--device="+device,
		"--lease-namespace="+envtest.LeaseNamespace, "--kubeconfig="+kubeconfig, "--local-dir="+localDir)
	// kubeconfigEnv makes TestMain use the parent's envtest; WOLFPACK_TEST_LOGS sends the
	// holder's log (TestMain's logger) to its stderr.
	cmd.Env = append(os.Environ(), holderEnv+"=1", kubeconfigEnv+"="+kubeconfig, "WOLFPACK_TEST_LOGS=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatal(err)
	}
	p := &holderProcess{node: node, cmd: cmd, done: make(chan struct{}), hangAgent: hang}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Logf("%s's output: %v", node, err)
			}
			t.Logf("%s's output (%v):\n%s", node, p.err, b)
		}
	})
	return p
}

// runAgentRecord writes node's agent record for cluster under root every 100ms, as a live
// agent would, until the test ends or the returned function is called (the agent hangs).
func runAgentRecord(t *testing.T, root, cluster, node string) (hang func()) {
	t.Helper()
	w, err := nodelocal.NewAgentWriter(root, cluster, node, uint64(time.Now().UnixNano()), 250*time.Millisecond)
	if err != nil {
		t.Fatalf("the stand-in agent of %s: %v", node, err)
	}
	if err := w.Write(false, true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := w.Write(false, true); err != nil {
					t.Errorf("the stand-in agent of %s: %v", node, err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	return func() { cancel(); <-stopped }
}

// exited is an error once the process has ended.
func (p *holderProcess) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("the holder %s ended with exit status 0", p.node)
		}
		return fmt.Errorf("the holder %s ended: %w", p.node, p.err)
	default:
		return nil
	}
}

// nextLease is the Lease of the next event of w; false when end comes first.
func nextLease(t *testing.T, w watch.Interface, end <-chan time.Time) (*coordinationv1.Lease, bool) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch of the Lease ended")
		}
		l, isLease := ev.Object.(*coordinationv1.Lease)
		if !isLease || (ev.Type != watch.Added && ev.Type != watch.Modified) {
			t.Fatalf("watch event %s of a %T: %v", ev.Type, ev.Object, ev.Object)
		}
		return l, true
	case <-end:
		return nil, false
	}
}

// leaseIs says how l differs from a Lease that names node at epoch.
func leaseIs(l *coordinationv1.Lease, node, epoch string) error {
	h, e := ptr.Deref(l.Spec.HolderIdentity, ""), l.Annotations[wolfpackv1alpha1.EpochAnnotation]
	if h != node || e != epoch || l.Spec.RenewTime == nil {
		return fmt.Errorf("the Lease names %q at epoch %q, renewed at %v; want %s at epoch %s", h, e, l.Spec.RenewTime, node, epoch)
	}
	return nil
}

// TestQuorumHolderAgentHangs (issue 13 schedule 10) runs two real holder processes on one disk
// file: node-a holds the disk; its node agent hangs (its node-local record is no longer
// written, and ages on the node's CLOCK_MONOTONIC); node-a's holder stops renewing, and node-b's
// takes the disk at epoch 2 once node-a's disk lease has run out. node-a's holder keeps running.
func TestQuorumHolderAgentHangs(t *testing.T) {
	if os.Getenv(holderEnv) == "1" {
		os.Exit(holderMain(flag.Args()))
	}
	const (
		cluster       = "qd-holder-agent-hangs"
		leaseDuration = 2 * time.Second
	)
	ctx := context.Background()
	c, err := client.New(restConfig, client.Options{Scheme: newScheme()})
	if err != nil {
		t.Fatal(err)
	}
	leases := kubernetes.NewForConfigOrDie(restConfig).CoordinationV1().Leases(envtest.LeaseNamespace)
	leaseName := membership.QuorumLeaseName(cluster)
	qd := builder.QuorumDisk(cluster).Claim(envtest.LeaseNamespace, cluster).KeySecret(envtest.LeaseNamespace, keySecret).
		HeartbeatInterval(250 * time.Millisecond).LeaseDuration(leaseDuration).Obj()
	if err := c.Create(ctx, qd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), qd)
		_ = leases.Delete(context.Background(), leaseName, metav1.DeleteOptions{})
	})
	dir := t.TempDir()
	device := filepath.Join(dir, "quorum.img")
	holds := func(node, epoch string) func() error {
		return func() error {
			l, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			return leaseIs(l, node, epoch)
		}
	}

	a := startHolder(t, dir, "node-a", cluster, device)
	poll.Wait(t, "the Lease names node-a at epoch 1", patience, func() error {
		if err := a.exited(); err != nil {
			return err
		}
		return holds("node-a", "1")()
	})
	b := startHolder(t, dir, "node-b", cluster, device)
	// node-b has joined (taken its slot) and waits on the disk.
	time.Sleep(leaseDuration)
	if err := holds("node-a", "1")(); err != nil {
		t.Fatalf("with both agents alive: %v", err)
	}

	a.hangAgent()
	hung := time.Now()
	poll.Wait(t, "the Lease names node-b at epoch 2", patience, func() error {
		if err := b.exited(); err != nil {
			return err
		}
		return holds("node-b", "2")()
	})
	took := time.Since(hung)
	t.Logf("node-a's agent hung: node-b holds the disk %v later", took.Round(time.Millisecond))
	if took < leaseDuration {
		t.Errorf("node-b took the disk %v after node-a's agent hung, before a lease duration %v", took, leaseDuration)
	}
	if err := a.exited(); err != nil {
		t.Errorf("node-a's holder: %v, want it running (waiting for its agent)", err)
	}
}
