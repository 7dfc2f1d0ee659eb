package env

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
)

func TestWithoutFloatingAddress(t *testing.T) {
	resource := func(name, kind string, deps ...string) *unstructured.Unstructured {
		spec := map[string]any{"group": "g", kind: map[string]any{}}
		if len(deps) > 0 {
			list := make([]any, 0, len(deps))
			for _, d := range deps {
				list = append(list, map[string]any{"name": d})
			}
			spec["dependsOn"] = list
		}
		return &unstructured.Unstructured{Object: map[string]any{"kind": "Resource", "metadata": map[string]any{"name": name}, "spec": spec}}
	}
	deps := func(u *unstructured.Unstructured) []string {
		list, _, _ := unstructured.NestedSlice(u.Object, "spec", "dependsOn")
		out := make([]string, 0, len(list))
		for _, d := range list {
			out = append(out, d.(map[string]any)["name"].(string))
		}
		return out
	}
	objs := []*unstructured.Unstructured{
		resource("disk", "volume"),
		resource("ip", "ipAddress", "disk"),
		resource("ip2", "ipAddress"),
		resource("name", "service", "ip", "disk"),
		resource("both", "service", "ip2", "ip"),
		resource("agent", "workload", "disk"),
	}
	got, err := withoutFloatingAddress(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"disk": nil, "name": {"disk"}, "both": {"disk"}, "agent": {"disk"}}
	if len(got) != len(want) {
		t.Fatalf("kept %d objects, want %d", len(got), len(want))
	}
	for _, u := range got {
		w, ok := want[u.GetName()]
		if !ok {
			t.Errorf("kept %s", u.GetName())
			continue
		}
		if g := deps(u); len(g) != len(w) || (len(w) > 0 && g[0] != w[0]) {
			t.Errorf("%s depends on %v, want %v", u.GetName(), g, w)
		}
	}
	if d := deps(objs[3]); len(d) != 2 || d[0] != "ip" {
		t.Errorf("the input changed: name depends on %v", d)
	}

	// The sample itself: name depends on disk instead of ip.
	samples, err := repo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	if got, err = withoutFloatingAddress(samples); err != nil {
		t.Fatal(err)
	}
	for _, u := range got {
		if u.GetName() == "ip" {
			t.Error("the sample kept its ipAddress resource")
		}
		if u.GetName() == "name" {
			if d := deps(u); len(d) != 1 || d[0] != "disk" {
				t.Errorf("the sample's name depends on %v, want [disk]", d)
			}
		}
	}
}
