// Command demo is what `make demo` runs until the full demo on a local cluster (issue 7) exists.
// It starts a real kube-apiserver and etcd (envtest) with the Wolfpack CRDs, two simulated nodes
// labelled for the cluster "demo" (a stand-in kubelet runs their pods), the manager's
// controllers in-process, and the samples; then it moves the group "sql", crashes its node, and
// prints the group back on the other node with the Event timeline.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/controllers"
	"github.com/wolfpack-ha/wolfpack/internal/testenv"
)

const (
	namespace = "wolfpack-demo"
	node1     = "demo-1"
	node2     = "demo-2"
	// fenceGrace stands in for the quorum disk's fencing, which does not exist yet: a node is
	// taken to have stopped its workloads once it has been Down this long.
	fenceGrace = 5 * time.Second
)

func main() {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(wolfpackv1alpha1.AddToScheme(scheme))
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	stepf("Two nodes labelled %s=demo, and the group's ReadWriteOnce claim sql-data", wolfpackv1alpha1.ClusterLabel)
	for _, n := range []string{node1, node2} {
		if err := testenv.CreateNode(ctx, c, n, map[string]string{wolfpackv1alpha1.ClusterLabel: "demo"}); err != nil {
			return err
		}
	}
	kubelet := testenv.StartKubelet(c, namespace, node1, node2)
	defer kubelet.Stop()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}
	if err := testenv.BoundClaim(ctx, c, namespace, "sql-data"); err != nil {
		return err
	}

	stepf("The manager: Failover Manager and Resource Manager (fence grace %s until the quorum disk exists)", fenceGrace)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(testenv.LeaseNamespace)})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, controllers.Options{FenceGrace: fenceGrace, Concurrency: 4, LeaseNamespace: testenv.LeaseNamespace}); err != nil {
		return err
	}
	mctx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	go func() { _ = mgr.Start(mctx) }()

	return scenario(ctx, env, c, kubelet)
}

// scenario applies the samples, moves the group, crashes its node and shows the result.
func scenario(ctx context.Context, env *testenv.Env, c client.Client, kubelet *testenv.Kubelet) error {
	stepf("kubectl apply -k config/samples  (the cluster demo and the group sql)")
	samples, err := testenv.Samples()
	if err != nil {
		return err
	}
	for _, obj := range samples {
		if obj.GetKind() != "QuorumDisk" {
			obj.SetNamespace(namespace)
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	start := time.Now()
	took, err := waitOnline(ctx, c, node1)
	if err != nil {
		return err
	}
	fmt.Printf("sql is Online on %s after %s\n", node1, took)
	if err := show(ctx, env); err != nil {
		return err
	}

	stepf("kubectl annotate rg sql %s=%s  (a planned move)", wolfpackv1alpha1.MoveToAnnotation, node2)
	g := &wolfpackv1alpha1.ResourceGroup{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sql"}, g); err != nil {
		return err
	}
	patch := client.MergeFrom(g.DeepCopy())
	g.Annotations = map[string]string{wolfpackv1alpha1.MoveToAnnotation: node2}
	if err := c.Patch(ctx, g, patch); err != nil {
		return err
	}
	if took, err = waitOnline(ctx, c, node2); err != nil {
		return err
	}
	fmt.Printf("sql moved to %s in %s: offline on %s in reverse order, then online on %s in order\n", node2, took, node1, node2)

	stepf("Node %s crashes (its kubelet and its node agent stop)", node2)
	if err := kubelet.Kill(ctx, node2); err != nil {
		return err
	}
	if took, err = waitOnline(ctx, c, node1); err != nil {
		return err
	}
	fmt.Printf("sql is back Online on %s %s after the crash: the node is Down once its peer stops hearing it and its\n"+
		"Lease misses two renewals, then %s of fence grace\n", node1, took, fenceGrace)
	if err := show(ctx, env); err != nil {
		return err
	}

	stepf("The timeline: Events of the cluster, the group and its resources")
	if err := timeline(ctx, c, start); err != nil {
		return err
	}
	fmt.Println("\nStopping the control plane. The full demo runs real binaries on a local cluster (issue 7).")
	return nil
}

func stepf(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

// waitOnline waits until the group sql is Online on node, and says how long that took.
func waitOnline(ctx context.Context, c client.Client, node string) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		g := &wolfpackv1alpha1.ResourceGroup{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sql"}, g); err != nil {
			return 0, err
		}
		if g.Status.State == wolfpackv1alpha1.GroupOnline && g.Status.OwnerNode == node {
			return time.Since(start).Round(time.Millisecond), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, errors.New("group sql did not come Online on " + node + " within 2 minutes")
}

func show(ctx context.Context, env *testenv.Env) error {
	for _, list := range []struct{ title, path string }{
		{"kubectl get resourcegroups -n " + namespace + " -o wide", "/apis/wolfpack.dev/v1alpha1/namespaces/" + namespace + "/resourcegroups"},
		{"kubectl get resources -n " + namespace + " -o wide", "/apis/wolfpack.dev/v1alpha1/namespaces/" + namespace + "/resources"},
	} {
		tbl, err := testenv.GetTable(ctx, env.Config, list.path)
		if err != nil {
			return err
		}
		fmt.Printf("\n$ %s\n", list.title)
		printTable(tbl)
	}
	return nil
}

// timeline prints the Events of the namespace in time order, relative to start.
func timeline(ctx context.Context, c client.Client, start time.Time) error {
	var all eventsv1.EventList
	if err := c.List(ctx, &all); err != nil {
		return err
	}
	list := all.DeepCopy()
	list.Items = slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Namespace != namespace && e.Regarding.Kind != "QuorumDisk"
	})
	when := func(e eventsv1.Event) time.Time {
		if !e.EventTime.IsZero() {
			return e.EventTime.Time
		}
		return e.CreationTimestamp.Time
	}
	slices.SortStableFunc(list.Items, func(a, b eventsv1.Event) int { return when(a).Compare(when(b)) })
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "T+\tTYPE\tOBJECT\tREASON\tNOTE")
	for _, e := range list.Items {
		fmt.Fprintf(w, "%6.2fs\t%s\t%s/%s\t%s\t%s\n", when(e).Sub(start).Seconds(), e.Type,
			strings.ToLower(e.Regarding.Kind), e.Regarding.Name, e.Reason, e.Note)
	}
	return w.Flush()
}

// printTable prints a Table the way kubectl does, with every column (as -o wide).
func printTable(tbl *metav1.Table) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	header := make([]string, 0, len(tbl.ColumnDefinitions))
	for _, col := range tbl.ColumnDefinitions {
		header = append(header, strings.ToUpper(col.Name))
	}
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, row := range tbl.Rows {
		cells := make([]string, 0, len(row.Cells))
		for _, cell := range row.Cells {
			if cell == nil {
				cell = "<none>"
			}
			cells = append(cells, fmt.Sprint(cell))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	_ = w.Flush()
}
