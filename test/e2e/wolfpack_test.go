// Package e2e tests Wolfpack end to end on a local cluster of real processes
// (internal/localcluster/env): the manager, a node agent per member node in its own network
// namespace, the quorum holder, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok. Throughout every test
// an invariant checker watches the API and the nodes' interfaces and fails the test if the
// sample group is ever active on two nodes at once.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

// settle bounds every wait; it holds on a loaded 2-core machine.
const settle = 3 * time.Minute

func TestMain(m *testing.M) {
	// The clients here log nothing worth reading; the components log to their files.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// start brings the environment up on network for one test, or skips with the reason; its
// directory is removed unless the test failed.
func start(tb testing.TB, network string) *env.Env {
	tb.Helper()
	e, dir := startIn(tb, "wolfpack-e2e-", "make test-e2e", network)
	tb.Cleanup(func() {
		if err := e.Stop(); err != nil {
			tb.Errorf("stopping the environment: %v", err)
		}
		if tb.Failed() {
			tb.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return e
}

// startIn builds Wolfpack's binaries and starts the environment on network in a new directory
// named with prefix, or skips with the reason (run names the make target that sets it all up).
// The caller stops it.
func startIn(tb testing.TB, prefix, run, network string) (*env.Env, string) {
	tb.Helper()
	kubeBin := os.Getenv("WOLFPACK_E2E_BINDIR")
	if kubeBin == "" {
		tb.Skip("WOLFPACK_E2E_BINDIR is not set: run " + run)
	}
	root := repo.Root()
	wolfpackBin := tb.TempDir()
	build := exec.CommandContext(context.Background(), "go", "build", "-o", wolfpackBin+"/", "./cmd/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := env.Start(ctx, env.Options{Dir: dir, KubeBin: kubeBin, WolfpackBin: wolfpackBin,
		Helm: filepath.Join(root, "bin", "helm"), Network: network, Log: testWriter{tb}})
	if err != nil {
		tb.Fatalf("starting the environment (logs in %s): %v", dir, err)
	}
	return e, dir
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// checker is the invariant checker: every 100 ms it takes the sample group's resources, what
// runs in the member nodes' container runtimes and the nodes' addresses, and records a violation
// whenever they put the group on more than one node. A resource counts where it is
// OnlinePending, Online or OfflinePending (owned); a pod where its sandbox is ready in the node's
// runtime (running; a crashed node runs nothing); the floating address on the node whose public
// interface carries it, unless the node has crashed.
type checker struct {
	e         *env.Env
	mu        sync.Mutex
	snapshots int
	errors    []string
	stop      func()
}

// watch starts the checker for a test and checks it when the test ends.
func watch(t *testing.T, e *env.Env) *checker {
	t.Helper()
	c := startChecker(e)
	t.Cleanup(func() { c.check(t) })
	return c
}

// startChecker starts taking snapshots until stop, which may be called more than once.
func startChecker(e *env.Env) *checker {
	c := &checker{e: e}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			c.snapshot(ctx)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.stop = func() { cancel(); <-done }
	return c
}

func (c *checker) snapshot(ctx context.Context) {
	var resources wp.ResourceList
	if c.e.Client.List(ctx, &resources, client.InNamespace(env.Namespace)) != nil {
		return // the API server may be restarting
	}
	crashed := c.e.Crashed()
	on := map[string][]string{}
	for _, r := range resources.Items {
		if s := r.Status.State; s == wp.ResourceOnlinePending || s == wp.ResourceOnline || s == wp.ResourceOfflinePending {
			on[r.Status.Node] = append(on[r.Status.Node], fmt.Sprintf("resource %s %s", r.Name, s))
		}
	}
	for _, n := range env.Member {
		for _, p := range c.e.Running(ctx, n) {
			on[n] = append(on[n], "running pod "+p)
		}
	}
	for _, n := range env.Member {
		for _, a := range c.e.Net.Addresses(n) {
			if a.Addr() == c.e.FloatingIP() && !slices.Contains(crashed, n) {
				on[n] = append(on[n], "address "+a.String())
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots++
	if len(on) > 1 {
		c.errors = append(c.errors, fmt.Sprintf("the group is active on %d nodes at once: %v", len(on), on))
	}
}

// check stops the checker and reports its violations as errors of tb.
func (c *checker) check(tb testing.TB) {
	tb.Helper()
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshots < 10 {
		tb.Errorf("the invariant checker took only %d snapshots", c.snapshots)
	}
	for i, e := range c.errors {
		if i == 10 {
			tb.Errorf("... and %d more", len(c.errors)-10)
			break
		}
		tb.Error(e)
	}
	tb.Logf("invariant checker: %d snapshots, %d violations", c.snapshots, len(c.errors))
}

// summary is the checker's count so far.
func (c *checker) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d snapshots, %d violations", c.snapshots, len(c.errors))
}

// plugin runs the kubectl cluster plugin binary against the environment.
func plugin(t *testing.T, e *env.Env, args ...string) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(e.ManagerBinary()), "kubectl-cluster")
	cmd := exec.CommandContext(context.Background(), bin, append(args, "--kubeconfig", e.Kubeconfig())...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestWolfpack runs the scenarios one after the other on one environment, the checker watching
// throughout. Where the nodes share the host's network (no network namespaces), the scenarios
// that cut links skip with the reason.
func TestWolfpack(t *testing.T) {
	s := newScenarios(t, env.NetworkAuto)
	t.Run("planned move", s.plannedMove)
	t.Run("private link cut", s.privateLinkCut)
	t.Run("manager killed mid-move", s.managerKilledMidMove)
	t.Run("API server restarted", s.apiServerRestarted)
	t.Run("both heartbeat links cut", s.bothLinksCut)
	t.Run("node crash", s.nodeCrash)
	t.Run("a resource that keeps failing", s.resourceKeepsFailing)
}

// TestWolfpackOnLoopback runs the scenarios that need no link cut on the fallback network, the
// nodes on loopback addresses of their own, which is what a machine without network namespaces
// gets: a planned move and a node crash.
func TestWolfpackOnLoopback(t *testing.T) {
	s := newScenarios(t, env.NetworkLoopback)
	t.Run("planned move", s.plannedMove)
	t.Run("node crash", s.nodeCrash)
}

// scenarios are the end-to-end scenarios on one environment.
type scenarios struct {
	e *env.Env
}

// newScenarios starts the environment on network with the checker watching, and lets the group
// fail over more often than the default threshold (nodes - 1 per 6 h), as an administrator
// would for these tests; resourceKeepsFailing lowers it again.
func newScenarios(t *testing.T, network string) *scenarios {
	t.Helper()
	s := &scenarios{e: start(t, network)}
	watch(t, s.e)
	first, _ := s.owner(t)
	t.Logf("the group came up on %s", first)
	if err := setFailoverThreshold(t.Context(), s.e, 20); err != nil {
		t.Fatal(err)
	}
	return s
}

// owner is the group's owner node and epoch.
func (s *scenarios) owner(t *testing.T) (string, int64) {
	t.Helper()
	g, err := s.e.Group(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return g.Status.OwnerNode, g.Status.Epoch
}

// other is the member node that is not n.
func (s *scenarios) other(n string) string {
	if n == env.NodeA {
		return env.NodeB
	}
	return env.NodeA
}

// needLinks skips a scenario that cuts links where the nodes have none.
func (s *scenarios) needLinks(t *testing.T) {
	t.Helper()
	if err := s.e.Partitions(); err != nil {
		t.Skipf("this scenario cuts links: %v", err)
	}
}

// plannedMove moves the group to the other node with `kubectl cluster move --wait`.
func (s *scenarios) plannedMove(t *testing.T) {
	from, _ := s.owner(t)
	to := s.other(from)
	began := time.Now()
	out := plugin(t, s.e, "move", env.Group, "-n", env.Namespace, "--to", to, "--wait")
	t.Logf("moved to %s in %s:\n%s", to, time.Since(began).Round(time.Millisecond), out)
	if err := s.e.WaitGroupOnline(t.Context(), to, settle); err != nil {
		t.Fatal(err)
	}
	waitAddress(t, s.e, to)
}

// privateLinkCut cuts the owner's private link: heartbeats go on over the public one, nothing moves
// and no node goes Down.
func (s *scenarios) privateLinkCut(t *testing.T) {
	s.needLinks(t)
	node, epoch := s.owner(t)
	cut := time.Now()
	if err := s.e.Net.Cut(node, "private"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s.e, cut, wp.PrivateNetworkLostReason, node)
	// Heartbeats go on over the public link: nothing moves, no node is Down.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n, ep := s.owner(t); n != node || ep != epoch {
			t.Fatalf("the group moved to %s (epoch %d) when only the private link was cut", n, ep)
		}
		qd := &wp.QuorumDisk{}
		if err := s.e.Client.Get(t.Context(), client.ObjectKey{Name: env.ClusterName}, qd); err == nil {
			for _, n := range qd.Status.Nodes {
				if n.State != wp.NodeUp {
					t.Fatalf("node %s is %s (%s) when only the private link was cut", n.Name, n.State, n.Message)
				}
			}
		}
	}
	restored := time.Now()
	if err := s.e.Net.Restore(node, "private"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s.e, restored, wp.PrivateNetworkRestoredReason, node)
}

// managerKilledMidMove kills the manager once a move has written its first step, and checks that
// the restarted manager finishes it.
func (s *scenarios) managerKilledMidMove(t *testing.T) {
	from, _ := s.owner(t)
	to := s.other(from)
	plugin(t, s.e, "move", env.Group, "-n", env.Namespace, "--to", to)
	// Kill it once the move has begun, its first step written to the group's status.
	eventuallyE(t, "the move under way", func() error {
		g, err := s.e.Group(t.Context())
		if err != nil {
			return err
		}
		op := g.Status.Operation
		if op == nil || op.To != to || (op.Phase != wp.PhaseTakingOffline && op.Phase != wp.PhaseBringingOnline) {
			return fmt.Errorf("operation %+v", op)
		}
		return nil
	})
	if err := s.e.Cluster.Kill("manager"); err != nil {
		t.Fatal(err)
	}
	g, err := s.e.Group(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the manager during %s %s, wave %d", g.Status.Operation.Kind, g.Status.Operation.Phase, g.Status.Operation.Wave)
	if err := s.e.StartManager(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.e.WaitGroupOnline(t.Context(), to, settle); err != nil {
		t.Fatal(err)
	}
	waitAddress(t, s.e, to)
}

// apiServerRestarted restarts kube-apiserver; the group stays (or comes back) Online.
//
// The restart takes the API away for a few seconds, and for a few more kube-apiserver denies the
// ServiceAccounts while its RBAC authorizer warms up. When the quorum holder cannot write its
// Lease for 2/3 of the lease duration in all, it gives the quorum disk up and takes it again
// only after the disk lease has run out (docs/safety.md), so the scenario ends once the holder
// publishes again: a partition in the meantime waits for a quorum owner.
func (s *scenarios) apiServerRestarted(t *testing.T) {
	node, _ := s.owner(t)
	if err := s.e.Cluster.RestartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := s.e.WaitGroupOnline(t.Context(), "", settle); err != nil {
		t.Fatal(err)
	}
	now, _ := s.owner(t)
	t.Logf("the group was Online on %s before the restart and is Online on %s after it", node, now)
	eventuallyE(t, "the quorum holder publishing again", func() error {
		l := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: env.SystemNamespace, Name: membership.QuorumLeaseName(env.ClusterName)}
		if err := s.e.Client.Get(t.Context(), key, l); err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || l.Spec.RenewTime.Time.Before(back) {
			return fmt.Errorf("Lease %s: holder %v, renewed %v", key.Name, l.Spec.HolderIdentity, l.Spec.RenewTime)
		}
		return nil
	})
	t.Logf("the quorum holder published again %s after the API server was back; the timeline:\n%s",
		time.Since(back).Round(time.Millisecond), timeline(t, s.e, back))
}

// bothLinksCut cuts both heartbeat links of the node without the quorum disk, which owns the group:
// it fails itself and the group comes back on the quorum owner.
func (s *scenarios) bothLinksCut(t *testing.T) {
	s.needLinks(t)
	quorum := waitQuorumOwner(t, s.e)
	loser := s.other(quorum)
	if n, _ := s.owner(t); n != loser {
		plugin(t, s.e, "move", env.Group, "-n", env.Namespace, "--to", loser, "--wait")
	}
	cut := time.Now()
	for _, network := range []string{"private", "public"} {
		if err := s.e.Net.Cut(loser, network); err != nil {
			t.Fatal(err)
		}
	}
	// DiskOnly: the node without the quorum disk fails itself, its group moves to the owner.
	waitEvent(t, s.e, cut, wp.SelfFencedReason, loser)
	if err := s.e.WaitGroupOnline(t.Context(), quorum, settle); err != nil {
		t.Fatal(err)
	}
	t.Logf("the group is Online on the quorum owner %s %s after %s lost both links; the timeline:\n%s",
		quorum, time.Since(cut).Round(time.Millisecond), loser, timeline(t, s.e, cut))
	eventuallyE(t, "nothing of the group runs on "+loser, func() error {
		if r := s.e.Running(t.Context(), loser); len(r) > 0 {
			return fmt.Errorf("running: %v", r)
		}
		return nil
	})
	restored := time.Now()
	for _, network := range []string{"private", "public"} {
		if err := s.e.Net.Restore(loser, network); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, s.e, restored, wp.RejoinedReason, loser)
}

// nodeCrash crashes the group's node, waits for the group on the other one, and revives the node.
func (s *scenarios) nodeCrash(t *testing.T) {
	node, _ := s.owner(t)
	survivor := s.other(node)
	qd := &wp.QuorumDisk{}
	if err := s.e.Client.Get(t.Context(), client.ObjectKey{Name: env.ClusterName}, qd); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	if err := s.e.Crash(node); err != nil {
		t.Fatal(err)
	}
	if err := s.e.WaitGroupOnline(t.Context(), survivor, settle); err != nil {
		t.Fatal(err)
	}
	t.Logf("the group is Online on %s %s after %s crashed (the quorum owner was %q)",
		survivor, time.Since(crashed).Round(time.Millisecond), node, qd.Status.Owner)
	waitAddress(t, s.e, survivor)
	if err := s.e.Revive(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	if err := s.e.Cluster.WaitNodeReady(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	t.Log(plugin(t, s.e, "status"))
}

// resourceKeepsFailing makes a resource fail on every node: restarts, one more failover, then the
// group is Failed.
func (s *scenarios) resourceKeepsFailing(t *testing.T) {
	g, err := s.e.Group(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := len(g.Status.RecentFailovers)
	// One more failover, after the restarts on this node, and then the group gives up.
	if err := setFailoverThreshold(t.Context(), s.e, int32(before+1)); err != nil {
		t.Fatal(err)
	}
	stop := failPods(t, s.e, "server")
	defer stop()
	eventuallyE(t, "the group Failed", func() error {
		g, err := s.e.Group(t.Context())
		if err != nil {
			return err
		}
		if g.Status.State != wp.GroupFailed {
			return fmt.Errorf("group %s on %q", g.Status.State, g.Status.OwnerNode)
		}
		return nil
	})
	if g, err = s.e.Group(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("the group is Failed after %d failovers in all:\n%s", len(g.Status.RecentFailovers), plugin(t, s.e, "groups", "-n", env.Namespace))
	if len(g.Status.RecentFailovers) != before+1 {
		t.Errorf("%d failovers before giving up, want one more than the %d before", len(g.Status.RecentFailovers), before)
	}
}

// timeline is the cluster's event log since a second before since, from `kubectl cluster log`.
func timeline(t *testing.T, e *env.Env, since time.Time) string {
	t.Helper()
	return plugin(t, e, "log", "--since", time.Since(since.Add(-time.Second)).Round(time.Second).String())
}

// setFailoverThreshold sets the sample group's spec.failoverThreshold.
func setFailoverThreshold(ctx context.Context, e *env.Env, n int32) error {
	g, err := e.Group(ctx)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(g.DeepCopy())
	g.Spec.FailoverThreshold = &n
	return e.Client.Patch(ctx, g, patch)
}

// waitQuorumOwner waits until a node holds the quorum disk, and returns it.
func waitQuorumOwner(t *testing.T, e *env.Env) string {
	t.Helper()
	var owner string
	eventuallyE(t, "a quorum owner", func() error {
		qd := &wp.QuorumDisk{}
		if err := e.Client.Get(context.Background(), client.ObjectKey{Name: env.ClusterName}, qd); err != nil {
			return err
		}
		if owner = qd.Status.Owner; owner == "" {
			return fmt.Errorf("no quorum owner yet")
		}
		return nil
	})
	return owner
}

// failPods marks every Running pod of the resource Failed, as a container that keeps crashing
// would leave it, until stop is called.
func failPods(t *testing.T, e *env.Env, resource string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var pods corev1.PodList
			if err := e.Client.List(ctx, &pods, client.InNamespace(env.Namespace), client.MatchingLabels{wp.ResourceLabel: resource}); err == nil {
				for i := range pods.Items {
					p := &pods.Items[i]
					if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
						p.Status.Phase = corev1.PodFailed
						p.Status.Conditions = nil
						_ = e.Client.Status().Update(ctx, p)
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

// waitEvent waits for an Event of reason newer than since whose note names node.
func waitEvent(t *testing.T, e *env.Env, since time.Time, reason, node string) {
	t.Helper()
	eventuallyE(t, "Event "+reason+" about "+node, func() error {
		var list eventsv1.EventList
		if err := e.Client.List(context.Background(), &list); err != nil {
			return err
		}
		for _, ev := range list.Items {
			last := ev.EventTime.Time
			if ev.Series != nil {
				last = ev.Series.LastObservedTime.Time // a repeated Event keeps its first eventTime
			}
			if ev.Reason == reason && strings.Contains(ev.Note, node) && !last.Before(since.Add(-time.Second)) {
				return nil
			}
		}
		return fmt.Errorf("none among %d Events", len(list.Items))
	})
}

// eventuallyE polls check every 20 ms until it returns nil, failing the test after settle: often
// enough to see a move between its steps (poll.Wait polls every 200 ms).
func eventuallyE(t *testing.T, what string, check func() error) {
	t.Helper()
	poll.WaitEvery(t, what, settle, 20*time.Millisecond, check)
}

// waitAddress waits until node's public interface carries the floating address, if the sample
// group has one.
func waitAddress(t *testing.T, e *env.Env, node string) {
	t.Helper()
	if !e.FloatingIP().IsValid() {
		return
	}
	poll.WaitEvery(t, node+" carrying the floating address "+e.FloatingIP().String(), settle, 100*time.Millisecond, func() error {
		addrs := e.Net.Addresses(node)
		if !slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return a.Addr() == e.FloatingIP() }) {
			return fmt.Errorf("its addresses: %v", addrs)
		}
		return nil
	})
}
