package v1alpha1

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// crdDir holds the CRDs that controller-gen generates from the markers of this package.
const crdDir = "../../config/crd/bases"

// goDefaults are fields whose default the Go code works out from other objects, so that the CRD
// cannot carry it. They have no CRD default and no <Field>OrDefault accessor; the test checks that
// each still exists and that no CRD default appeared for it.
var goDefaults = map[string]string{
	"ResourceGroupSpec.failoverThreshold": "the number of cluster nodes minus one (failover.Threshold)",
	"QuorumDiskSpec.nodeSelector":         "the nodes labelled wolfpack.dev/cluster=<the QuorumDisk's name>",
	"ServiceResource.serviceName":         "the resource's name",
	"IPAddressResource.interface":         "the interface of the node's address on the first Public heartbeat network",
	"IPAddressResource.prefixLength":      "the address's own length, 32 for IPv4 and 128 for IPv6 (PrefixBits)",
	"ExecCheck.container":                 "the pod's first container",
	"TCPSocketCheck.host":                 "the pod's IP, or the ipAddress resource's address",
	"HTTPGetCheck.host":                   "the pod's IP, or the ipAddress resource's address",
}

// defaultedField is a field of one of this package's structs that has a default in a CRD.
type defaultedField struct {
	owner reflect.Type // the struct that declares the field
	field reflect.StructField
	raw   []byte // the CRD's default, as JSON
}

func (d defaultedField) key() string { return d.owner.Name() + "." + jsonName(d.field) }

// TestDefaultsMatchTheCRDs checks every `default:` of the generated CRDs against the Go side: a
// field of this package's structs with a CRD default has an accessor, <Field>OrDefault, that
// returns that default on an empty struct, and every such accessor is for a field with a CRD
// default. So a marker and its constant cannot drift apart. Defaults inside Kubernetes' own types
// (a pod template, service ports) are Kubernetes', not this package's, and are not looked at.
func TestDefaultsMatchTheCRDs(t *testing.T) {
	defaults, structs := crdDefaults(t)

	for key, d := range defaults {
		t.Run(key, func(t *testing.T) {
			if _, ok := goDefaults[key]; ok {
				t.Errorf("%s has a CRD default %s and is also listed in goDefaults", key, d.raw)
			}
			// A defaulted struct ({}) is an empty struct; its fields have their own defaults.
			if string(d.raw) == "{}" {
				if d.field.Type.Kind() != reflect.Struct {
					t.Errorf("%s defaults to {} but is a %s, not a struct that is never nil", key, d.field.Type)
				}
				if _, ok := accessor(d.owner, d.field.Name); ok {
					t.Errorf("%s defaults to {}: its fields have the accessors, not the struct", key)
				}
				return
			}
			// The value the API server's default becomes in Go.
			want := reflect.New(d.field.Type)
			if err := json.Unmarshal(d.raw, want.Interface()); err != nil {
				t.Fatalf("the CRD default %s of %s does not decode into %s: %v", d.raw, key, d.field.Type, err)
			}
			m, ok := accessor(d.owner, d.field.Name)
			if !ok {
				t.Fatalf("%s has the CRD default %s but %s has no method %sOrDefault", key, d.raw, d.owner.Name(), d.field.Name)
			}
			got := m.Call([]reflect.Value{reflect.New(d.owner)})[0].Interface()
			if w := goValue(want.Elem()); got != w {
				t.Errorf("%s{}.%sOrDefault() = %v, want the CRD default %s (%v)", d.owner.Name(), d.field.Name, got, d.raw, w)
			}
		})
	}

	// Every accessor is for a field that has a CRD default.
	n := 0
	for typ := range structs {
		ptr := reflect.PointerTo(typ)
		for i := range ptr.NumMethod() {
			name, ok := strings.CutSuffix(ptr.Method(i).Name, "OrDefault")
			if !ok {
				continue
			}
			n++
			f, ok := typ.FieldByName(name)
			if !ok {
				t.Errorf("%s.%s: %s has no field %s", typ.Name(), ptr.Method(i).Name, typ.Name(), name)
				continue
			}
			if _, ok := defaults[typ.Name()+"."+jsonName(f)]; !ok {
				t.Errorf("%s.%s: %s.%s has no default in the CRDs; add the +kubebuilder:default marker", typ.Name(), ptr.Method(i).Name, typ.Name(), jsonName(f))
			}
		}
	}
	if n == 0 {
		t.Error("found no <Field>OrDefault accessor on the structs the CRDs reach")
	}

	for key, why := range goDefaults {
		typeName, field, _ := strings.Cut(key, ".")
		found := false
		for typ := range structs {
			if typ.Name() == typeName {
				_, found = fieldsByJSON(typ)[field]
			}
		}
		if !found {
			t.Errorf("goDefaults lists %s (%s), which the CRDs do not have", key, why)
		}
	}
}

// crdDefaults reads the CRDs and returns the defaults of the fields of this package's structs, by
// <struct>.<json name>, and every struct of this package that the CRDs reach.
func crdDefaults(t *testing.T) (map[string]defaultedField, map[reflect.Type]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s (%v): run make manifests", crdDir, err)
	}
	roots := map[string]reflect.Type{}
	for _, o := range objectTypes {
		if typ := reflect.TypeOf(o).Elem(); !strings.HasSuffix(typ.Name(), "List") {
			roots[typ.Name()] = typ
		}
	}
	defaults := map[string]defaultedField{}
	structs := map[reflect.Type]bool{}
	for _, f := range files {
		crd := readCRD(t, f)
		root, ok := roots[crd.Spec.Names.Kind]
		if !ok {
			t.Fatalf("%s: kind %s is not a type of this package", f, crd.Spec.Names.Kind)
		}
		delete(roots, crd.Spec.Names.Kind)
		for _, v := range crd.Spec.Versions {
			if v.Name != GroupVersion.Version {
				continue
			}
			walk(t, crd.Spec.Names.Kind, *v.Schema.OpenAPIV3Schema, root, defaults, structs)
		}
	}
	if len(roots) > 0 {
		t.Errorf("no CRD for %v in %s: run make manifests", slices.Sorted(maps.Keys(roots)), crdDir)
	}
	return defaults, structs
}

func readCRD(t *testing.T, path string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return crd
}

// walk follows schema and the Go type typ together, collecting the defaults of the fields of this
// package's structs.
func walk(t *testing.T, path string, schema apiextensionsv1.JSONSchemaProps, typ reflect.Type,
	defaults map[string]defaultedField, structs map[reflect.Type]bool,
) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Pointer:
		walk(t, path, schema, typ.Elem(), defaults, structs)
		return
	case reflect.Slice:
		if schema.Items != nil && schema.Items.Schema != nil {
			walk(t, path+"[]", *schema.Items.Schema, typ.Elem(), defaults, structs)
		}
		return
	case reflect.Struct:
		if typ.PkgPath() != reflect.TypeFor[QuorumDisk]().PkgPath() {
			return // Kubernetes' types
		}
	default:
		return // scalars and maps
	}
	structs[typ] = true
	fields := fieldsByJSON(typ)
	for name, prop := range schema.Properties {
		f, ok := fields[name]
		if !ok {
			t.Errorf("%s.%s is in the CRD but %s has no such field: run make manifests", path, name, typ.Name())
			continue
		}
		if prop.Default != nil {
			d := defaultedField{owner: typ, field: f, raw: prop.Default.Raw}
			if old, dup := defaults[d.key()]; dup && string(old.raw) != string(d.raw) {
				t.Errorf("%s has two CRD defaults: %s and %s", d.key(), old.raw, d.raw)
			}
			defaults[d.key()] = d
		}
		walk(t, path+"."+name, prop, f.Type, defaults, structs)
	}
}

// fieldsByJSON are the fields of typ by their JSON names, those of inlined structs included.
func fieldsByJSON(typ reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch name := jsonName(f); {
		case f.Anonymous && name == "":
			maps.Copy(out, fieldsByJSON(f.Type))
		case name != "" && name != "-":
			out[name] = f
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// accessor is the method <field>OrDefault of typ, with a pointer receiver or a value one.
func accessor(typ reflect.Type, field string) (reflect.Value, bool) {
	m, ok := reflect.PointerTo(typ).MethodByName(field + "OrDefault")
	return m.Func, ok
}

// goValue is what an accessor returns for a field holding v: the value a pointer points to, and
// a duration's time.Duration.
func goValue(v reflect.Value) any {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if d, ok := v.Interface().(metav1.Duration); ok {
		return d.Duration
	}
	return v.Interface()
}

func TestPrefixBits(t *testing.T) {
	for _, tc := range []struct {
		a    IPAddressResource
		want int32
	}{
		{IPAddressResource{Address: "192.0.2.50"}, 32},
		{IPAddressResource{Address: "fd00::50"}, 128},
		{IPAddressResource{Address: "fd00::50", PrefixLength: ptr.To[int32](64)}, 64},
		{IPAddressResource{Address: "192.0.2.50", PrefixLength: ptr.To[int32](24)}, 24},
		{IPAddressResource{Address: "not an address"}, 0},
	} {
		if got := tc.a.PrefixBits(); got != tc.want {
			t.Errorf("PrefixBits of %+v = %d, want %d", tc.a, got, tc.want)
		}
	}
}
