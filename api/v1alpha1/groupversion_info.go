// Package v1alpha1 contains the Wolfpack API: QuorumDisk (one failover cluster), ResourceGroup
// (the unit of failover) and Resource (one part of a group, such as a disk, an address or an
// application).
//
// +kubebuilder:object:generate=true
// +groupName=wolfpack.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the Wolfpack API.
	GroupVersion = schema.GroupVersion{Group: "wolfpack.dev", Version: "v1alpha1"}

	// schemeBuilder registers the Wolfpack types with a runtime.Scheme.
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the Wolfpack types to a runtime.Scheme.
	AddToScheme = schemeBuilder.AddToScheme

	// objectTypes are the root types, which each types file appends to.
	objectTypes = []runtime.Object{}
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, objectTypes...)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
