package resourcetype

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// customHandler makes any object from a template and judges it by the resource's CEL
// expression. The manager needs RBAC for the kinds used: see config/rbac/custom_role.yaml.
type customHandler struct {
	Clients
	mu       sync.Mutex
	compiled map[string]*HealthCheck
}

func (h *customHandler) health(expr string) (*HealthCheck, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.compiled[expr]; ok {
		return c, nil
	}
	c, err := CompileHealth(expr)
	if err != nil {
		return nil, err
	}
	if h.compiled == nil {
		h.compiled = map[string]*HealthCheck{}
	}
	h.compiled[expr] = c
	return c, nil
}

// object builds the resource's object; a template that cannot be built fails the resource
// (in `failed`) rather than the reconcile.
func object(req Request) (obj *unstructured.Unstructured, failed *Result) {
	obj, err := CustomObject(req.Resource, req.Placement)
	if err != nil {
		return nil, &Result{State: Failed, Message: err.Error()}
	}
	return obj, nil
}

func (h *customHandler) Online(ctx context.Context, req Request) (Result, error) {
	want, failed := object(req)
	if failed != nil {
		return *failed, nil
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(want.GroupVersionKind())
	err := h.Client.Get(ctx, client.ObjectKeyFromObject(want), got)
	if apierrors.IsNotFound(err) {
		if err := h.Client.Create(ctx, want); err != nil {
			return Result{}, err
		}
		return h.judge(req, want)
	}
	if err != nil {
		return Result{}, err
	}
	return h.judge(req, got)
}

func (h *customHandler) judge(req Request, obj *unstructured.Unstructured) (Result, error) {
	check, compileErr := h.health(req.Resource.Spec.Custom.Healthy)
	if check == nil {
		return Result{State: Failed, Message: compileErr.Error()}, nil
	}
	healthy, err := check.Healthy(obj)
	name := fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
	switch {
	case err != nil:
		return Result{State: Pending, Message: fmt.Sprintf("%s: %v", name, err)}, nil
	case !healthy:
		return Result{State: Pending, Message: name + " is not healthy yet"}, nil
	}
	return Result{State: Online, Message: name + " is healthy"}, nil
}

func (h *customHandler) check(ctx context.Context, r client.Reader, req Request) (Result, error) {
	want, failed := object(req)
	if failed != nil {
		return *failed, nil
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(want.GroupVersionKind())
	if err := r.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		if apierrors.IsNotFound(err) {
			return Result{State: Failed, Message: fmt.Sprintf("%s %s is gone", want.GetKind(), want.GetName())}, nil
		}
		return Result{}, err
	}
	res, err := h.judge(req, got)
	if res.State == Pending {
		// It was healthy; now it is not.
		res.State = Failed
	}
	return res, err
}

func (h *customHandler) LooksAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Client, req)
}

func (h *customHandler) IsAlive(ctx context.Context, req Request) (Result, error) {
	return h.check(ctx, h.Reader, req)
}

func (h *customHandler) Offline(ctx context.Context, req Request) (Result, error) {
	obj, failed := object(req)
	if failed != nil {
		// Nothing can have been made from a template that cannot be built.
		return Result{State: Offline, Message: failed.Message}, nil
	}
	err := h.Client.Delete(ctx, obj)
	if apierrors.IsNotFound(err) {
		return Result{State: Offline, Message: fmt.Sprintf("%s %s is gone", obj.GetKind(), obj.GetName())}, nil
	}
	if err != nil {
		return Result{}, err
	}
	return Result{State: Pending, Message: fmt.Sprintf("deleting %s %s", obj.GetKind(), obj.GetName())}, nil
}

func (h *customHandler) Terminate(ctx context.Context, req Request) (Result, error) {
	return h.Offline(ctx, req)
}
