package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/test/builder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/simnode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	env        *envtest.Env
	k8sClient  client.Client
	kubeconfig string
)

// now is the fake time of every command: ages in the golden files are computed from it.
var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	flag.Parse()
	logs := io.Discard
	if os.Getenv("WOLFPACK_TEST_LOGS") != "" {
		logs = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true)))
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	var err error
	env, err = envtest.Start()
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	k8sClient, err = client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		return 1, err
	}
	// The plugin reaches the API server as kubectl would: through a kubeconfig, as an admin.
	admin, err := env.AddUser(crenvtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return 1, err
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "kubectl-cluster-test-")
	if err != nil {
		return 1, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// cmdResult is what one run of kubectl cluster printed and returned.
type cmdResult struct {
	out, errOut string
	err         error
}

// kubectlCluster runs kubectl cluster with args against envtest, at the fake time now.
func kubectlCluster(t *testing.T, args ...string) cmdResult {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := NewCommand(streams, clocktesting.NewFakePassiveClock(now))
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return cmdResult{out: out.String(), errOut: errOut.String(), err: err}
}

// ok runs kubectl cluster and fails the test when it fails.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := kubectlCluster(t, args...)
	if r.err != nil {
		t.Fatalf("kubectl cluster %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r.out
}

// fails runs kubectl cluster, expecting it to fail with an error that contains every one of want.
func fails(t *testing.T, args []string, want ...string) cmdResult {
	t.Helper()
	r := kubectlCluster(t, args...)
	if r.err == nil {
		t.Fatalf("kubectl cluster %s succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), r.out)
	}
	for _, w := range want {
		if !strings.Contains(r.err.Error(), w) {
			t.Errorf("kubectl cluster %s: error %q, want it to contain %q", strings.Join(args, " "), r.err, w)
		}
	}
	return r
}

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run the test with -update to accept it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The fixture: the cluster demo of config/samples over the nodes node-a and node-b, with the
// group sql of the samples in namespace prod, a second group web in prod with one failed
// resource, and an empty group reports in namespace staging.
const (
	cluster = "demo"
	prod    = "prod"
	staging = "staging"
	nodeA   = "node-a"
	nodeB   = "node-b"
)

var sqlResources = []string{"agent", "disk", "ip", "name", "server"}

// fixture creates the fixture's objects once and puts them in their known state: every test
// starts from it, whatever the tests before it changed.
func fixture(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range []string{prod, staging} {
		err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, n := range []string{nodeA, nodeB} {
		must(t, simnode.CreateNode(ctx, k8sClient, n, map[string]string{wolfpackv1alpha1.ClusterLabel: cluster}))
	}
	samples, err := repo.Samples()
	must(t, err)
	for _, obj := range samples {
		switch obj.GetKind() {
		case "QuorumDisk":
		case "ResourceGroup":
			obj.SetNamespace(prod)
			must(t, unstructured.SetNestedStringSlice(obj.Object, []string{nodeA, nodeB}, "spec", "preferredOwners"))
		default:
			obj.SetNamespace(prod)
		}
		create(t, obj)
	}
	create(t, builder.Group(prod, "web").Cluster(cluster).DesiredState(wolfpackv1alpha1.DesiredOnline).Obj())
	create(t, builder.Resource(prod, "frontend").Group("web").Workload(corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.29"}}},
	}).Obj())
	create(t, builder.Group(staging, "reports").Cluster(cluster).DesiredState(wolfpackv1alpha1.DesiredOffline).Obj())
	reset(t)
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// reset puts the fixture's specs and statuses in their known state.
func reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	since := metav1.NewTime(now.Add(-5 * time.Minute))

	qd := &wolfpackv1alpha1.QuorumDisk{}
	must(t, k8sClient.Get(ctx, client.ObjectKey{Name: cluster}, qd))
	qd.Spec.PausedNodes = nil
	must(t, k8sClient.Update(ctx, qd))
	qd.Status = wolfpackv1alpha1.QuorumDiskStatus{Owner: nodeA, Epoch: 3, Nodes: []wolfpackv1alpha1.NodeStatus{
		{Name: nodeA, State: wolfpackv1alpha1.NodeUp, Since: since, ReachableNetworks: []string{"private", "public"}},
		{Name: nodeB, State: wolfpackv1alpha1.NodeUp, Since: since, ReachableNetworks: []string{"private", "public"}},
	}}
	must(t, k8sClient.Status().Update(ctx, qd))

	setGroup(t, prod, "sql", wolfpackv1alpha1.DesiredOnline, wolfpackv1alpha1.ResourceGroupStatus{
		State: wolfpackv1alpha1.GroupOnline, OwnerNode: nodeA, Epoch: 1,
		Operation: &wolfpackv1alpha1.GroupOperation{Kind: wolfpackv1alpha1.OperationOnline, To: nodeA, Phase: wolfpackv1alpha1.PhaseSucceeded,
			Wave: 4, StartedAt: metav1.NewMicroTime(now.Add(-10 * time.Minute))},
	})
	for _, name := range sqlResources {
		setResource(t, prod, name, wolfpackv1alpha1.ResourceStatus{State: wolfpackv1alpha1.ResourceOnline, Node: nodeA})
	}
	setGroup(t, prod, "web", wolfpackv1alpha1.DesiredOnline, wolfpackv1alpha1.ResourceGroupStatus{
		State: wolfpackv1alpha1.GroupFailed, OwnerNode: nodeB, Epoch: 2,
		Conditions: []metav1.Condition{{Type: wolfpackv1alpha1.FailoverAllowedCondition, Status: metav1.ConditionFalse,
			Reason: wolfpackv1alpha1.FailoverThresholdExceededReason, Message: "the group already failed over 1 times within 6h0m0s",
			LastTransitionTime: metav1.NewTime(now.Add(-2 * time.Minute))}},
	})
	setResource(t, prod, "frontend", wolfpackv1alpha1.ResourceStatus{State: wolfpackv1alpha1.ResourceFailed, Node: nodeB, Restarts: 3,
		LastFailure: &wolfpackv1alpha1.ResourceFailure{Time: metav1.NewTime(now.Add(-2 * time.Minute)), Node: nodeB,
			Reason: "PodFailed", Message: "pod web-frontend-2 Failed: Crashed"}})
	setGroup(t, staging, "reports", wolfpackv1alpha1.DesiredOffline, wolfpackv1alpha1.ResourceGroupStatus{State: wolfpackv1alpha1.GroupOffline})
}

func setGroup(t *testing.T, ns, name string, desired wolfpackv1alpha1.DesiredState, status wolfpackv1alpha1.ResourceGroupStatus) {
	t.Helper()
	ctx := context.Background()
	g := &wolfpackv1alpha1.ResourceGroup{}
	must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, g))
	g.Spec.State = desired
	delete(g.Annotations, wolfpackv1alpha1.MoveToAnnotation)
	must(t, k8sClient.Update(ctx, g))
	g.Status = status
	g.Status.ObservedGeneration = g.Generation
	must(t, k8sClient.Status().Update(ctx, g))
}

func setResource(t *testing.T, ns, name string, status wolfpackv1alpha1.ResourceStatus) {
	t.Helper()
	ctx := context.Background()
	r := &wolfpackv1alpha1.Resource{}
	must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r))
	r.Status = status
	must(t, k8sClient.Status().Update(ctx, r))
}

func getGroup(t *testing.T, ns, name string) *wolfpackv1alpha1.ResourceGroup {
	t.Helper()
	g := &wolfpackv1alpha1.ResourceGroup{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g))
	return g
}

func getCluster(t *testing.T) *wolfpackv1alpha1.QuorumDisk {
	t.Helper()
	qd := &wolfpackv1alpha1.QuorumDisk{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Name: cluster}, qd))
	return qd
}
