// Command demo is what `make demo` runs until the full demo (a local cluster, the manager, two
// node agents and a failover) exists: it starts a real kube-apiserver and etcd, installs the
// Wolfpack CRDs, applies the samples, prints them as `kubectl get -o wide` would, shows how a bad
// object is refused, and stops the control plane again.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/testenv"
)

const namespace = "wolfpack-demo"

func main() {
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
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}

	fmt.Println("\n== Applying config/samples: the cluster \"demo\" and the group \"sql\"")
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
		fmt.Printf("%s/%s created\n", strings.ToLower(obj.GetKind()), obj.GetName())
	}

	for _, list := range []struct{ title, path string }{
		{"kubectl get quorumdisks -o wide", "/apis/wolfpack.dev/v1alpha1/quorumdisks"},
		{"kubectl get resourcegroups -n " + namespace + " -o wide", "/apis/wolfpack.dev/v1alpha1/namespaces/" + namespace + "/resourcegroups"},
		{"kubectl get resources -n " + namespace + " -o wide", "/apis/wolfpack.dev/v1alpha1/namespaces/" + namespace + "/resources"},
	} {
		tbl, err := testenv.GetTable(ctx, env.Config, list.path)
		if err != nil {
			return err
		}
		fmt.Printf("\n== %s\n", list.title)
		printTable(tbl)
	}

	fmt.Println("\n== A resource that depends on itself is refused, naming the field:")
	bad := &wolfpackv1alpha1.Resource{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "loop"},
		Spec: wolfpackv1alpha1.ResourceSpec{
			Group:     "sql",
			DependsOn: []wolfpackv1alpha1.Dependency{{Name: "loop"}},
			Volume:    &wolfpackv1alpha1.VolumeResource{ClaimName: "sql-data"},
		},
	}
	err = c.Create(ctx, bad)
	if err == nil {
		return errors.New("the API server accepted a resource that depends on itself")
	}
	fmt.Println(err)

	fmt.Println("\nState and owner stay empty: the failover engine, node agents and quorum are not built yet.")
	fmt.Println("Stopping the control plane.")
	return nil
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
