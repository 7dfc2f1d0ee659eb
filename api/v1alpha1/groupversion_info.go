// Package v1alpha1 contains the Wolfpack API: QuorumDisk (one failover cluster), ResourceGroup
// (the unit of failover) and Resource (one part of a group, such as a disk, an address or an
// application).
//
// +kubebuilder:object:generate=true
// +groupName=wolfpack.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Wolfpack API.
	GroupVersion = schema.GroupVersion{Group: "wolfpack.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Wolfpack types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Wolfpack types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
