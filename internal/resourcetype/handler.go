package resourcetype

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// State is what a handler found.
type State string

const (
	// Pending means the resource is on its way online or offline.
	Pending State = "Pending"
	// Online means the resource runs on the asked node and is healthy.
	Online State = "Online"
	// Offline means nothing of the resource runs any more.
	Offline State = "Offline"
	// Failed means the resource failed.
	Failed State = "Failed"
)

// Result is a handler's answer: the state it found and why.
type Result struct {
	State   State
	Message string
}

// Request names the resource and where it must be.
type Request struct {
	Resource *wolfpackv1alpha1.Resource
	Placement
	// Fenced says whether a node can no longer run anything, so that what is left of the
	// resource there may be removed without waiting for the node to stop it.
	Fenced func(node string) bool
}

// Handler is a resource type's entry points, as MSCS's Resource DLLs have them. Each call is
// idempotent: it acts only as far as needed and reports the state it finds.
type Handler interface {
	// Online brings the resource online on the request's node.
	Online(ctx context.Context, req Request) (Result, error)
	// Offline takes the resource offline, gracefully.
	Offline(ctx context.Context, req Request) (Result, error)
	// LooksAlive is the quick health check, from the manager's cache.
	LooksAlive(ctx context.Context, req Request) (Result, error)
	// IsAlive is the thorough health check, read from the API server.
	IsAlive(ctx context.Context, req Request) (Result, error)
	// Terminate stops the resource at once, without grace: its node is fenced and cannot stop
	// it itself.
	Terminate(ctx context.Context, req Request) (Result, error)
}

// Clients are what handlers read and write through.
type Clients struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Reader reads from the API server directly, for IsAlive.
	Reader client.Reader
}

// Registry maps resource types to their handlers.
type Registry map[string]Handler

// Type names a Resource's type: the one of workload, volume, service, ipAddress or custom
// that it sets.
func Type(r *wolfpackv1alpha1.Resource) string {
	switch {
	case r.Spec.Workload != nil:
		return "workload"
	case r.Spec.Volume != nil:
		return "volume"
	case r.Spec.Service != nil:
		return "service"
	case r.Spec.IPAddress != nil:
		return "ipAddress"
	case r.Spec.Custom != nil:
		return "custom"
	}
	return ""
}

// For returns the handler of r's type.
func (reg Registry) For(r *wolfpackv1alpha1.Resource) (Handler, error) {
	h, ok := reg[Type(r)]
	if !ok {
		return nil, fmt.Errorf("resource %s/%s: no handler for type %q", r.Namespace, r.Name, Type(r))
	}
	return h, nil
}

// NewRegistry returns the built-in handlers.
func NewRegistry(c Clients) Registry {
	return Registry{
		"workload":  &workloadHandler{c},
		"volume":    &volumeHandler{c},
		"service":   &serviceHandler{c},
		"ipAddress": ipAddressHandler{},
		"custom":    &customHandler{Clients: c},
	}
}
