package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

func TestMoveDryRun(t *testing.T) {
	fixture(t)
	golden(t, "move-sql-dry-run.golden", ok(t, "move", "sql", "--to", nodeB, "--dry-run", "-n", prod))
	if a := getGroup(t, prod, "sql").Annotations[wolfpackv1alpha1.MoveToAnnotation]; a != "" {
		t.Errorf("a dry run set the move-to annotation to %q", a)
	}

	// Without --to, the best other Up node: the next preferred owner.
	var m MoveOutput
	if err := json.Unmarshal([]byte(ok(t, "move", "sql", "--dry-run", "-n", prod, "-o", "json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.From != nodeA || m.To != nodeB || !m.DryRun || m.Epoch != 2 || len(m.OfflineWaves) != 4 || m.OfflineWaves[0][0] != "server" {
		t.Errorf("move sql --dry-run -o json = %+v, want from node-a to node-b at epoch 2, server offline first", m)
	}

	// A group with no owner has nothing to take offline.
	setGroup(t, prod, "sql", wolfpackv1alpha1.DesiredOnline, wolfpackv1alpha1.ResourceGroupStatus{State: wolfpackv1alpha1.GroupOffline})
	out := ok(t, "move", "sql", "--to", nodeB, "--dry-run", "-n", prod)
	if !strings.Contains(out, "Nothing to take offline: the group has no owner.") {
		t.Errorf("dry run of an offline group:\n%s", out)
	}
}

func TestMoveRequest(t *testing.T) {
	fixture(t)
	out := ok(t, "move", "sql", "--to", nodeB, "-n", prod)
	if want := "Move of group prod/sql from node-a to node-b requested.\n"; out != want {
		t.Errorf("move printed %q, want %q", out, want)
	}
	if a := getGroup(t, prod, "sql").Annotations[wolfpackv1alpha1.MoveToAnnotation]; a != nodeB {
		t.Errorf("move-to annotation %q, want %q", a, nodeB)
	}
	fails(t, []string{"move", "sql", "--to", nodeB, "-n", prod}, "a move of group prod/sql to node-b is already requested")
}

func TestMoveErrors(t *testing.T) {
	fixture(t)
	ctx := context.Background()
	fails(t, []string{"move", "nosuch", "-n", prod}, `group "nosuch" not found in namespace "prod" (groups there: sql, web)`)
	fails(t, []string{"move", "sql", "--to", "node-x", "-n", prod},
		`cannot move group prod/sql: node "node-x" is not a node of cluster "demo" (nodes: node-a, node-b)`)
	fails(t, []string{"move", "sql", "--to", nodeA, "-n", prod}, "cannot move group prod/sql to node-a: the group is already there")
	fails(t, []string{"move", "sql", "--wait", "--dry-run", "-n", prod}, "--wait and --dry-run cannot be used together")

	// A move to a Down node, and no other node to move to.
	qd := getCluster(t)
	qd.Status.Nodes[1].State = wolfpackv1alpha1.NodeDown
	must(t, k8sClient.Status().Update(ctx, qd))
	fails(t, []string{"move", "sql", "--to", nodeB, "-n", prod}, "cannot move group prod/sql to node-b: it is Down")
	fails(t, []string{"move", "sql", "-n", prod}, "cannot move group prod/sql: no other node is Up and allowed by every resource's possibleOwners (other nodes: node-b Down)")
	if a := getGroup(t, prod, "sql").Annotations[wolfpackv1alpha1.MoveToAnnotation]; a != "" {
		t.Errorf("a refused move set the annotation to %q", a)
	}
	reset(t)

	// A resource that may not run on the target.
	server := &wolfpackv1alpha1.Resource{}
	must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: prod, Name: "server"}, server))
	server.Spec.PossibleOwners = []string{nodeA}
	must(t, k8sClient.Update(ctx, server))
	t.Cleanup(func() {
		must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: prod, Name: "server"}, server))
		server.Spec.PossibleOwners = nil
		must(t, k8sClient.Update(ctx, server))
	})
	fails(t, []string{"move", "sql", "--to", nodeB, "-n", prod}, "cannot move group prod/sql to node-b: a resource of the group may not run there (possibleOwners)")

	// A group desired Offline, and one with an operation in progress.
	setGroup(t, prod, "sql", wolfpackv1alpha1.DesiredOffline, getGroup(t, prod, "sql").Status)
	fails(t, []string{"move", "sql", "--to", nodeB, "-n", prod}, "cannot move group prod/sql to node-b: the group's desired state is Offline")
	setGroup(t, prod, "sql", wolfpackv1alpha1.DesiredOnline, wolfpackv1alpha1.ResourceGroupStatus{State: wolfpackv1alpha1.GroupPending, OwnerNode: nodeA,
		Operation: &wolfpackv1alpha1.GroupOperation{Kind: wolfpackv1alpha1.OperationFailover, From: nodeB, To: nodeA,
			Phase: wolfpackv1alpha1.PhaseBringingOnline, StartedAt: metav1.NewMicroTime(now)}})
	fails(t, []string{"move", "sql", "--to", nodeB, "-n", prod}, "group prod/sql has a Failover in progress (from node-b to node-a, BringingOnline): wait for it to end")
}

// fakeManager stands in for the Failover Manager of group namespace/name: once the group is
// annotated for a move, it calls step with the target until step returns false.
func fakeManager(t *testing.T, ns, name string, step func(ctx context.Context, g *wolfpackv1alpha1.ResourceGroup, to string, i int) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		to := ""
		for i := 0; ctx.Err() == nil; {
			time.Sleep(20 * time.Millisecond)
			g := &wolfpackv1alpha1.ResourceGroup{}
			if k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, g) != nil {
				continue
			}
			if to == "" {
				to = g.Annotations[wolfpackv1alpha1.MoveToAnnotation]
				if to == "" {
					continue
				}
			}
			if !step(ctx, g, to, i) {
				return
			}
			i++
		}
	}()
}

// setOperation writes op to the group's status and, the first time, removes the annotation,
// as the manager does.
func setOperation(ctx context.Context, g *wolfpackv1alpha1.ResourceGroup, op wolfpackv1alpha1.GroupOperation, owner string, epoch int64) error {
	g.Status.Operation = &op
	g.Status.OwnerNode, g.Status.Epoch = owner, epoch
	g.Status.State = wolfpackv1alpha1.GroupPending
	if op.Phase == wolfpackv1alpha1.PhaseSucceeded {
		g.Status.State = wolfpackv1alpha1.GroupOnline
	}
	if err := k8sClient.Status().Update(ctx, g); err != nil {
		return err
	}
	if g.Annotations[wolfpackv1alpha1.MoveToAnnotation] == "" {
		return nil
	}
	patch := client.MergeFrom(g.DeepCopy())
	delete(g.Annotations, wolfpackv1alpha1.MoveToAnnotation)
	return k8sClient.Patch(ctx, g, patch)
}

func TestMoveWait(t *testing.T) {
	fixture(t)
	started := metav1.NewMicroTime(time.Now())
	phases := []struct {
		phase wolfpackv1alpha1.OperationPhase
		wave  int32
	}{
		{wolfpackv1alpha1.PhaseTakingOffline, 0}, {wolfpackv1alpha1.PhaseTakingOffline, 2}, {wolfpackv1alpha1.PhaseTakingOffline, 3},
		{wolfpackv1alpha1.PhaseBringingOnline, 0}, {wolfpackv1alpha1.PhaseBringingOnline, 1}, {wolfpackv1alpha1.PhaseBringingOnline, 3},
		{wolfpackv1alpha1.PhaseSucceeded, 4},
	}
	fakeManager(t, prod, "sql", func(ctx context.Context, g *wolfpackv1alpha1.ResourceGroup, to string, i int) bool {
		p := phases[i]
		owner, epoch := nodeA, int64(1)
		if p.phase != wolfpackv1alpha1.PhaseTakingOffline {
			owner, epoch = to, 2
		}
		op := wolfpackv1alpha1.GroupOperation{Kind: wolfpackv1alpha1.OperationMove, From: nodeA, To: to, Phase: p.phase, Wave: p.wave, StartedAt: started}
		if err := setOperation(ctx, g, op, owner, epoch); err != nil {
			t.Errorf("fake manager: %v", err)
			return false
		}
		time.Sleep(150 * time.Millisecond)
		return i+1 < len(phases)
	})
	out := ok(t, "move", "sql", "--to", nodeB, "--wait", "--timeout", "1m", "-n", prod)
	want := `Move of group prod/sql from node-a to node-b requested.
  offline on node-a, wave 1/4: server
  offline on node-a, wave 2/4: name
  offline on node-a, wave 3/4: agent, ip
  offline on node-a, wave 4/4: disk
  online on node-b, wave 1/4: disk
  online on node-b, wave 2/4: agent, ip
  online on node-b, wave 3/4: name
  online on node-b, wave 4/4: server
Group prod/sql is Online on node-b (epoch 2).
`
	if out != want {
		t.Errorf("move --wait printed:\n%s\nwant:\n%s", out, want)
	}
}

func TestMoveWaitFailed(t *testing.T) {
	fixture(t)
	fakeManager(t, prod, "sql", func(ctx context.Context, g *wolfpackv1alpha1.ResourceGroup, to string, i int) bool {
		phase, msg := wolfpackv1alpha1.PhaseBringingOnline, ""
		if i > 0 {
			phase, msg = wolfpackv1alpha1.PhaseFailed, "node node-b went Down during the Move"
		}
		op := wolfpackv1alpha1.GroupOperation{Kind: wolfpackv1alpha1.OperationMove, From: nodeA, To: to, Phase: phase, Message: msg,
			StartedAt: metav1.NewMicroTime(time.Now())}
		if err := setOperation(ctx, g, op, to, 2); err != nil {
			t.Errorf("fake manager: %v", err)
			return false
		}
		time.Sleep(300 * time.Millisecond)
		return i == 0
	})
	fails(t, []string{"move", "sql", "--to", nodeB, "--wait", "-n", prod},
		"the move of group prod/sql to node-b failed: node node-b went Down during the Move (the group is now Pending on node-b)")

	// Waiting gives up at the timeout.
	reset(t)
	fails(t, []string{"move", "sql", "--to", nodeB, "--wait", "--timeout", "500ms", "-n", prod},
		"the move of group prod/sql to node-b did not end within 500ms (last seen: the manager has not taken the request up)")
}

func TestMoveWaitRefused(t *testing.T) {
	fixture(t)
	fakeManager(t, prod, "sql", func(ctx context.Context, g *wolfpackv1alpha1.ResourceGroup, to string, _ int) bool {
		// As the manager refuses a move that became impossible: its answer in status, then the
		// request removed.
		status := client.MergeFrom(g.DeepCopy())
		meta.SetStatusCondition(&g.Status.Conditions, metav1.Condition{Type: wolfpackv1alpha1.MoveAcceptedCondition,
			Status: metav1.ConditionFalse, Reason: wolfpackv1alpha1.NodeNotUpReason, Message: "move to " + to + " refused: it is Down"})
		if err := k8sClient.Status().Patch(ctx, g, status); err != nil {
			t.Errorf("fake manager: %v", err)
			return false
		}
		patch := client.MergeFrom(g.DeepCopy())
		delete(g.Annotations, wolfpackv1alpha1.MoveToAnnotation)
		if err := k8sClient.Patch(ctx, g, patch); err != nil {
			t.Errorf("fake manager: %v", err)
		}
		return false
	})
	fails(t, []string{"move", "sql", "--to", nodeB, "--wait", "-n", prod},
		"the manager refused the move of group prod/sql (NodeNotUp): move to node-b refused: it is Down")
}
