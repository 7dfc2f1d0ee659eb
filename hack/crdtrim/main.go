// Command crdtrim removes the descriptions that controller-gen copies from embedded Kubernetes
// types (such as a PodTemplateSpec) into a CRD, keeping those of Wolfpack's own fields.
//
// The full pod template documentation would make the Resource CRD larger than the 256 KiB that
// `kubectl apply` (client side) can record in its last-applied annotation; users read it with
// `kubectl explain pod.spec` instead. Validation is unchanged: only descriptions are removed.
//
//	crdtrim FILE PATH...
//
// Each PATH is a dot-separated list of property names below a version's schema, such as
// spec.workload.template; the description of that property itself is kept.
package main

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: crdtrim FILE PATH...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "crdtrim: %v\n", err)
		os.Exit(1)
	}
}

type object = map[string]any

func run(file string, paths []string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd object
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	spec, _ := crd["spec"].(object)
	versions, _ := spec["versions"].([]any)
	if len(versions) == 0 {
		return fmt.Errorf("%s: not a CustomResourceDefinition with versions", file)
	}
	for _, v := range versions {
		schema, _ := dig(v, "schema", "openAPIV3Schema").(object)
		for _, p := range paths {
			prop := schema
			for _, name := range strings.Split(p, ".") {
				prop, _ = dig(prop, "properties", name).(object)
			}
			if prop == nil {
				return fmt.Errorf("%s: version %v: no property %s", file, dig(v, "name"), p)
			}
			description, hasDescription := prop["description"]
			stripSchema(prop)
			if hasDescription {
				prop["description"] = description
			}
		}
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte("---\n"), out...), 0o644) //nolint:gosec // a file of the repository, readable by all
}

// dig follows keys through nested objects; it returns nil where one is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(object)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// stripSchema removes the description of a schema and of every schema below it.
func stripSchema(v any) {
	s, ok := v.(object)
	if !ok {
		return
	}
	delete(s, "description")
	if props, ok := s["properties"].(object); ok {
		for _, p := range props {
			stripSchema(p)
		}
	}
	stripSchema(s["items"])
	stripSchema(s["additionalProperties"])
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := s[key].([]any); ok {
			for _, item := range list {
				stripSchema(item)
			}
		}
	}
}
