package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// RestartOptions are the options of `restart`.
type RestartOptions struct {
	*Globals
	Resource string

	namespace string
}

func newRestartCommand(g *Globals) *cobra.Command {
	o := &RestartOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "restart RESOURCE",
		Short: "Restart a workload resource by deleting its pods",
		Long: `Restart a workload resource: delete its pods (those labelled wolfpack.dev/resource=RESOURCE and
wolfpack.dev/group=GROUP in its namespace), so that the Resource Manager sees the resource fail
and applies its restart policy, exactly as after a crash: with Restart or RestartOrFailover it
starts the workload again on the same node, and a restart counts towards restartPolicy.threshold
(RestartOrFailover fails the group over once the threshold is used up); with DoNotRestart the
resource stays Failed.

The Wolfpack API has no per-resource desired state, so this is the only way to restart one
resource; only workload resources (a pod template or a Deployment/StatefulSet) have pods to
delete. To restart every resource of a group in order, take the group offline and online.`,
		Example:           `  kubectl cluster restart server -n prod`,
		Args:              exactlyOne("RESOURCE"),
		ValidArgsFunction: completeResources(g, 1),
		RunE:              run(o),
	}
	return cmd
}

// Complete reads the resource and namespace.
func (o *RestartOptions) Complete(_ *cobra.Command, args []string) error {
	o.Resource = args[0]
	ns, _, err := o.Namespace()
	o.namespace = ns
	return err
}

// Validate has nothing to check.
func (o *RestartOptions) Validate() error { return nil }

// Run deletes the resource's pods.
func (o *RestartOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	r, err := resource(ctx, c, o.namespace, o.Resource)
	if err != nil {
		return err
	}
	key := r.Namespace + "/" + r.Name
	if r.Spec.Workload == nil {
		return fmt.Errorf("resource %s is a %s resource: only workload resources have pods to restart; "+
			"take its group %q offline and online to restart it (kubectl cluster offline %s --wait; kubectl cluster online %s)",
			key, resourceType(r), r.Spec.Group, r.Spec.Group, r.Spec.Group)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(r.Namespace),
		client.MatchingLabels{wolfpackv1alpha1.ResourceLabel: r.Name, wolfpackv1alpha1.GroupLabel: r.Spec.Group}); err != nil {
		return fmt.Errorf("listing the pods of resource %s: %w", key, err)
	}
	var deleted []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if err := c.Delete(ctx, p, client.Preconditions{UID: ptr.To(p.UID)}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting pod %s of resource %s: %w", p.Name, key, err)
		}
		deleted = append(deleted, p.Name)
	}
	if len(deleted) == 0 {
		return fmt.Errorf("resource %s has no running pod to restart (it is %s%s)", key, or(string(r.Status.State), "Offline"), onNode(r.Status.Node))
	}
	policy := r.Spec.RestartPolicy
	fmt.Fprintf(o.Streams.Out, "Deleted pod %s of resource %s.\n", strings.Join(deleted, ", "), key)
	switch policy.ActionOrDefault() {
	case wolfpackv1alpha1.DoNotRestart:
		fmt.Fprintf(o.Streams.ErrOut, "Warning: resource %s has restartPolicy DoNotRestart: it stays Failed until its group is taken offline and online.\n", key)
	default:
		fmt.Fprintf(o.Streams.Out, "The Resource Manager restarts it by its restart policy (%s, threshold %d per %s; %d used).\n",
			policy.ActionOrDefault(), policy.ThresholdOrDefault(), policy.PeriodOrDefault(), r.Status.Restarts)
	}
	return nil
}
