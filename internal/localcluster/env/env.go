// Package env runs Wolfpack end to end on a local cluster (package cluster): the CRDs, RBAC and
// heartbeat key installed with the Helm chart; the manager as a real process; one node agent per
// member node, each a real process in its own network namespace with a private and a public
// heartbeat link and a management link to the API server (package netsim); the quorum disk a
// file that the quorum holder process of the owner node opens; and the sample group. It is what
// `make demo` and the end-to-end tests run.
//
// Where the machine cannot make network namespaces (or Options.Network asks for it), the nodes
// share the host's network instead, each on addresses of its own in 127.0.0.0/8
// (netsim.Loopback). Everything then runs as before except what needs a node's own network: no
// link can be cut (Partitions says why), and the sample group has no floating address, since
// both nodes would see it on the one lo; the resources that depended on it depend on what it
// depended on.
//
// kwok plays the kubelets, so pods only pretend to run. The one pod whose process matters, the
// quorum holder's, is run for real by a small stand-in kubelet here: when kwok reports a holder
// pod Running on a node whose agent runs, its `node-agent quorum` process is started in that
// node's namespace; when the pod goes, the process gets SIGTERM.
package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/agent"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/netsim"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/repo"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
)

const (
	// ClusterName is the QuorumDisk of the sample, and the label value of its member nodes.
	ClusterName = "demo"
	// Namespace holds the sample group.
	Namespace = "demo"
	// SystemNamespace holds the agents' Leases, the heartbeat key and the quorum claim.
	SystemNamespace = "wolfpack-system"
	// Group is the sample group's name.
	Group = "sql"
	// quorumFile is the quorum disk, or the file behind its loop device (see makeQuorumDisk).
	quorumFile = "quorum.disk"
	// stateFile records in the directory what another process needs to find the environment:
	// see state.
	stateFile = "env.json"
)

// Network modes (Options.Network).
const (
	// NetworkAuto is network namespaces where the machine allows, else loopback addresses.
	NetworkAuto = ""
	// NetworkNamespaces is a network namespace per node; Start fails where there are none.
	NetworkNamespaces = "netns"
	// NetworkLoopback is distinct loopback addresses per node, in the host's namespace.
	NetworkLoopback = "loopback"
)

// Nodes of the local cluster: the sample group's two preferred owners, and a third node outside
// the failover cluster.
var (
	NodeA  = "demo-1"
	NodeB  = "demo-2"
	NodeC  = "demo-3"
	Member = []string{NodeA, NodeB}
)

// Options configure Start.
type Options struct {
	// Dir holds the cluster's files, the logs and the quorum disk.
	Dir string
	// KubeBin holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
	KubeBin string
	// WolfpackBin holds manager, node-agent and kubectl-cluster.
	WolfpackBin string
	// Helm is the helm binary.
	Helm string
	// FenceGrace, when positive, is the manager's --fence-grace; zero passes none, so that the
	// manager runs with the product's default.
	FenceGrace time.Duration
	// Fencing is the QuorumDisk's fence action (spec.fencing.action): empty or CRI, the agents
	// stop the group's containers in their node's runtime; Watchdog, the agents feed their
	// node's simulated watchdog device (see watchdogDevice), which resets the node (Crash) when
	// it goes unfed. SetFencing changes it on a running environment.
	Fencing wolfpackv1alpha1.FenceAction
	// WatchdogTimeout is the simulated watchdog devices' timeout; zero: the one the agents ask
	// the device for, the renew deadline of the QuorumDisk's lease duration
	// (agent.RenewDeadline).
	WatchdogTimeout time.Duration
	// Network is NetworkAuto, NetworkNamespaces or NetworkLoopback.
	Network string
	// Log receives progress.
	Log io.Writer
}

// Env is a running end-to-end environment.
type Env struct {
	o       Options
	Cluster *cluster.Cluster
	// Net is a *netsim.Net or a *netsim.Loopback.
	Net    netsim.Network
	Client client.Client
	// nsKubeconfig reaches the API server from inside the nodes' namespaces.
	nsKubeconfig string

	// runtimes are the member nodes' container runtimes (see nodeRuntime).
	runtimes map[string]*nodeRuntime

	mu      sync.Mutex
	crashed map[string]bool
	stop    context.CancelFunc
	done    chan struct{}
	// netID is the Net's ID, in the names of its namespaces.
	netID string
	// quorumDevice is the quorum disk's path, a loop device if loopDevice.
	quorumDevice string
	loopDevice   bool

	// watchdogs are the member nodes' simulated watchdog devices (startWatchdogs), which every
	// agent gets, whatever the fence action; watchdogResets the resets they made.
	watchdogs      map[string]*watchdogDevice
	watchdogResets []WatchdogReset
}

// state is what the directory's env.json records, for Down and Attach.
type state struct {
	// Network is NetworkNamespaces or NetworkLoopback, and NetID the Net's ID.
	Network string `json:"network"`
	NetID   string `json:"netID"`
	// WolfpackBin is Options.WolfpackBin.
	WolfpackBin string `json:"wolfpackBin"`
	// Crashed are the nodes crashed and not revived.
	Crashed []string `json:"crashed,omitempty"`
	// QuorumDevice is the quorum disk, a loop device if LoopDevice.
	QuorumDevice string `json:"quorumDevice,omitempty"`
	LoopDevice   bool   `json:"loopDevice,omitempty"`
}

// Scheme has the built-in types and Wolfpack's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(wolfpackv1alpha1.AddToScheme(s))
	return s
}

// Start brings everything up and waits until the sample group is Online.
func Start(ctx context.Context, o Options) (e *Env, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	started := &Env{o: o, crashed: map[string]bool{}}
	e = started
	defer func() {
		// WOLFPACK_E2E_KEEP leaves a failed start running, to look at it. (A failed return sets
		// e to nil: stop what was started.)
		if err != nil && os.Getenv("WOLFPACK_E2E_KEEP") == "" {
			_ = started.Stop()
		}
	}()
	if err := e.makeNetwork(); err != nil {
		return nil, err
	}
	if err := e.startCluster(ctx); err != nil {
		return nil, err
	}
	if err := e.startRuntimes(); err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"installing the Helm chart", e.installChart},
		{"issuing tokens of the manager's, the agents' and the quorum holders' ServiceAccounts", e.issueTokens},
		{"making the quorum disk", e.makeQuorumDisk},
		{"creating the claims", e.createClaims},
		{"creating the QuorumDisk", e.createQuorumDisk},
		{"making the nodes' simulated watchdog devices", e.makeWatchdogs},
		{"starting the manager", e.startManager},
		{"starting the node agents", e.startAgents},
		{"starting the stand-in kubelet of the quorum holders and container runtimes", e.runKubelet},
		{"waiting for a node to hold the quorum disk", e.waitQuorum},
		{"creating the sample group", e.createSamples},
	}
	for _, s := range steps {
		e.logf("%s", s.what)
		if err := s.do(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return e, e.WaitGroupOnline(ctx, "", 3*time.Minute)
}

// makeNetwork makes the nodes' network as Options.Network says, and records it in the state
// file.
func (e *Env) makeNetwork() error {
	e.netID = strconv.FormatInt(time.Now().UnixNano()%0xffff, 16)
	o := netsim.Options{ID: e.netID, Nodes: []string{NodeA, NodeB, NodeC}, Log: e.o.Log}
	mode := e.o.Network
	switch mode {
	case NetworkAuto:
		mode = NetworkNamespaces
		if err := netsim.Available(); err != nil {
			e.logf("no network namespaces here, so the nodes share the host's network on loopback addresses "+
				"(no link can be cut; the sample group has no floating address): %v", err)
			mode = NetworkLoopback
		}
	case NetworkNamespaces:
		if err := netsim.Available(); err != nil {
			return fmt.Errorf("network %q: %w", mode, err)
		}
	case NetworkLoopback:
	default:
		return fmt.Errorf("network %q: want %q, %q or empty for either", mode, NetworkNamespaces, NetworkLoopback)
	}
	var err error
	if mode == NetworkNamespaces {
		e.Net, err = netsim.New(o)
	} else {
		e.Net, err = netsim.NewLoopback(o)
		e.logf("the nodes' addresses: private %s, public %s, management %s", e.Net.CIDR(netsim.Private),
			e.Net.CIDR(netsim.Public), e.Net.CIDR(netsim.Mgmt))
	}
	if err != nil {
		return err
	}
	return e.saveState()
}

// loopback tells whether the nodes share the host's network.
func (e *Env) loopback() bool {
	_, ok := e.Net.(*netsim.Loopback)
	return ok
}

// Partitions returns nil when a node's links can be cut, else the reason.
func (e *Env) Partitions() error {
	if e.loopback() {
		return netsim.ErrNoLinks
	}
	return nil
}

// saveState writes the state file.
func (e *Env) saveState() error {
	st := state{Network: NetworkNamespaces, NetID: e.netID, WolfpackBin: e.o.WolfpackBin, Crashed: e.Crashed(),
		QuorumDevice: e.quorumDevice, LoopDevice: e.loopDevice}
	if e.loopback() {
		st.Network = NetworkLoopback
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.o.Dir, stateFile), data, 0o600)
}

// readState reads the state file in dir.
func readState(dir string) (state, error) {
	var st state
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

func (e *Env) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(e.o.Log, "env: "+format+"\n", args...)
}

func (e *Env) startCluster(ctx context.Context) error {
	labels := map[string]string{wolfpackv1alpha1.ClusterLabel: ClusterName}
	var extra []netip.Addr
	if !e.loopback() {
		extra = []netip.Addr{e.Net.HostIP()} // where the nodes' namespaces reach the host
	}
	var err error
	e.Cluster, err = cluster.Start(ctx, cluster.Options{Dir: e.o.Dir, BinDir: e.o.KubeBin, Log: e.o.Log,
		ExtraAPIAddresses: extra,
		Nodes: []cluster.Node{
			{Name: NodeA, Labels: labels, IP: e.Net.IP(NodeA, "public").String()},
			{Name: NodeB, Labels: labels, IP: e.Net.IP(NodeB, "public").String()},
			{Name: NodeC, IP: e.Net.IP(NodeC, "public").String()},
		}})
	if err != nil {
		return err
	}
	if e.nsKubeconfig, err = e.Cluster.KubeconfigFor(e.Net.HostIP()); err != nil {
		return err
	}
	e.Client, err = client.New(e.Cluster.RESTConfig(), client.Options{Scheme: Scheme()})
	return err
}

// Kubeconfig is the admin kubeconfig, for use on the host.
func (e *Env) Kubeconfig() string { return e.Cluster.Kubeconfig() }

func (e *Env) installChart(ctx context.Context) error {
	chart := filepath.Join(repo.Root(), "charts", "wolfpack")
	// The CRDs, the ServiceAccounts and their RBAC, and the heartbeat key; the manager and the
	// agents run as processes here, with those ServiceAccounts' tokens.
	cmd := exec.CommandContext(ctx, e.o.Helm, "install", //nolint:gosec // the helm binary we were given
		"wolfpack", chart, "--namespace", SystemNamespace, "--create-namespace",
		"--kubeconfig", e.Kubeconfig(), "--set", "manager.replicas=0", "--set", "agent.daemonSet=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm install: %w\n%s", err, out)
	}
	return e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}})
}

// createClaims makes the quorum claim and the sample's data claim, each bound to a volume of its
// own (the controller manager's volume binder binds them).
func (e *Env) createClaims(ctx context.Context) error {
	for _, c := range []struct{ namespace, name string }{{SystemNamespace, "quorum-demo"}, {Namespace, "sql-data"}} {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: c.namespace + "-" + c.name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/wolfpack-e2e/" + c.name}},
				ClaimRef:                      &corev1.ObjectReference{Namespace: c.namespace, Name: c.name},
			}}
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: c.name},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				VolumeName:  pv.Name, StorageClassName: new(string),
			}}
		if err := e.Client.Create(ctx, pv); err != nil {
			return err
		}
		if err := e.Client.Create(ctx, pvc); err != nil {
			return err
		}
	}
	return nil
}

// createQuorumDisk applies the sample QuorumDisk with this environment's heartbeat networks and
// Options.Fencing (the sample's, CRI, by default: the agents stop the group's containers in their
// node's runtime).
func (e *Env) createQuorumDisk(ctx context.Context) error {
	objs, err := repo.Samples()
	if err != nil {
		return err
	}
	for _, u := range objs {
		if u.GetKind() != "QuorumDisk" {
			continue
		}
		qd := &wolfpackv1alpha1.QuorumDisk{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, qd); err != nil {
			return err
		}
		qd.Spec.Heartbeat.Networks = []wolfpackv1alpha1.HeartbeatNetwork{
			{Name: "private", CIDR: e.Net.CIDR("private").String(), Role: wolfpackv1alpha1.PrivateNetwork},
			{Name: "public", CIDR: e.Net.CIDR("public").String(), Role: wolfpackv1alpha1.PublicNetwork},
		}
		if e.o.Fencing != "" {
			qd.Spec.Fencing.Action = e.o.Fencing
		}
		if e.o.WatchdogTimeout == 0 {
			e.o.WatchdogTimeout = agent.RenewDeadline(qd.Spec.LeaseDurationOrDefault())
		}
		return e.Client.Create(ctx, qd)
	}
	return errors.New("config/samples has no QuorumDisk")
}

// waitQuorum waits until a member node's quorum holder holds the disk, as an MSCS cluster forms
// only once a node has the quorum resource: a fresh holder watches the disk for a lease period
// first.
func (e *Env) waitQuorum(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		qd := &wolfpackv1alpha1.QuorumDisk{}
		if err := e.Client.Get(ctx, client.ObjectKey{Name: ClusterName}, qd); err == nil && qd.Status.Owner != "" {
			e.logf("node %s holds the quorum disk at epoch %d", qd.Status.Owner, qd.Status.Epoch)
			return true, nil
		}
		return false, nil // not yet, or the API server is busy: look again
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("no node holds the quorum disk after 2 minutes; see the holder-*.log files in %s", e.o.Dir)
	}
	return err
}

// createSamples applies the sample group and its resources, its floating address moved into the
// public network, or left out on loopback addresses.
func (e *Env) createSamples(ctx context.Context) error {
	objs, err := repo.Samples()
	if err != nil {
		return err
	}
	if !e.FloatingIP().IsValid() {
		if objs, err = withoutFloatingAddress(objs); err != nil {
			return err
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "QuorumDisk":
			continue
		case "Resource":
			if _, ok, _ := unstructured.NestedMap(u.Object, "spec", "ipAddress"); ok {
				if err := unstructured.SetNestedField(u.Object, e.FloatingIP().String(), "spec", "ipAddress", "address"); err != nil {
					return err
				}
			}
		}
		u.SetNamespace(Namespace)
		if err := e.Client.Create(ctx, u); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// FloatingIP is the sample ipAddress resource's address: .50 of the public network; the zero
// Addr on loopback addresses, where the sample has none.
func (e *Env) FloatingIP() netip.Addr {
	if e.loopback() {
		return netip.Addr{}
	}
	a := e.Net.CIDR("public").Addr().As4()
	a[3] = 50
	return netip.AddrFrom4(a)
}

func (e *Env) bin(name string) string { return filepath.Join(e.o.WolfpackBin, name) }

func (e *Env) startManager(ctx context.Context) error { return e.StartManager(ctx) }

// StartManager starts the manager, again after a Kill, and waits until it is ready.
func (e *Env) StartManager(ctx context.Context) error {
	ports, err := cluster.FreeTCPPorts(1)
	if err != nil {
		return err
	}
	port := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	args := []string{e.bin("manager"), "--leader-elect=false", "--node-lease-namespace=" + SystemNamespace,
		"--quorum-holder-image=wolfpack:e2e", "--metrics-bind-address=0", "--health-probe-bind-address=" + port}
	if e.o.FenceGrace > 0 {
		args = append(args, "--fence-grace="+e.o.FenceGrace.String())
	}
	return e.Cluster.Run(ctx, cluster.Extra{Name: "manager", Args: args,
		Env:   []string{"KUBECONFIG=" + e.kubeconfigOf(managerAccount, "")},
		Ready: func(ctx context.Context) error { return cluster.GetOK(ctx, "http://"+port+"/readyz") }})
}

func (e *Env) startAgents(ctx context.Context) error {
	for _, n := range Member {
		if err := e.StartAgent(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// inNode is the command line that runs bin with args in node's network namespace.
func (e *Env) inNode(node, bin string, args ...string) []string {
	cmd := e.Net.Command(context.Background(), node, bin, args...)
	return append([]string{cmd.Path}, cmd.Args[1:]...)
}

// StartAgent starts node's agent in its namespace and waits until it renews its Lease.
func (e *Env) StartAgent(ctx context.Context, node string) error {
	probe := netip.AddrPortFrom(e.Net.IP(node, "mgmt"), 8082).String()
	args := []string{"--node-name=" + node, "--cluster=" + ClusterName,
		"--lease-namespace=" + SystemNamespace, "--metrics-bind-address=0", "--health-probe-bind-address=" + probe,
		"--cri-endpoint=" + e.runtimes[node].endpoint}
	if w := e.watchdogs[node]; w != nil {
		// Opened only where the QuorumDisk's fence action is Watchdog.
		args = append(args, "--watchdog-device="+w.path)
	}
	if e.loopback() {
		// In a namespace of its own the agent finds its addresses on its interfaces; here they
		// are on no interface.
		for _, network := range []string{netsim.Private, netsim.Public} {
			args = append(args, "--heartbeat-address="+network+"="+e.Net.IP(node, network).String())
		}
	}
	since := time.Now()
	return e.Cluster.Run(ctx, cluster.Extra{Name: "agent-" + node, Exe: e.bin("node-agent"),
		Args: e.inNode(node, e.bin("node-agent"), args...),
		Env:  []string{"KUBECONFIG=" + e.kubeconfigOf(agentAccount, node), nodelocal.DirEnv + "=" + e.localDir(node)},
		Ready: func(ctx context.Context) error {
			l := &coordinationv1.Lease{}
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: node}, l); err != nil {
				return err
			}
			if l.Spec.RenewTime == nil || l.Spec.RenewTime.Before(&metav1.MicroTime{Time: since}) {
				return fmt.Errorf("the Lease of %s is not renewed yet", node)
			}
			return nil
		}})
}

// kubeletTimeout bounds one round of the stand-in kubelet's API calls.
const kubeletTimeout = 5 * time.Second

// runKubelet starts the stand-in kubelet: it runs the quorum holder pods' processes (see the
// package documentation) and mirrors the group's pods into the nodes' container runtimes, until
// Detach or Stop.
func (e *Env) runKubelet(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		for ctx.Err() == nil {
			// Each round's API calls are bounded, as a kubelet's are: a paused API server
			// holds a round up for kubeletTimeout, not until it is resumed.
			round, cancel := context.WithTimeout(ctx, kubeletTimeout)
			if err := e.syncHolders(round); err != nil && ctx.Err() == nil {
				e.logf("quorum holders: %v", err)
			}
			if err := e.syncRuntimes(round); err != nil && ctx.Err() == nil {
				e.logf("container runtimes: %v", err)
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return nil
}

func (e *Env) syncHolders(ctx context.Context) error {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(SystemNamespace),
		client.MatchingLabels{"app.kubernetes.io/component": arbitration.HolderComponent}); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			want[p.Spec.NodeName] = true
		}
	}
	for _, n := range Member {
		name := "holder-" + n
		running := e.Cluster.Running(name)
		switch {
		case want[n] && !running && e.Cluster.Running("agent-"+n) && !e.isCrashed(n):
			err := e.Cluster.Run(ctx, cluster.Extra{Name: name, Exe: e.bin("node-agent"),
				Args: e.inNode(n, e.bin("node-agent"), "quorum", "--node-name="+n, "--cluster="+ClusterName,
					"--device="+e.quorumDevice, "--lease-namespace="+SystemNamespace),
				Env: []string{"KUBECONFIG=" + e.kubeconfigOf(holderAccount, n), nodelocal.DirEnv + "=" + e.localDir(n)}})
			if err != nil {
				return err
			}
		case !want[n] && running:
			if err := e.Cluster.Terminate(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// localDir is node's directory shared by its agent and its quorum holder (package nodelocal):
// /run/wolfpack on a real node; the processes of every node share one filesystem here.
func (e *Env) localDir(node string) string { return filepath.Join(e.o.Dir, "local", node) }

func (e *Env) isCrashed(node string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.crashed[node]
}

// Crashed lists the nodes crashed and not revived.
func (e *Env) Crashed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for n, c := range e.crashed {
		if c {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Crash crashes node as a power loss would: its links go dead, its agent and quorum holder are
// killed, and its kubelet (kwok) stops.
func (e *Env) Crash(node string) error {
	e.mu.Lock()
	e.crashed[node] = true
	e.mu.Unlock()
	errs := []error{e.saveState()}
	if e.Partitions() == nil {
		for _, network := range []string{"private", "public"} {
			errs = append(errs, e.Net.Cut(node, network))
		}
	}
	for _, p := range []string{"agent-" + node, "holder-" + node} {
		if e.Cluster.Running(p) {
			errs = append(errs, e.Cluster.Kill(p))
		}
	}
	errs = append(errs, e.Cluster.StopNode(node))
	e.runtimes[node].powerOff()
	if w := e.watchdogs[node]; w != nil {
		w.disarm()
	}
	return errors.Join(errs...)
}

// Revive boots a crashed node again: links, kubelet and agent. A reboot loses the addresses an
// agent had added, such as a floating address.
func (e *Env) Revive(ctx context.Context, node string) error {
	if err := e.Net.Reset(node); err != nil {
		return err
	}
	if e.Partitions() == nil {
		for _, network := range []string{"private", "public"} {
			if err := e.Net.Restore(node, network); err != nil {
				return err
			}
		}
	}
	if err := e.Cluster.StartNode(node); err != nil {
		return err
	}
	e.mu.Lock()
	e.crashed[node] = false
	e.mu.Unlock()
	if err := e.saveState(); err != nil {
		return err
	}
	return e.StartAgent(ctx, node)
}

// Group reads the sample group.
func (e *Env) Group(ctx context.Context) (*wolfpackv1alpha1.ResourceGroup, error) {
	g := &wolfpackv1alpha1.ResourceGroup{}
	return g, e.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: Group}, g)
}

// WaitGroupOnline waits until the sample group is Online, on node unless node is empty.
func (e *Env) WaitGroupOnline(ctx context.Context, node string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		g, err := e.Group(ctx)
		if err == nil {
			last = fmt.Sprintf("%s on %q", g.Status.State, g.Status.OwnerNode)
			return g.Status.State == wolfpackv1alpha1.GroupOnline && (node == "" || g.Status.OwnerNode == node), nil
		}
		last = err.Error() // the API server may be busy: look again
		return false, nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("group %s/%s not Online on %q within %s: %s", Namespace, Group, node, timeout, last)
	}
	return err
}

// Stop stops the stand-in kubelet, every process and the network.
func (e *Env) Stop() error {
	e.Detach()
	var errs []error
	if e.Cluster != nil {
		errs = append(errs, e.Cluster.Stop())
	}
	e.stopWatchdogs() // after the agents, which write to them
	if e.loopDevice {
		errs = append(errs, detachLoop(e.quorumDevice, e.o.Dir))
	}
	if e.Net != nil {
		errs = append(errs, e.Net.Close())
	}
	return errors.Join(errs...)
}

// Detach stops only this process's stand-in kubelet (the quorum holders' runner and the nodes'
// container runtimes) and leaves everything else running, for `make demo`.
func (e *Env) Detach() {
	if e.stop != nil {
		e.stop()
		<-e.done
		e.stop = nil
	}
	e.stopRuntimes()
}

// Down stops an environment left running in dir by another process: its processes and its
// network.
func Down(dir string) error {
	var errs []error
	if c, err := cluster.Attach(dir); err == nil {
		errs = append(errs, c.Stop())
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	st, err := readState(dir)
	switch {
	case err == nil:
		if st.Network == NetworkNamespaces {
			errs = append(errs, netsim.Remove(st.NetID))
		}
		if st.LoopDevice {
			errs = append(errs, detachLoop(st.QuorumDevice, dir))
		}
		errs = append(errs, os.Remove(filepath.Join(dir, stateFile)))
	case !errors.Is(err, os.ErrNotExist):
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ManagerBinary is the manager binary's path; the other binaries are next to it.
func (e *Env) ManagerBinary() string { return e.bin("manager") }
