package cli

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
)

// Results of a check.
const (
	resultPass = "pass"
	resultWarn = "warn"
	resultFail = "fail"
)

// Check is the result of one check of `validate`.
type Check struct {
	Name string `json:"name"`
	// Result is pass, warn or fail.
	Result  string `json:"result"`
	Message string `json:"message"`
	// Remedy says what to do about a warning or a failure.
	Remedy string `json:"remedy,omitempty"`
}

// ValidateOutput is the report of `validate`, as -o json|yaml prints it.
type ValidateOutput struct {
	Cluster  string  `json:"cluster"`
	Checks   []Check `json:"checks"`
	Passed   int     `json:"passed"`
	Warnings int     `json:"warnings"`
	Failed   int     `json:"failed"`
}

// ValidateOptions are the options of `validate`.
type ValidateOptions struct {
	*Globals
	Output string
	// AgentNamespace is where the node agents keep their Leases.
	AgentNamespace string
	// ManagerServiceAccount and AgentServiceAccount are namespace/name.
	ManagerServiceAccount string
	AgentServiceAccount   string
}

func newValidateCommand(g *Globals) *cobra.Command {
	o := &ValidateOptions{Globals: g}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check that the cluster is set up right, as Test-Cluster does",
		Long: `Check a cluster the way WSFC's Test-Cluster does, and say for each check whether it passed,
warrants a warning or failed, and what to do about it:

  nodes               the nodes labelled for the cluster (its nodeSelector): at least two, as many
                      as the quorum type is meant for, Ready
  node states         every member Up in the cluster's membership
  agents              a node agent Lease per member in --agent-namespace, renewed within the
                      cluster's leaseDuration
  heartbeat networks  a Private network configured first, and every member's agent
                      reporting an address in each configured network
  quorum disk         the PersistentVolumeClaim exists, is ReadWriteOnce and is Bound
  heartbeat key       the Secret and key of keySecretRef exist, with at least 32 bytes
  fencing             every member fences with Watchdog: CRI and None do not cover a hung agent
  rbac                the manager's and the agents' service accounts may do what they must
                      (asked with SubjectAccessReviews: a warning when you may not ask)
  groups              the cluster's groups are valid and not Failed

It exits non-zero when any check fails.`,
		Example: `  kubectl cluster validate
  kubectl cluster validate --cluster demo -o yaml`,
		Args: cobra.NoArgs,
		RunE: run(o),
	}
	addOutputFlag(cmd, &o.Output)
	cmd.Flags().StringVar(&o.AgentNamespace, "agent-namespace", "wolfpack-system", "Where the node agents keep their Leases")
	cmd.Flags().StringVar(&o.ManagerServiceAccount, "manager-service-account", "wolfpack-system/wolfpack-manager", "The manager's service account, namespace/name")
	cmd.Flags().StringVar(&o.AgentServiceAccount, "agent-service-account", "wolfpack-system/wolfpack-node-agent", "The node agents' service account, namespace/name")
	return cmd
}

// Complete does nothing: validate needs no namespace.
func (o *ValidateOptions) Complete(*cobra.Command, []string) error { return nil }

// Validate checks the flags.
func (o *ValidateOptions) Validate() error {
	for _, sa := range []string{o.ManagerServiceAccount, o.AgentServiceAccount} {
		if ns, name, ok := strings.Cut(sa, "/"); !ok || ns == "" || name == "" {
			return fmt.Errorf("a service account is namespace/name, not %q", sa)
		}
	}
	return validateOutput(o.Output)
}

// validation gathers what the checks share.
type validation struct {
	o       *ValidateOptions
	c       client.Client
	qd      *wolfpackv1alpha1.QuorumDisk
	now     time.Time
	members []string
	leases  map[string]*coordinationv1.Lease
}

// Run runs the checks.
func (o *ValidateOptions) Run(ctx context.Context) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	qd, err := o.cluster(ctx, c)
	if err != nil {
		return err
	}
	v := &validation{o: o, c: c, qd: qd, now: o.Clock.Now(), leases: map[string]*coordinationv1.Lease{}}
	out := ValidateOutput{Cluster: qd.Name}
	for _, check := range []func(context.Context) Check{
		v.nodes, v.nodeStates, v.agents, v.networks, v.quorumDisk, v.key, v.fencing, v.rbac, v.groups,
	} {
		r := check(ctx)
		switch r.Result {
		case resultPass:
			out.Passed++
		case resultWarn:
			out.Warnings++
		default:
			out.Failed++
		}
		out.Checks = append(out.Checks, r)
	}
	if done, err := structured(o.Streams.Out, o.Output, out); done {
		if err != nil {
			return err
		}
	} else if err := printChecks(o, out); err != nil {
		return err
	}
	if out.Failed > 0 {
		return fmt.Errorf("%d of %d checks of cluster %s failed", out.Failed, len(out.Checks), qd.Name)
	}
	return nil
}

func printChecks(o *ValidateOptions, out ValidateOutput) error {
	w := o.Streams.Out
	fmt.Fprintf(w, "Validating cluster %s\n\n", out.Cluster)
	t := newTable(w, "RESULT", "CHECK", "MESSAGE")
	for _, c := range out.Checks {
		t.raw(strings.ToUpper(c.Result), c.Name, c.Message)
		if c.Remedy != "" {
			t.raw("", "", "fix: "+c.Remedy)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d checks: %d passed, %d with warnings, %d failed\n", len(out.Checks), out.Passed, out.Warnings, out.Failed)
	return nil
}

// result builds a check from its problems: the worst result, the problems' messages, and the
// remedies of the failures and warnings.
type result struct {
	name     string
	fails    []string
	warns    []string
	remedies []string
}

func (r *result) failf(remedy, format string, args ...any) {
	r.fails = append(r.fails, fmt.Sprintf(format, args...))
	r.remedy(remedy)
}

func (r *result) warnf(remedy, format string, args ...any) {
	r.warns = append(r.warns, fmt.Sprintf(format, args...))
	r.remedy(remedy)
}

func (r *result) remedy(remedy string) {
	if remedy != "" && !slices.Contains(r.remedies, remedy) {
		r.remedies = append(r.remedies, remedy)
	}
}

func (r *result) done(pass string) Check {
	c := Check{Name: r.name, Result: resultPass, Message: pass}
	switch {
	case len(r.fails) > 0:
		c.Result, c.Message = resultFail, strings.Join(append(r.fails, r.warns...), "; ")
	case len(r.warns) > 0:
		c.Result, c.Message = resultWarn, strings.Join(r.warns, "; ")
	}
	if c.Result != resultPass {
		c.Remedy = strings.Join(r.remedies, "; ")
	}
	return c
}

func (v *validation) nodes(ctx context.Context) Check {
	r := &result{name: "nodes"}
	sel := selectorString(v.qd)
	var nodes corev1.NodeList
	if err := v.c.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: membership.Selector(v.qd)}); err != nil {
		for _, n := range v.qd.Status.Nodes {
			v.members = append(v.members, n.Name)
		}
		r.warnf("run validate as a user who may list Nodes", "cannot list the nodes: %v", err)
		return r.done("")
	}
	label := fmt.Sprintf("kubectl label node NODE %s", sel)
	for _, n := range nodes.Items {
		v.members = append(v.members, n.Name)
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		if !ready {
			r.warnf("check the node's kubelet: kubectl describe node "+n.Name, "node %s is not Ready", n.Name)
		}
	}
	slices.Sort(v.members)
	quorum := v.qd.Spec.QuorumTypeOrDefault()
	switch n := len(v.members); {
	case n == 0:
		r.failf(label+" on each node of the cluster", "no node is labelled %s", sel)
	case n == 1:
		r.warnf(label+" on a second node", "only node %s is labelled %s: its groups cannot fail over", v.members[0], sel)
	case quorum == wolfpackv1alpha1.DiskOnly && n > 2:
		r.warnf("set spec.quorumType to NodeAndDiskMajority, or label only two nodes",
			"%d nodes with quorum type DiskOnly, the two-node rule: a partition may leave the larger side stopped", n)
	}
	return r.done(fmt.Sprintf("%d nodes labelled %s: %s", len(v.members), sel, strings.Join(v.members, ", ")))
}

func (v *validation) nodeStates(context.Context) Check {
	r := &result{name: "node states"}
	up := 0
	for _, name := range v.members {
		n, ok := nodeStatus(v.qd, name)
		switch {
		case !ok:
			r.warnf("check that the manager runs: kubectl -n wolfpack-system get pods -l app.kubernetes.io/component=manager",
				"node %s is not in the cluster's membership yet", name)
		case n.State == wolfpackv1alpha1.NodeUp:
			up++
		case n.State == wolfpackv1alpha1.NodePaused:
			r.warnf("kubectl cluster resume "+name+" when its maintenance is done", "node %s is Paused", name)
		default:
			r.warnf("see kubectl cluster log and the agents check", "node %s is %s since %s: %s", name, n.State,
				age(v.now, n.Since.Time), or(n.Message, "no reason given"))
		}
	}
	return r.done(fmt.Sprintf("%d of %d nodes Up", up, len(v.members)))
}

func (v *validation) agents(ctx context.Context) Check {
	r := &result{name: "agents"}
	ns := v.o.AgentNamespace
	remedy := fmt.Sprintf("check the node agent DaemonSet: kubectl -n %s get pods -l app.kubernetes.io/component=node-agent -o wide, and its logs", ns)
	duration := v.qd.Spec.LeaseDurationOrDefault()
	var leases coordinationv1.LeaseList
	if err := v.c.List(ctx, &leases, client.InNamespace(ns)); err != nil {
		r.warnf("run validate as a user who may list Leases in "+ns, "cannot list the agents' Leases in %s: %v", ns, err)
		return r.done("")
	}
	for i := range leases.Items {
		l := &leases.Items[i]
		if node := l.Labels[wolfpackv1alpha1.NodeLabel]; node != "" && l.Labels[wolfpackv1alpha1.ClusterLabel] == v.qd.Name {
			v.leases[node] = l
		}
	}
	for _, name := range v.members {
		l, ok := v.leases[name]
		switch {
		case !ok:
			r.failf(remedy, "node %s has no agent Lease in %s: its node agent does not run", name, ns)
		case l.Spec.RenewTime == nil:
			r.failf(remedy, "the agent Lease of node %s has never been renewed", name)
		case v.now.Sub(l.Spec.RenewTime.Time) > duration:
			r.failf(remedy, "the agent of node %s last renewed its Lease %s ago (lease duration %s)", name, age(v.now, l.Spec.RenewTime.Time), duration)
		}
	}
	return r.done(fmt.Sprintf("the agents of all %d nodes renewed their Leases within %s", len(v.members), duration))
}

func (v *validation) networks(context.Context) Check {
	r := &result{name: "heartbeat networks"}
	networks := v.qd.Spec.Heartbeat.Networks
	if len(networks) == 0 {
		r.warnf("configure spec.heartbeat.networks: a Private network first, then a Public one",
			"no heartbeat networks configured: the agents use the nodes' InternalIP addresses as one public network, so one network failure partitions the cluster")
	} else if !slices.ContainsFunc(networks, func(n wolfpackv1alpha1.HeartbeatNetwork) bool { return n.Role == wolfpackv1alpha1.PrivateNetwork }) {
		r.warnf("add a Private network to spec.heartbeat.networks", "no Private heartbeat network: heartbeats share the public network with client traffic")
	}
	names := make([]string, 0, len(networks))
	for _, n := range networks {
		names = append(names, n.Name)
	}
	var unchecked []string
	for _, node := range v.members {
		l, ok := v.leases[node]
		if !ok {
			unchecked = append(unchecked, node)
			continue
		}
		view, err := membership.ParseView(l.Annotations[wolfpackv1alpha1.ViewAnnotation])
		if err != nil {
			r.failf("upgrade or restart the node agent of "+node, "the agent of node %s reports no usable view: %v", node, err)
			continue
		}
		for _, n := range networks {
			a, ok := view.Addresses[n.Name]
			remedy := fmt.Sprintf("give the node an address in %s, or start its agent with --heartbeat-address %s=IP", n.CIDR, n.Name)
			if !ok {
				r.failf(remedy, "node %s has no address on network %s (%s)", node, n.Name, n.CIDR)
				continue
			}
			prefix, perr := netip.ParsePrefix(n.CIDR)
			addr, aerr := netip.ParseAddr(a)
			if perr == nil && aerr == nil && !prefix.Contains(addr) {
				r.failf(remedy, "node %s's address %s on network %s is outside %s", node, a, n.Name, n.CIDR)
			}
		}
	}
	if len(unchecked) > 0 {
		r.warnf("", "cannot check node %s: no agent reports for it (see the agents check)", strings.Join(unchecked, ", "))
	}
	if len(networks) == 0 {
		return r.done("")
	}
	return r.done(fmt.Sprintf("every node has an address on %s", strings.Join(names, ", ")))
}

func (v *validation) quorumDisk(ctx context.Context) Check {
	r := &result{name: "quorum disk"}
	ref := v.qd.Spec.VolumeClaim
	key := ref.Namespace + "/" + ref.Name
	pvc := &corev1.PersistentVolumeClaim{}
	err := v.c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, pvc)
	switch {
	case apierrors.IsNotFound(err):
		r.failf(fmt.Sprintf("create a ReadWriteOnce PersistentVolumeClaim %s (volumeMode: Block preferred) on storage that all the cluster's nodes reach, or point spec.volumeClaim at one", key),
			"PersistentVolumeClaim %s not found", key)
		return r.done("")
	case err != nil:
		r.warnf("run validate as a user who may read PersistentVolumeClaims in "+ref.Namespace, "cannot read PersistentVolumeClaim %s: %v", key, err)
		return r.done("")
	}
	modes := pvc.Spec.AccessModes
	rwo := slices.Contains(modes, corev1.ReadWriteOnce) || slices.Contains(modes, corev1.ReadWriteOncePod)
	if !rwo || slices.Contains(modes, corev1.ReadWriteMany) {
		r.failf("recreate the claim with accessModes [ReadWriteOnce]", "PersistentVolumeClaim %s has access modes %v: the quorum disk must be ReadWriteOnce, so that one node at a time can hold it", key, modes)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		r.failf("check the claim's StorageClass and provisioner: kubectl -n "+ref.Namespace+" describe pvc "+ref.Name,
			"PersistentVolumeClaim %s is %s, not Bound", key, or(string(pvc.Status.Phase), "Pending"))
	}
	mode := "filesystem mode (block mode is preferred)"
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		mode = "block mode"
	}
	return r.done(fmt.Sprintf("PersistentVolumeClaim %s is ReadWriteOnce and Bound, in %s", key, mode))
}

func (v *validation) key(ctx context.Context) Check {
	r := &result{name: "heartbeat key"}
	ref := v.qd.Spec.KeySecretRef
	k := ref.KeyOrDefault()
	where := ref.Namespace + "/" + ref.Name
	create := fmt.Sprintf(`kubectl -n %s create secret generic %s --from-literal=%s="$(head -c 32 /dev/urandom | base64)"`, ref.Namespace, ref.Name, k)
	s := &corev1.Secret{}
	err := v.c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s)
	switch {
	case apierrors.IsNotFound(err):
		r.failf(create, "Secret %s not found: the agents cannot authenticate heartbeats", where)
		return r.done("")
	case err != nil:
		r.warnf("run validate as a user who may read the Secret", "cannot read Secret %s: %v", where, err)
		return r.done("")
	}
	value, ok := s.Data[k]
	switch {
	case !ok:
		r.failf(fmt.Sprintf("add the key %q to Secret %s, or set spec.keySecretRef.key", k, where), "Secret %s has no key %q", where, k)
	case len(value) < 32:
		r.failf("replace it with 32 random bytes or more: "+create, "the key %q of Secret %s is %d bytes, fewer than 32", k, where, len(value))
	}
	return r.done(fmt.Sprintf("Secret %s holds a key of %d bytes", where, len(value)))
}

func (v *validation) fencing(context.Context) Check {
	return fencingCheck(v.qd.Spec.Fencing, v.members)
}

// fencingRemedy says how to move a node to the Watchdog fence action.
const fencingRemedy = "set spec.fencing.action (or the node's entry in spec.fencing.nodes) to Watchdog, " +
	"and give the agents the node's watchdog device (Helm: agent.watchdog.enabled=true; softdog where there is no hardware watchdog; see docs/fencing.md)"

// fencingCheck warns about every member whose fence action is not Watchdog, naming it. Only a
// watchdog covers a hung agent (stopped, starved of CPU, looping on OOM kills): its Lease runs
// out, the manager fails its groups over, and with CRI or None its workloads run on.
func fencingCheck(spec wolfpackv1alpha1.FencingSpec, members []string) Check {
	r := &result{name: "fencing"}
	var cri, none []string
	for _, node := range members {
		switch fenceActionFor(spec, node) {
		case wolfpackv1alpha1.FenceWatchdog:
		case wolfpackv1alpha1.FenceNone:
			none = append(none, node)
		default:
			cri = append(cri, node)
		}
	}
	if len(none) > 0 {
		r.warnf(fencingRemedy, "%s with None, which stops nothing (for tests only) and does not cover a hung agent; use Watchdog",
			nodesFence(none))
	}
	if len(cri) > 0 {
		r.warnf(fencingRemedy, "%s with CRI, which does not cover a hung agent (its workloads run on once its Lease runs out); use Watchdog",
			nodesFence(cri))
	}
	if len(members) == 0 {
		return r.done("no member nodes to check")
	}
	return r.done(fmt.Sprintf("every node fences with Watchdog: %s", strings.Join(members, ", ")))
}

// nodesFence is "node a fences" or "nodes a, b fence".
func nodesFence(nodes []string) string {
	if len(nodes) == 1 {
		return "node " + nodes[0] + " fences"
	}
	return "nodes " + strings.Join(nodes, ", ") + " fence"
}

// fenceActionFor is fence.ActionFor, which this package does not import (it would link the CRI
// client into the CLI): node's entry in spec.Nodes, else spec.Action, else the API's default.
func fenceActionFor(spec wolfpackv1alpha1.FencingSpec, node string) wolfpackv1alpha1.FenceAction {
	for _, n := range spec.Nodes {
		if n.Node == node && n.Action != "" {
			return n.Action
		}
	}
	return spec.ActionOrDefault()
}

// permission is one thing a service account must be allowed.
type permission struct {
	account, verb, group, resource, subresource, namespace, name string
}

func (p permission) String() string {
	what := p.resource
	if p.group != "" {
		what += "." + p.group
	}
	if p.subresource != "" {
		what += "/" + p.subresource
	}
	if p.name != "" {
		what += " " + p.name
	}
	if p.namespace != "" {
		what += " in " + p.namespace
	}
	return p.verb + " " + what
}

func (v *validation) rbac(ctx context.Context) Check {
	r := &result{name: "rbac"}
	agentNS := v.o.AgentNamespace
	key := v.qd.Spec.KeySecretRef
	manager, agent := v.o.ManagerServiceAccount, v.o.AgentServiceAccount
	perms := []permission{
		{manager, "patch", wolfpackv1alpha1.GroupVersion.Group, "resourcegroups", "status", "", ""},
		{manager, "patch", wolfpackv1alpha1.GroupVersion.Group, "quorumdisks", "status", "", ""},
		{manager, "watch", "coordination.k8s.io", "leases", "", agentNS, ""},
		{manager, "create", "", "pods", "", "", ""},
		{manager, "create", "events.k8s.io", "events", "", "", ""},
		{agent, "update", "coordination.k8s.io", "leases", "", agentNS, ""},
		{agent, "patch", wolfpackv1alpha1.GroupVersion.Group, "resources", "status", "", ""},
		{agent, "get", "", "secrets", "", key.Namespace, key.Name},
		{agent, "create", "events.k8s.io", "events", "", "", ""},
	}
	remedy := "apply the manager's and the agents' RBAC (config/rbac and config/agent, or the Helm chart), with the service accounts bound"
	var denied []string
	for _, p := range perms {
		ns, name, _ := strings.Cut(p.account, "/")
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + ns + ":" + name,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: p.verb, Group: p.group, Resource: p.resource, Subresource: p.subresource, Namespace: p.namespace, Name: p.name,
			},
		}}
		if err := v.c.Create(ctx, sar); err != nil {
			r.warnf("run validate as a user who may create SubjectAccessReviews (authorization.k8s.io)",
				"cannot ask the API server what the service accounts may do: %v", err)
			return r.done("")
		}
		if !sar.Status.Allowed {
			denied = append(denied, fmt.Sprintf("%s may not %s", p.account, p))
		}
	}
	for _, d := range denied {
		r.failf(remedy, "%s", d)
	}
	return r.done(fmt.Sprintf("%s and %s may do the %d things checked", manager, agent, len(perms)))
}

func (v *validation) groups(ctx context.Context) Check {
	r := &result{name: "groups"}
	groups, err := groupsOf(ctx, v.c, v.qd.Name, "")
	if err != nil {
		r.warnf("run validate as a user who may list ResourceGroups", "cannot list the groups: %v", err)
		return r.done("")
	}
	for _, g := range groups {
		key := g.Namespace + "/" + g.Name
		if c := findCondition(g.Status.Conditions, wolfpackv1alpha1.ValidCondition); c != nil && c.Status == metav1.ConditionFalse {
			r.failf("fix the group's resources: kubectl cluster depends "+g.Name+" -n "+g.Namespace, "group %s is not valid: %s: %s", key, c.Reason, c.Message)
		}
		if g.Status.State == wolfpackv1alpha1.GroupFailed {
			r.warnf("see kubectl cluster status and kubectl cluster log; then take the group offline and online", "group %s is Failed", key)
		}
	}
	return r.done(fmt.Sprintf("%d groups, all valid and none Failed", len(groups)))
}
