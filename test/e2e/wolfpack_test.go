// Package e2e tests Wolfpack end to end on a local cluster of real processes
// (internal/localcluster/env): the manager, a node agent per member node in its own network
// namespace, the quorum holder, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok. Throughout every test an invariant checker (framework.Checker) watches the API and the
// nodes' interfaces and fails the test if the sample group is ever active on two nodes at once.
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
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/test/e2e/framework"
)

func TestMain(m *testing.M) {
	// The clients here log nothing worth reading; the components log to their files.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// start brings the environment up on network for one test, or skips with the reason; its
// directory is removed unless the test failed.
func start(tb testing.TB, network string) *env.Env {
	tb.Helper()
	e, dir := framework.Start(tb, "wolfpack-e2e-", "make test-e2e", network)
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
// throughout. Each begins by waiting for the steady state (framework.WaitSteady) and leaves the
// environment able to reach it again, so that any one can run alone (go test -run
// 'TestWolfpack/node_crash') and in any order. Where the nodes share the host's network (no
// network namespaces), the scenarios that cut links skip with the reason.
func TestWolfpack(t *testing.T) {
	s := newScenarios(t, env.NetworkAuto)
	t.Run("planned move", s.plannedMove)
	t.Run("private link cut", s.privateLinkCut)
	t.Run("manager killed mid-move", s.managerKilledMidMove)
	t.Run("API server restarted", s.apiServerRestarted)
	t.Run("both heartbeat links cut", s.bothLinksCut)
	t.Run("node crash", s.nodeCrash)
	t.Run("a resource that keeps failing", s.resourceKeepsFailing)
	t.Run("API server paused", s.apiServerPaused)
	t.Run("forged Lease", s.forgedLease)
	t.Run("agent rolling restart", s.agentRollingRestart)
	t.Run("owner's agent paused with Watchdog", s.agentPausedWatchdog)
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
	c *framework.Checker
}

// failoverThreshold is the group's failoverThreshold in the scenarios: more failovers than the
// default (nodes - 1 per 6 h) allows, as an administrator would set it for these tests;
// resourceKeepsFailing lowers it for a while.
const failoverThreshold = 20

// newScenarios starts the environment on network with the checker watching, and sets the group's
// failoverThreshold.
func newScenarios(t *testing.T, network string) *scenarios {
	t.Helper()
	s := &scenarios{e: start(t, network)}
	s.c = framework.Watch(t, s.e)
	if err := s.c.WaitWatching(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, _ := s.owner(t)
	t.Logf("the group came up on %s", first)
	if err := framework.SetFailoverThreshold(t.Context(), s.e, failoverThreshold); err != nil {
		t.Fatal(err)
	}
	return s
}

// steady waits for the steady state in which every scenario begins (framework.WaitSteady), and
// returns the group's owner and the quorum disk's.
func (s *scenarios) steady(t *testing.T) (owner, quorum string) {
	t.Helper()
	qd, err := framework.WaitSteady(t.Context(), s.e)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ = s.owner(t)
	return owner, qd.Status.Owner
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

// needLinks skips a scenario that cuts links where the nodes have none.
func (s *scenarios) needLinks(t *testing.T) {
	t.Helper()
	if err := s.e.Partitions(); err != nil {
		t.Skipf("this scenario cuts links: %v", err)
	}
}

// plannedMove moves the group to the other node with `kubectl cluster move --wait`.
func (s *scenarios) plannedMove(t *testing.T) {
	from, _ := s.steady(t)
	to := framework.Other(from)
	began := time.Now()
	out := plugin(t, s.e, "move", env.Group, "-n", env.Namespace, "--to", to, "--wait")
	t.Logf("moved to %s in %s:\n%s", to, time.Since(began).Round(time.Millisecond), out)
	if err := s.e.WaitGroupOnline(t.Context(), to, framework.Settle); err != nil {
		t.Fatal(err)
	}
	waitAddress(t, s.e, to)
}

// privateLinkCut cuts the owner's private link: heartbeats go on over the public one, nothing moves
// and no node goes Down.
func (s *scenarios) privateLinkCut(t *testing.T) {
	s.needLinks(t)
	s.steady(t)
	node, epoch := s.owner(t)
	cut := time.Now()
	if err := s.e.Net.Cut(node, "private"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s.e, cut, wp.PrivateNetworkLostReason, node)
	// Heartbeats go on over the public link: nothing moves, no node is Down.
	poll.Throughout(t, "only the private link cut", 5*time.Second, 200*time.Millisecond, func() error {
		if n, ep := s.owner(t); n != node || ep != epoch {
			return fmt.Errorf("the group moved to %s (epoch %d)", n, ep)
		}
		qd := &wp.QuorumDisk{}
		if err := s.e.Client.Get(t.Context(), client.ObjectKey{Name: env.ClusterName}, qd); err == nil {
			for _, n := range qd.Status.Nodes {
				if n.State != wp.NodeUp {
					return fmt.Errorf("node %s is %s (%s)", n.Name, n.State, n.Message)
				}
			}
		}
		return nil
	})
	restored := time.Now()
	if err := s.e.Net.Restore(node, "private"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s.e, restored, wp.PrivateNetworkRestoredReason, node)
}

// managerKilledMidMove kills the manager once a move has written its first step, and checks that
// the restarted manager finishes it.
func (s *scenarios) managerKilledMidMove(t *testing.T) {
	from, _ := s.steady(t)
	to := framework.Other(from)
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
	if err := s.e.WaitGroupOnline(t.Context(), to, framework.Settle); err != nil {
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
	node, _ := s.steady(t)
	if err := s.e.Cluster.RestartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := s.e.WaitGroupOnline(t.Context(), "", framework.Settle); err != nil {
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
	_, quorum := s.steady(t)
	loser := framework.Other(quorum)
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
	if err := s.e.WaitGroupOnline(t.Context(), quorum, framework.Settle); err != nil {
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
	node, _ := s.steady(t)
	survivor := framework.Other(node)
	qd := &wp.QuorumDisk{}
	if err := s.e.Client.Get(t.Context(), client.ObjectKey{Name: env.ClusterName}, qd); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	if err := s.e.Crash(node); err != nil {
		t.Fatal(err)
	}
	if err := s.e.WaitGroupOnline(t.Context(), survivor, framework.Settle); err != nil {
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
// group is Failed. Then, as an administrator would, it lets the resource be and raises the
// failoverThreshold again: the group fails over once more and is Online.
func (s *scenarios) resourceKeepsFailing(t *testing.T) {
	s.steady(t)
	g, err := s.e.Group(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := len(g.Status.RecentFailovers)
	t.Cleanup(func() { s.recoverFailed(t) })
	// One more failover, after the restarts on this node, and then the group gives up.
	if err := framework.SetFailoverThreshold(t.Context(), s.e, int32(before+1)); err != nil {
		t.Fatal(err)
	}
	stop := failPods(t, s.e, "server")
	t.Cleanup(stop)
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

// recoverFailed brings a Failed group back for the next scenarios, once its resource no longer
// fails: with failovers allowed again, the manager fails the group over and the failed resource
// starts afresh on the other node.
func (s *scenarios) recoverFailed(t *testing.T) {
	t.Helper()
	ctx := context.Background() // t's context is done by now
	if err := framework.SetFailoverThreshold(ctx, s.e, failoverThreshold); err != nil {
		t.Errorf("raising the failoverThreshold again: %v", err)
		return
	}
	if _, err := framework.WaitSteady(ctx, s.e); err != nil {
		t.Errorf("bringing the group back for the next scenarios: %v", err)
	}
}

// timeline is the cluster's event log since a second before since, from `kubectl cluster log`.
func timeline(t *testing.T, e *env.Env, since time.Time) string {
	t.Helper()
	return plugin(t, e, "log", "--since", time.Since(since.Add(-time.Second)).Round(time.Second).String())
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

// eventuallyE polls check every 20 ms until it returns nil, failing the test after
// framework.Settle: often enough to see a move between its steps (poll.Wait polls every 200 ms).
func eventuallyE(t *testing.T, what string, check func() error) {
	t.Helper()
	poll.WaitEvery(t, what, framework.Settle, 20*time.Millisecond, check)
}

// waitAddress waits until node's public interface carries the floating address, if the sample
// group has one.
func waitAddress(t *testing.T, e *env.Env, node string) {
	t.Helper()
	if !e.FloatingIP().IsValid() {
		return
	}
	poll.WaitEvery(t, node+" carrying the floating address "+e.FloatingIP().String(), framework.Settle, 100*time.Millisecond, func() error {
		addrs := e.Net.Addresses(node)
		if !slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return a.Addr() == e.FloatingIP() }) {
			return fmt.Errorf("its addresses: %v", addrs)
		}
		return nil
	})
}
