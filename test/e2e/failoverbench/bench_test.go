// Package failoverbench is make bench-failover: Wolfpack's failover on the local cluster of real
// processes, against vanilla Kubernetes on the same cluster.
package failoverbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wp "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/env"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
	"github.com/wolfpack-ha/wolfpack/test/e2e/framework"
)

const (
	// trialsEnv sets the number of Wolfpack crash trials (make bench-failover TRIALS=n).
	trialsEnv = "WOLFPACK_BENCH_TRIALS"
	// vanillaEnv set to 0 leaves the vanilla Kubernetes run out (make bench-failover VANILLA=0).
	vanillaEnv = "WOLFPACK_BENCH_VANILLA"
	// observeEvery is how often a trial reads the QuorumDisk and the group: the resolution of its
	// times.
	observeEvery = 50 * time.Millisecond
	// vanillaCap bounds the wait for the vanilla workloads to come back.
	vanillaCap = 600 * time.Second
	// vanillaNamespace holds the Deployment and the StatefulSet that Wolfpack does not manage.
	vanillaNamespace = "vanilla"
	// failoverThreshold replaces the sample's failoverThreshold (1 per 6 h), which would
	// leave the group Failed at the second crash.
	failoverThreshold = 1000
)

func TestMain(m *testing.M) {
	// The clients here log nothing worth reading; the components log to their files.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// BenchmarkFailover crashes the node that owns the sample group, again and again, and measures
// how long Wolfpack takes to notice (the QuorumDisk's status has the node Down) and to bring
// every resource of the group Online on the survivor. Trials alternate between crashing the
// node that holds the quorum disk and the other one (the group is moved there first), since the
// two differ (docs/safety.md, "A cost of DiskOnly"); the crashed node is revived, and is Ready
// and Up again, before the next trial. Then, once, on the same cluster, Wolfpack's manager is
// stopped and a node that runs a one-replica Deployment and a one-replica StatefulSet is
// crashed, to measure what vanilla Kubernetes does, capped at 10 minutes. The invariant checker
// watches throughout. The results go to the log and to bin/bench-failover.md.
func BenchmarkFailover(b *testing.B) {
	trials := trialCount(b)
	began := time.Now()
	e, dir := startBench(b)
	b.Cleanup(func() { dumpEvents(b, e, filepath.Join(dir, "events.txt")) })
	c := framework.StartChecker(e) // checked at the end, stopped in any case
	b.Cleanup(c.Stop)
	ctx := context.Background()

	if err := framework.SetFailoverThreshold(ctx, e, failoverThreshold); err != nil {
		b.Fatal(err)
	}
	qd, err := framework.QuorumDisk(ctx, e)
	if err != nil {
		b.Fatal(err)
	}
	results := make([]trialResult, 0, trials)
	report := func(v *vanillaResult) string {
		return renderReport(reportInput{trials: results, planned: trials, vanilla: v, began: began,
			wall: time.Since(began), checker: c.Summary(), settings: settings(qd)})
	}
	for i := range trials {
		r, err := trial(ctx, b, e, i)
		if err != nil {
			b.Log(report(nil))
			b.Fatalf("trial %d: %v (logs in %s)", i+1, err, dir)
		}
		results = append(results, r)
		b.Logf("trial %d/%d: %s", i+1, trials, r)
	}
	var v vanillaResult
	withVanilla := os.Getenv(vanillaEnv) != "0"
	if withVanilla {
		if v, err = vanilla(ctx, b, e); err != nil {
			b.Log(report(nil))
			b.Fatalf("vanilla: %v (logs in %s)", err, dir)
		}
	}
	c.Stop()
	text := report(nil)
	if withVanilla {
		text = report(&v)
	}
	b.Log("\n" + text)
	out := filepath.Join(repo.Root(), "bin", "bench-failover.md")
	if err := os.WriteFile(out, []byte(text), 0o600); err != nil {
		b.Error(err)
	} else {
		b.Logf("wrote %s; the environment's logs are in %s", out, dir)
	}

	all := func(f func(trialResult) time.Duration) dist {
		return distribution(collect(results, nil, f))
	}
	detect, recovery := all(trialResult.detection), all(trialResult.recovery)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(detect.median.Seconds(), "detect-median-s")
	b.ReportMetric(recovery.median.Seconds(), "recover-median-s")
	b.ReportMetric(recovery.p95.Seconds(), "recover-p95-s")
	owner, other := true, false
	for _, k := range []struct {
		name string
		kind *bool
	}{{"owner", &owner}, {"other", &other}} {
		if d := distribution(collect(results, k.kind, trialResult.recovery)); d.n > 0 {
			b.ReportMetric(d.median.Seconds(), "recover-"+k.name+"-median-s")
			b.ReportMetric(d.p95.Seconds(), "recover-"+k.name+"-p95-s")
		}
	}
	if v.deployment > 0 {
		b.ReportMetric(v.deployment.Seconds(), "vanilla-deploy-s")
		b.ReportMetric(v.deployment.Seconds()/recovery.median.Seconds(), "deploy/wolfpack")
	}
	c.Check(b)
}

// trialCount reads the number of trials from the environment: 20 unless set.
func trialCount(b *testing.B) int {
	b.Helper()
	s := os.Getenv(trialsEnv)
	if s == "" {
		return 20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of trials", trialsEnv, s)
	}
	return n
}

// startBench brings the environment up, or skips with the reason. Unlike the end-to-end tests,
// it keeps the environment's directory, whose logs (and the Events,
// dumpEvents) explain a slow trial after the run, removing only etcd's data when the
// benchmark passes; it returns the directory; and it stops the environment on SIGTERM.
func startBench(b *testing.B) (*env.Env, string) {
	b.Helper()
	e, dir := framework.Start(b, "wolfpack-bench-", "make bench-failover", env.NetworkAuto)
	// A benchmark that is killed with SIGTERM or interrupted leaves nothing running.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		if s, ok := <-sig; ok {
			fmt.Fprintf(os.Stderr, "BenchmarkFailover: %v: stopping the environment (logs in %s)\n", s, dir)
			_ = e.Stop()
			os.Exit(1)
		}
	}()
	b.Cleanup(func() {
		signal.Stop(sig)
		close(sig)
		if err := e.Stop(); err != nil {
			b.Errorf("stopping the environment: %v", err)
		}
		if !b.Failed() {
			_ = os.RemoveAll(filepath.Join(dir, "etcd"))
		}
		b.Logf("logs kept in %s", dir)
	})
	return e, dir
}

// dumpEvents writes every Event of the cluster to path, oldest first, to read a run's
// trials afterwards.
func dumpEvents(tb testing.TB, e *env.Env, path string) {
	tb.Helper()
	var events corev1.EventList
	if err := e.Client.List(context.Background(), &events); err != nil {
		tb.Logf("listing the Events: %v", err)
		return
	}
	at := func(ev *corev1.Event) time.Time {
		switch {
		case !ev.EventTime.IsZero():
			return ev.EventTime.Time
		case !ev.LastTimestamp.IsZero():
			return ev.LastTimestamp.Time
		}
		return ev.FirstTimestamp.Time
	}
	slices.SortStableFunc(events.Items, func(a, b corev1.Event) int { return at(&a).Compare(at(&b)) })
	var w strings.Builder
	for i := range events.Items {
		ev := &events.Items[i]
		fmt.Fprintf(&w, "%s %s %s %s/%s/%s x%d: %s\n", at(ev).Format("15:04:05.000000"), ev.Type, ev.Reason,
			ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, max(ev.Count, 1), ev.Message)
	}
	if err := os.WriteFile(path, []byte(w.String()), 0o600); err != nil {
		tb.Log(err)
	}
}

// trialResult is one crash of the group's owner. Durations are from the crash; zero when not
// seen.
type trialResult struct {
	n                  int
	crashed, survivor  string
	quorumOwner        bool          // the crashed node held the quorum disk
	down               time.Duration // the QuorumDisk's status has the node Down
	quorum             time.Duration // the survivor holds the quorum disk (quorum owner crashed)
	failover           time.Duration // the manager started the failover (status.operation.startedAt)
	online             time.Duration // every resource Online on the survivor
	back               time.Duration // from the revival until the node is Ready and Up again
	load               string        // the load averages at the crash
	startedAt, crashAt time.Time
}

func (r trialResult) detection() time.Duration { return r.down }
func (r trialResult) recovery() time.Duration  { return r.online }

func (r trialResult) kind() string {
	if r.quorumOwner {
		return "quorum owner"
	}
	return "other node"
}

func (r trialResult) String() string {
	s := fmt.Sprintf("crashed %s (%s): Down after %s, failover started after %s, Online on %s after %s",
		r.crashed, r.kind(), secs(r.down), secs(r.failover), r.survivor, secs(r.online))
	if r.quorumOwner {
		s += fmt.Sprintf(", quorum taken by %s after %s", r.survivor, secs(r.quorum))
	}
	return s + fmt.Sprintf("; back Ready and Up %s after its revival; load average %s", secs(r.back), r.load)
}

// trial crashes the group's owner: in even trials (counting from 0) the node that holds the
// quorum disk, in odd ones the other node, the group moved to it first if need be. Then it
// revives the node and waits until it is Ready and Up again.
func trial(ctx context.Context, b *testing.B, e *env.Env, i int) (trialResult, error) {
	b.Helper()
	r := trialResult{n: i + 1, startedAt: time.Now()}
	qd, err := framework.WaitSteady(ctx, e)
	if err != nil {
		return r, err
	}
	q := qd.Status.Owner
	r.crashed = q
	if i%2 == 1 {
		r.crashed = framework.Other(q)
	}
	r.survivor = framework.Other(r.crashed)
	g, err := e.Group(ctx)
	if err != nil {
		return r, err
	}
	if g.Status.OwnerNode != r.crashed {
		if err := move(ctx, e, r.crashed); err != nil {
			return r, err
		}
	}
	// The owner of the quorum right before the crash decides the kind of the trial.
	if qd, err = framework.QuorumDisk(ctx, e); err != nil {
		return r, err
	}
	r.quorumOwner = qd.Status.Owner == r.crashed

	r.load = load()
	r.crashAt = time.Now()
	if err := e.Crash(r.crashed); err != nil {
		return r, fmt.Errorf("crashing %s: %w", r.crashed, err)
	}
	if err := r.observe(ctx, e); err != nil {
		return r, err
	}
	revived := time.Now()
	if err := e.Revive(ctx, r.crashed); err != nil {
		return r, fmt.Errorf("reviving %s: %w", r.crashed, err)
	}
	// The node may not have gone NotReady yet (kube-controller-manager waits 50 s): wait until
	// the new kwok holds its Lease, so that it does not go NotReady during the next trial.
	if err := waitKubeletLease(ctx, e, r.crashed, revived); err != nil {
		return r, err
	}
	if err := e.Cluster.WaitNodeReady(ctx, r.crashed); err != nil {
		return r, err
	}
	if err := waitMember(ctx, e, r.crashed); err != nil {
		return r, err
	}
	r.back = time.Since(revived)
	return r, nil
}

// observe polls the QuorumDisk and the group every observeEvery until every resource of the group
// is Online on the survivor and, when the quorum owner crashed, the survivor holds the quorum
// disk; it records when each was first seen.
func (r *trialResult) observe(ctx context.Context, e *env.Env) error {
	deadline := r.crashAt.Add(framework.Settle)
	last := ""
	for {
		if r.online > 0 && (!r.quorumOwner || r.quorum > 0) {
			return nil
		}
		if qd, err := framework.QuorumDisk(ctx, e); err == nil {
			at := time.Since(r.crashAt)
			if r.down == 0 && framework.NodeState(qd, r.crashed) == wp.NodeDown {
				r.down = at
			}
			if r.quorumOwner && r.quorum == 0 && qd.Status.Owner == r.survivor {
				r.quorum = at
			}
		}
		g, err := e.Group(ctx)
		var resources wp.ResourceList
		if err == nil {
			err = e.Client.List(ctx, &resources, client.InNamespace(env.Namespace))
		}
		at := time.Since(r.crashAt)
		if err != nil {
			last = err.Error()
		} else {
			if op := g.Status.Operation; r.failover == 0 && op != nil && op.Kind == wp.OperationFailover && op.StartedAt.After(r.crashAt) {
				r.failover = op.StartedAt.Sub(r.crashAt)
			}
			online := g.Status.State == wp.GroupOnline && g.Status.OwnerNode == r.survivor && len(resources.Items) > 0
			for _, res := range resources.Items {
				if res.Spec.Group == env.Group && (res.Status.State != wp.ResourceOnline || res.Status.Node != r.survivor) {
					online = false
				}
			}
			if online && r.down > 0 && r.online == 0 {
				r.online = at
			}
			last = fmt.Sprintf("group %s on %q", g.Status.State, g.Status.OwnerNode)
			if r.online > 0 {
				last = "the quorum disk not taken by " + r.survivor
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after crashing %s, not done within %s: %s", r.crashed, framework.Settle, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(observeEvery):
		}
	}
}

// move moves the group to node as an administrator would (the move-to annotation) and
// waits until it is Online there.
func move(ctx context.Context, e *env.Env, node string) error {
	g, err := e.Group(ctx)
	if err != nil {
		return err
	}
	before := g.DeepCopy()
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[wp.MoveToAnnotation] = node
	if err := e.Client.Patch(ctx, g, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("moving the group to %s: %w", node, err)
	}
	return waitFor(ctx, "the group moved to "+node, func() error {
		g, err := e.Group(ctx)
		if err != nil {
			return err
		}
		if _, ok := g.Annotations[wp.MoveToAnnotation]; ok || g.Status.State != wp.GroupOnline || g.Status.OwnerNode != node {
			return fmt.Errorf("group %s on %q", g.Status.State, g.Status.OwnerNode)
		}
		return nil
	})
}

// waitKubeletLease waits until node's Lease in kube-node-lease is renewed after since, by the
// node's new kwok.
func waitKubeletLease(ctx context.Context, e *env.Env, node string, since time.Time) error {
	return waitFor(ctx, "the kubelet Lease of "+node+" renewed", func() error {
		l := &coordinationv1.Lease{}
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: node}, l); err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(since) {
			return errors.New("not renewed yet")
		}
		return nil
	})
}

// waitMember waits until node is Up in the QuorumDisk's status and free of the out-of-service
// taint.
func waitMember(ctx context.Context, e *env.Env, node string) error {
	return waitFor(ctx, node+" Up and in service", func() error {
		qd, err := framework.QuorumDisk(ctx, e)
		if err != nil {
			return err
		}
		if s := framework.NodeState(qd, node); s != wp.NodeUp {
			return fmt.Errorf("it is %q", s)
		}
		n := &corev1.Node{}
		if err := e.Client.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
			return err
		}
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeOutOfService {
				return errors.New("it has the out-of-service taint")
			}
		}
		return nil
	})
}

// waitFor calls f every 200 ms until it returns nil or framework.Settle has passed.
func waitFor(ctx context.Context, what string, f func() error) error {
	return poll.Until(ctx, what, framework.Settle, 200*time.Millisecond, func(context.Context) error { return f() })
}

// vanillaResult is the one crash of a node that runs the vanilla workloads. Durations are from
// the crash; zero when not seen within vanillaCap.
type vanillaResult struct {
	node, survivor string
	notReady       time.Duration // the node's Ready condition is no longer True
	evicted        time.Duration // the old pods have a deletion timestamp
	deployment     time.Duration // the Deployment's new pod is Running and Ready on the survivor
	statefulSet    time.Duration // the StatefulSet's new pod is Running and Ready on the survivor
	stuck          string        // what the StatefulSet's pod looked like at the end
	tainted        bool          // the node got the out-of-service taint (it must not)
}

// vanilla runs a one-replica Deployment and a one-replica StatefulSet, both allowed on the
// two member nodes only and preferring the node that does not hold the quorum disk, with the
// group moved to the quorum owner first; then it stops Wolfpack's manager (whose out-of-service
// taint would otherwise release the dead node's pods, which is not vanilla Kubernetes), crashes
// that node as the trials do, and waits until each workload has a new pod Running and Ready on
// the survivor, or vanillaCap has passed.
func vanilla(ctx context.Context, b *testing.B, e *env.Env) (vanillaResult, error) {
	b.Helper()
	qd, err := framework.QuorumDisk(ctx, e)
	if err != nil {
		return vanillaResult{}, err
	}
	v := vanillaResult{survivor: qd.Status.Owner, node: framework.Other(qd.Status.Owner)}
	if g, err := e.Group(ctx); err != nil {
		return v, err
	} else if g.Status.OwnerNode != v.survivor {
		if err := move(ctx, e, v.survivor); err != nil {
			return v, err
		}
	}
	if err := createVanilla(ctx, e, v.node); err != nil {
		return v, err
	}
	old := map[types.UID]bool{}
	err = waitFor(ctx, "the vanilla pods Running and Ready on "+v.node, func() error {
		pods, err := vanillaPods(ctx, e)
		if err != nil {
			return err
		}
		for _, app := range []string{"web", "db"} {
			p := pods[app]
			if len(p) != 1 || !runningReady(&p[0]) || p[0].Spec.NodeName != v.node {
				return fmt.Errorf("%s: %s", app, describePods(p))
			}
			old[p[0].UID] = true
		}
		return nil
	})
	if err != nil {
		return v, err
	}
	b.Logf("vanilla: a Deployment and a StatefulSet each run one pod on %s; stopping Wolfpack's manager and crashing %s", v.node, v.node)
	if err := e.Cluster.Terminate("manager"); err != nil {
		return v, fmt.Errorf("stopping the manager: %w", err)
	}
	crashAt := time.Now()
	if err := e.Crash(v.node); err != nil {
		return v, fmt.Errorf("crashing %s: %w", v.node, err)
	}
	for time.Since(crashAt) < vanillaCap {
		v.observe(ctx, b, e, crashAt, old)
		if v.deployment > 0 && v.statefulSet > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if pods, err := vanillaPods(ctx, e); err == nil {
		v.stuck = describePods(pods["db"])
	}
	return v, nil
}

// observe records what has changed since the vanilla crash.
func (v *vanillaResult) observe(ctx context.Context, b *testing.B, e *env.Env, crashAt time.Time, old map[types.UID]bool) {
	b.Helper()
	at := time.Since(crashAt)
	n := &corev1.Node{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: v.node}, n); err == nil {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue && v.notReady == 0 {
				v.notReady = at
				b.Logf("vanilla: %s is Ready=%s after %s", v.node, c.Status, secs(at))
			}
		}
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeOutOfService && !v.tainted {
				v.tainted = true
				b.Logf("vanilla: %s got the out-of-service taint after %s", v.node, secs(at))
			}
		}
	}
	pods, err := vanillaPods(ctx, e)
	if err != nil {
		return
	}
	for app, ps := range pods {
		for i := range ps {
			p := &ps[i]
			if old[p.UID] && p.DeletionTimestamp != nil && v.evicted == 0 {
				v.evicted = at
				b.Logf("vanilla: pod %s on %s is being deleted after %s", p.Name, p.Spec.NodeName, secs(at))
			}
			if old[p.UID] || p.Spec.NodeName != v.survivor || !runningReady(p) {
				continue
			}
			switch {
			case app == "web" && v.deployment == 0:
				v.deployment = at
				b.Logf("vanilla: the Deployment's pod %s is Running and Ready on %s after %s", p.Name, v.survivor, secs(at))
			case app == "db" && v.statefulSet == 0:
				v.statefulSet = at
				b.Logf("vanilla: the StatefulSet's pod %s is Running and Ready on %s after %s", p.Name, v.survivor, secs(at))
			}
		}
	}
}

// createVanilla makes the namespace, a Deployment "web" and a StatefulSet "db" whose claim binds
// to a volume made for it (storage class "", as the sample's claims).
func createVanilla(ctx context.Context, e *env.Env, prefer string) error {
	affinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: env.Member}},
		}}},
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100,
			Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{prefer}},
			}}}},
	}}
	podSpec := func(app string, mounts []corev1.VolumeMount) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Affinity: affinity, Containers: []corev1.Container{{Name: app, Image: "registry.k8s.io/pause:3.10", VolumeMounts: mounts}}}}
	}
	storage := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	one := int32(1)
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: vanillaNamespace}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: vanillaNamespace + "-data-db-0"},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      storage,
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/wolfpack-e2e/vanilla-db"}},
				ClaimRef:                      &corev1.ObjectReference{Namespace: vanillaNamespace, Name: "data-db-0"},
			}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: vanillaNamespace, Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: podSpec("web", nil)}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: vanillaNamespace, Name: "db"},
			Spec: appsv1.StatefulSetSpec{Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Template: podSpec("db", []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources:        corev1.VolumeResourceRequirements{Requests: storage},
						StorageClassName: new(""),
					}}},
			}},
	}
	for _, o := range objs {
		if err := e.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// vanillaPods are the vanilla namespace's pods by their app label.
func vanillaPods(ctx context.Context, e *env.Env) (map[string][]corev1.Pod, error) {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(vanillaNamespace)); err != nil {
		return nil, err
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		out[p.Labels["app"]] = append(out[p.Labels["app"]], p)
	}
	return out, nil
}

func runningReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func describePods(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "no pod"
	}
	s := make([]string, 0, len(pods))
	for _, p := range pods {
		d := fmt.Sprintf("pod %s %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		if p.DeletionTimestamp != nil {
			d += " (Terminating)"
		}
		s = append(s, d)
	}
	return strings.Join(s, ", ")
}

// dist is a distribution: the median is the middle value (the mean of the two middle ones for
// an even count), p95 the nearest rank (the ceil(0.95 n)-th smallest).
type dist struct {
	n                   int
	lo, median, p95, hi time.Duration
}

func distribution(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return dist{n: n, lo: s[0], median: median, p95: s[int(math.Ceil(0.95*float64(n)))-1], hi: s[n-1]}
}

// collect takes f of the trials whose quorumOwner is *kind, or of all when kind is nil.
func collect(rs []trialResult, kind *bool, f func(trialResult) time.Duration) []time.Duration {
	var out []time.Duration
	for _, r := range rs {
		if kind == nil || r.quorumOwner == *kind {
			out = append(out, f(r))
		}
	}
	return out
}

func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// settings describes the settings the trials ran with: the QuorumDisk's, which are the API's
// defaults in the sample, and the manager's, which are its defaults (the environment passes no
// --fence-grace).
func settings(qd *wp.QuorumDisk) string {
	hb := qd.Spec.Heartbeat
	return fmt.Sprintf("QuorumDisk `%s`, lease %s, heartbeats %s x %d, fence action %s; the manager at its default `--fence-grace`",
		qd.Spec.QuorumTypeOrDefault(), qd.Spec.LeaseDurationOrDefault(), hb.IntervalOrDefault(), hb.ThresholdOrDefault(),
		qd.Spec.Fencing.ActionOrDefault())
}

type reportInput struct {
	settings string
	trials   []trialResult
	planned  int
	vanilla  *vanillaResult
	began    time.Time
	wall     time.Duration
	checker  string
}

// renderReport is the results as markdown.
func renderReport(in reportInput) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("## Failover: Wolfpack and vanilla Kubernetes (`make bench-failover`)")
	p("")
	p("Run on %s, %d CPUs (load average at the end %s), %d of %d trials; wall time %s; invariant checker: %s.",
		in.began.Format("2006-01-02 15:04 MST"), runtime.NumCPU(), load(), len(in.trials), in.planned, in.wall.Round(time.Second), in.checker)
	p("The local cluster of internal/localcluster/env (real etcd, kube-apiserver, kube-controller-manager and kube-scheduler with upstream timings, one kwok per node),")
	p("Wolfpack's manager, an agent per member node in its own network namespace and the quorum holder; %s.", in.settings)
	p("A crash cuts the node's links and kills its agent, quorum holder and kwok at once. Times are from the crash,")
	p("read every %s. Trials alternate between crashing the quorum disk's owner and the other node (the group moved there first);", observeEvery)
	p("the group's failoverThreshold is raised to %d for the run.", failoverThreshold)
	p("")
	p("| Wolfpack, sample group `sql` (5 resources) | trials | min | median | p95 | max |")
	p("|---|---:|---:|---:|---:|---:|")
	owner, notOwner := true, false
	for _, m := range []struct {
		name string
		f    func(trialResult) time.Duration
	}{{"detection (node Down in the QuorumDisk status)", trialResult.detection}, {"recovery (every resource Online on the survivor)", trialResult.recovery}} {
		for _, k := range []struct {
			name string
			kind *bool
		}{{"all crashes", nil}, {"quorum owner crashed", &owner}, {"other node crashed", &notOwner}} {
			d := distribution(collect(in.trials, k.kind, m.f))
			p("| %s: %s | %d | %s | %s | %s | %s |", m.name, k.name, d.n, secs(d.lo), secs(d.median), secs(d.p95), secs(d.hi))
		}
	}
	p("")
	recovery := distribution(collect(in.trials, nil, trialResult.recovery)).median
	if v := in.vanilla; v != nil {
		capped := func(d time.Duration) string {
			if d == 0 {
				return fmt.Sprintf("> %.0f s", vanillaCap.Seconds())
			}
			return fmt.Sprintf("%.1f s", d.Seconds())
		}
		ratio := func(d time.Duration) string {
			if recovery == 0 {
				return "-"
			}
			if d == 0 {
				return fmt.Sprintf("> %.0fx", vanillaCap.Seconds()/recovery.Seconds())
			}
			return fmt.Sprintf("%.0fx", d.Seconds()/recovery.Seconds())
		}
		p("| Vanilla Kubernetes, one crash of %s (Wolfpack's manager stopped) | after the crash | / Wolfpack median recovery |", v.node)
		p("|---|---:|---:|")
		p("| node NotReady (kube-controller-manager, node-monitor-grace-period 50 s) | %s | |", capped(v.notReady))
		p("| pods on the dead node evicted (deletion timestamp set) | %s | |", capped(v.evicted))
		p("| one-replica Deployment: new pod Running and Ready on %s | %s | %s |", v.survivor, capped(v.deployment), ratio(v.deployment))
		p("| one-replica StatefulSet (pre-bound RWO volume): new pod Running and Ready on %s | %s | %s |", v.survivor, capped(v.statefulSet), ratio(v.statefulSet))
		p("")
		if v.statefulSet == 0 {
			p("The StatefulSet at the end: %s.", v.stuck)
		}
		if v.tainted {
			p("**The node got the out-of-service taint during the vanilla crash, so the vanilla figures are not vanilla.**")
		}
		p("Both vanilla workloads are allowed on %s only (required node affinity) and were placed on %s by a preferred one.", strings.Join(env.Member, " and "), v.node)
		p("")
	}
	p("<details><summary>Every trial</summary>")
	p("")
	p("| trial | crashed | kind | node Down | failover started | Online on survivor | quorum taken | back Ready and Up after revival | load average at the crash |")
	p("|---:|---|---|---:|---:|---:|---:|---:|---|")
	for _, r := range in.trials {
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s |", r.n, r.crashed, r.kind(), secs(r.down), secs(r.failover),
			secs(r.online), secs(r.quorum), secs(r.back), r.load)
	}
	p("")
	p("</details>")
	return w.String()
}

// load is the 1, 5 and 15 minute load averages.
func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
