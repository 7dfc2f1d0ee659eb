package resourcetype

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// healthCostLimit bounds the work of one health expression, as the API server bounds CEL rules.
const healthCostLimit = 1_000_000

// CustomObject builds the object of a custom resource from its template, in the resource's
// namespace, labelled and owned by the Resource.
func CustomObject(r *wolfpackv1alpha1.Resource, p Placement) (*unstructured.Unstructured, error) {
	if r.Spec.Custom == nil {
		return nil, fmt.Errorf("resource %s/%s has no custom", r.Namespace, r.Name)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(r.Spec.Custom.Template.Raw); err != nil {
		return nil, fmt.Errorf("resource %s/%s: spec.custom.template: %w", r.Namespace, r.Name, err)
	}
	if obj.GetName() == "" {
		obj.SetName(r.Name)
	}
	obj.SetNamespace(r.Namespace)
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range Labels(r, p.Node) {
		labels[k] = v
	}
	obj.SetLabels(labels)
	obj.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(r,
		wolfpackv1alpha1.GroupVersion.WithKind("Resource"))})
	return obj, nil
}

// HealthCheck is a compiled spec.custom.healthy expression.
type HealthCheck struct {
	program cel.Program
}

// CompileHealth compiles a custom resource's health expression over `object`. An expression that
// does not compile, or is not boolean, is an error that quotes the compiler.
func CompileHealth(expr string) (*HealthCheck, error) {
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType))
	if err != nil {
		return nil, err
	}
	ast, issues := env.Compile(expr)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("spec.custom.healthy: %w", issues.Err())
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("spec.custom.healthy: the expression is %s, want bool", ast.OutputType())
	}
	program, err := env.Program(ast, cel.CostLimit(healthCostLimit))
	if err != nil {
		return nil, fmt.Errorf("spec.custom.healthy: %w", err)
	}
	return &HealthCheck{program: program}, nil
}

// Healthy evaluates the expression on obj. A field the expression reads but the object lacks
// yet (status not written) is an error, which callers treat as not healthy yet.
func (h *HealthCheck) Healthy(obj *unstructured.Unstructured) (bool, error) {
	out, _, err := h.program.Eval(map[string]any{"object": obj.Object})
	if err != nil {
		return false, fmt.Errorf("spec.custom.healthy: %w", err)
	}
	healthy, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("spec.custom.healthy: the expression did not return a bool")
	}
	return healthy, nil
}
