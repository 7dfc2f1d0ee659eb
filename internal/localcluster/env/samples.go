package env

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// withoutFloatingAddress returns the sample objects without their ipAddress Resources, each
// Resource that depended on one depending instead on what that one depended on, so that the
// order of the rest stays as it was.
func withoutFloatingAddress(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	dropped := map[string][]any{} // by name: its dependsOn
	var kept []*unstructured.Unstructured
	for _, u := range objs {
		if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "ipAddress"); ok && u.GetKind() == "Resource" {
			deps, _, err := unstructured.NestedSlice(u.Object, "spec", "dependsOn")
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", u.GetName(), err)
			}
			dropped[u.GetName()] = deps
			continue
		}
		kept = append(kept, u.DeepCopy())
	}
	for _, u := range kept {
		deps, ok, err := unstructured.NestedSlice(u.Object, "spec", "dependsOn")
		if err != nil || !ok || u.GetKind() != "Resource" {
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", u.GetName(), err)
			}
			continue
		}
		var out []any
		var names []string
		for _, d := range deps {
			replaced, isDropped := dropped[dependencyName(d)]
			if !isDropped {
				replaced = []any{d}
			}
			for _, r := range replaced {
				if name := dependencyName(r); !slices.Contains(names, name) {
					out, names = append(out, r), append(names, name)
				}
			}
		}
		if err := unstructured.SetNestedSlice(u.Object, out, "spec", "dependsOn"); err != nil {
			return nil, fmt.Errorf("resource %s: %w", u.GetName(), err)
		}
	}
	return kept, nil
}

// dependencyName is the name of an entry of spec.dependsOn.
func dependencyName(d any) string {
	m, _ := d.(map[string]any)
	name, _, _ := unstructured.NestedString(m, "name")
	return name
}
