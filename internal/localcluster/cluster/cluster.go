// Package cluster runs a local Kubernetes cluster as real processes in one directory, for the
// end-to-end tests and `make demo`: etcd, kube-apiserver (secure serving, RBAC, service-account
// tokens; a CA, certificates and kubeconfigs generated here), kube-controller-manager and
// kube-scheduler with their upstream default timings, and one kwok process per node. The
// binaries come from hack/k8s-binaries.sh, built from the Go module proxy.
//
// kwok plays the kubelets: it marks the Nodes this package creates Ready, renews their Leases
// in kube-node-lease, and runs its Stages so that pods bound to a node become Running. One kwok
// process manages one node (selected by the node's kubernetes.io/hostname label), so that
// StopNode, which kills that process, stops that node's Lease exactly as a crashed kubelet
// would, while the other nodes carry on; kube-controller-manager then sees the node go
// NotReady after its node-monitor-grace-period (50 s), as on a real cluster. A single kwok for
// all nodes, as kwokctl runs it, cannot crash one node.
//
// Every process runs in its own session and process group and logs to <name>.log in the
// directory. A state file there (cluster.json: ports, command lines, pids, the admin
// kubeconfig) lets another process Attach to a running cluster and stop it, so a cluster can be
// left running (hack/localcluster up) and stopped later (hack/localcluster down).
package cluster

import (
	"context"
	_ "embed" // the kwok Stages
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kwokStages are the kwok Stages every node's kwok runs; see the file's header.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

const (
	// stateFile is the file in the directory that describes a running cluster.
	stateFile = "cluster.json"
	// readyTimeout bounds the wait for one component, or for the nodes, to become ready. It is
	// generous: a 2-core machine that builds or runs other tests at the same time is slow.
	readyTimeout = 120 * time.Second
	// stopGrace is how long a component has to exit after SIGTERM before it is killed.
	stopGrace = 15 * time.Second
	// hostnameLabel is the label that tells one node's kwok which Node is its own.
	hostnameLabel = "kubernetes.io/hostname"
	// kwokNodeAnnotation marks a Node as a fake one that kwok manages.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

// errNoProcess is returned for a component or node the cluster does not have.
var errNoProcess = errors.New("no such process in the cluster")

// Options configure Start.
type Options struct {
	// Dir holds the cluster's certificates, kubeconfigs, etcd data, logs and state file. It is
	// created if needed; a previous cluster's data in it is discarded.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, as
	// printed by `hack/k8s-binaries.sh etcd kube-apiserver kube-controller-manager
	// kube-scheduler kwok`.
	BinDir string
	// Nodes are the fake nodes, each with its own kwok process. At least one.
	Nodes []Node
	// Log receives one line per step (process started, ready, stopped); nil discards them.
	Log io.Writer
	// ExtraAPIAddresses are addresses of this machine, besides 127.0.0.1, on which
	// kube-apiserver serves, such as the host's address on a network that processes in network
	// namespaces reach (netsim.Net.HostIP): kube-apiserver then binds the wildcard address, its
	// serving certificate names them, and KubeconfigFor writes a kubeconfig for each.
	ExtraAPIAddresses []netip.Addr
}

// Node is a fake node.
type Node struct {
	Name string `json:"name"`
	// Labels are added to the Node, besides kubernetes.io/hostname=<Name>, kubernetes.io/os
	// and kubernetes.io/arch.
	Labels map[string]string `json:"labels,omitempty"`
	// IP is the Node's InternalIP and its pods' hostIP; default 127.0.1.<1 + index>, a distinct
	// loopback address per node.
	IP string `json:"ip,omitempty"`
}

// state is what the state file records.
type state struct {
	Dir        string     `json:"dir"`
	BinDir     string     `json:"binDir"`
	Kubeconfig string     `json:"kubeconfig"`
	Ports      Ports      `json:"ports"`
	Nodes      []Node     `json:"nodes"`
	Processes  []*Process `json:"processes"`
	// ExtraAPIAddresses are Options.ExtraAPIAddresses.
	ExtraAPIAddresses []netip.Addr `json:"extraAPIAddresses,omitempty"`
}

// Cluster is a running local cluster, started here or attached to.
type Cluster struct {
	mu     sync.Mutex // guards state.Processes and the state file
	state  state
	log    io.Writer
	config *rest.Config
	client kubernetes.Interface
}

// Start starts a cluster and returns once every component is healthy and every node Ready.
// ctx bounds the start only: the processes run until Stop. When Start fails, it stops what it
// started and returns an error that names the component and ends with the tail of its log.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c, err := prepare(o)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return c, nil
}

// Attach returns the cluster running in dir, as written by Start in this or another process.
func Attach(dir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("no cluster in %s: %w", dir, err)
	}
	c := &Cluster{log: io.Discard}
	if err := json.Unmarshal(data, &c.state); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if err := c.loadClient(); err != nil {
		return nil, err
	}
	return c, nil
}

// prepare checks the options and writes everything the processes read: certificates,
// kubeconfigs and kwok's configuration.
func prepare(o Options) (*Cluster, error) {
	if err := validate(o); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	binDir, err := filepath.Abs(o.BinDir)
	if err != nil {
		return nil, err
	}
	if running, err := Attach(dir); err == nil && running.anyRunning() {
		return nil, fmt.Errorf("a cluster is already running in %s: stop it first", dir)
	}
	if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	nodes := withDefaultIPs(o.Nodes)
	ports, err := freePorts(nodes)
	if err != nil {
		return nil, err
	}
	if err := writePKI(dir, ports.APIServer, o.ExtraAPIAddresses); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, kwokConfigFile), kwokStages, 0o600); err != nil {
		return nil, err
	}
	c := &Cluster{
		state: state{
			Dir:               dir,
			BinDir:            binDir,
			Kubeconfig:        filepath.Join(dir, adminKubeconfig),
			Ports:             ports,
			Nodes:             nodes,
			Processes:         processes(dir, binDir, ports, nodes, o.ExtraAPIAddresses),
			ExtraAPIAddresses: o.ExtraAPIAddresses,
		},
		log: o.Log,
	}
	if c.log == nil {
		c.log = io.Discard
	}
	for _, p := range c.state.Processes {
		if err := os.Remove(p.Log); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return c, c.loadClient()
}

func validate(o Options) error {
	if o.Dir == "" || o.BinDir == "" {
		return errors.New("cluster: Dir and BinDir must be set")
	}
	if len(o.Nodes) == 0 {
		return errors.New("cluster: no nodes")
	}
	for _, name := range []string{etcd, kubeAPIServer, controllerManager, scheduler, kwok} {
		if _, err := os.Stat(filepath.Join(o.BinDir, name)); err != nil {
			return fmt.Errorf("cluster: %w (build it with hack/k8s-binaries.sh)", err)
		}
	}
	for _, a := range o.ExtraAPIAddresses {
		if !a.IsValid() || a.IsUnspecified() {
			return fmt.Errorf("cluster: extra API address %q: want a specific address", a)
		}
	}
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("cluster: node names must be set and distinct: %q", n.Name)
		}
		seen[n.Name] = true
	}
	return nil
}

func withDefaultIPs(nodes []Node) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		if n.IP == "" {
			n.IP = fmt.Sprintf("127.0.1.%d", i+1)
		}
		out[i] = n
	}
	return out
}

func (c *Cluster) loadClient() error {
	config, err := clientcmd.BuildConfigFromFlags("", c.state.Kubeconfig)
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	c.config = config
	c.client, err = kubernetes.NewForConfig(config)
	return err
}

// start starts the control plane, then the nodes, each once the previous one is ready.
func (c *Cluster) start(ctx context.Context) error {
	for _, p := range c.state.Processes {
		if p.Name == kwokName(c.state.Nodes[0].Name) {
			if err := c.createNodes(ctx); err != nil {
				return err
			}
		}
		if err := c.startProcess(ctx, p); err != nil {
			return err
		}
	}
	for _, n := range c.state.Nodes {
		if err := c.WaitNodeReady(ctx, n.Name); err != nil {
			return err
		}
	}
	c.logf("cluster ready: KUBECONFIG=%s", c.state.Kubeconfig)
	return nil
}

// startProcess starts p, records its pid in the state file, and waits until it is healthy.
func (c *Cluster) startProcess(ctx context.Context, p *Process) error {
	begin := time.Now()
	if err := p.start(); err != nil {
		return err
	}
	c.logf("started %s (pid %d), log %s", p.Name, p.PID, p.Log)
	if err := c.save(); err != nil {
		return err
	}
	if err := p.waitReady(ctx, readyTimeout, c.healthCheck(p.Name)); err != nil {
		return err
	}
	c.logf("%s is ready after %s", p.Name, since(begin))
	return nil
}

// createNodes creates the Node objects that the kwok processes will manage.
func (c *Cluster) createNodes(ctx context.Context) error {
	for _, n := range c.state.Nodes {
		labels := map[string]string{
			"kubernetes.io/os":   "linux",
			"kubernetes.io/arch": "amd64",
			"type":               "kwok",
		}
		for k, v := range n.Labels {
			labels[k] = v
		}
		labels[hostnameLabel] = n.Name
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        n.Name,
			Labels:      labels,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		}}
		if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", n.Name, err)
		}
	}
	return nil
}

// WaitNodeReady waits until the named Node's Ready condition is True.
func (c *Cluster) WaitNodeReady(ctx context.Context, name string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		last = c.nodeReady(ctx, name)
		return last == nil, nil
	})
	if err == nil {
		return nil
	}
	if last != nil && wait.Interrupted(err) {
		err = fmt.Errorf("not Ready after %s: %w", readyTimeout, last)
	}
	log := filepath.Join(c.state.Dir, kwokName(name)+".log")
	return fmt.Errorf("node %s: %w\n--- last lines of %s ---\n%s", name, err, log, tail(log, 30))
}

// nodeReady returns nil when the Node's Ready condition is True.
func (c *Cluster) nodeReady(ctx context.Context, name string) error {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if status := readyCondition(node); status != corev1.ConditionTrue {
		return fmt.Errorf("condition Ready is %s", status)
	}
	return nil
}

func readyCondition(node *corev1.Node) corev1.ConditionStatus {
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status
		}
	}
	return corev1.ConditionUnknown
}

// Kubeconfig is the path of the admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.state.Kubeconfig }

// RESTConfig is the admin's client configuration, a copy the caller may change.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Client is a client as the admin.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.state.Dir }

// Ports are the ports the cluster listens on.
func (c *Cluster) Ports() Ports { return c.state.Ports }

// PIDs are the pids of the running processes, by process name (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok-<node>).
func (c *Cluster) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := map[string]int{}
	for _, p := range c.state.Processes {
		if p.running() {
			pids[p.Name] = p.PID
		}
	}
	return pids
}

// StopNode kills the node's kwok process with SIGKILL, as a kubelet that crashes: the node's
// Lease is no longer renewed and its pods' status no longer updated.
func (c *Cluster) StopNode(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.process(kwokName(name))
	if err != nil {
		return err
	}
	if err := p.stop(0); err != nil {
		return err
	}
	c.logf("stopped %s", p.Name)
	return c.saveLocked()
}

// StartNode starts the node's kwok process again and waits until it serves. The Node becomes
// Ready again (see WaitNodeReady) only once the new kwok holds the node's Lease: it has a new
// holder identity, so it takes the Lease only after the one the old process renewed has expired
// (40 s after its last renewal), and its first attempt fails anyway (it tries to create the
// Lease, which exists) and is retried 10 s later.
func (c *Cluster) StartNode(name string) error {
	return c.restart(context.Background(), kwokName(name))
}

// RestartAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after a grace period) and starts
// it again with the same port, certificates and etcd, and waits until it is ready.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	return c.restart(ctx, kubeAPIServer)
}

func (c *Cluster) restart(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.process(name)
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := p.stop(stopGrace); err != nil {
		return err
	}
	stopped := time.Now()
	if err := p.start(); err != nil {
		return err
	}
	if err := c.saveLocked(); err != nil {
		return err
	}
	if err := p.waitReady(ctx, readyTimeout, c.healthCheck(p.Name)); err != nil {
		return err
	}
	c.logf("restarted %s (pid %d): stopped in %s, ready after %s", p.Name, p.PID, stopped.Sub(begin).Round(time.Millisecond), since(stopped))
	return nil
}

// Stop stops every process, the nodes first and etcd last, waits until they are gone, and
// removes the state file; the directory with the logs stays.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for i := len(c.state.Processes) - 1; i >= 0; i-- {
		p := c.state.Processes[i]
		if !p.running() {
			p.PID = 0
			continue
		}
		pid := p.PID
		if err := p.stop(stopGrace); err != nil {
			errs = append(errs, err)
			continue
		}
		c.logf("stopped %s (pid %d)", p.Name, pid)
	}
	if len(errs) > 0 {
		return errors.Join(append(errs, c.saveLocked())...)
	}
	if err := os.Remove(filepath.Join(c.state.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (c *Cluster) anyRunning() bool {
	for _, p := range c.state.Processes {
		if p.running() {
			return true
		}
	}
	return false
}

func (c *Cluster) process(name string) (*Process, error) {
	for _, p := range c.state.Processes {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", name, errNoProcess)
}

func (c *Cluster) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saveLocked()
}

// saveLocked writes the state file atomically.
func (c *Cluster) saveLocked() error {
	data, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.state.Dir, stateFile)
	if err := os.WriteFile(path+".tmp", append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func (c *Cluster) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}
