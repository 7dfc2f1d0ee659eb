package simnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
	"github.com/wolfpack-ha/wolfpack/internal/quorumholder"
	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
)

// errPowerOff is what a crashed node's disk I/O returns.
var errPowerOff = errors.New("simulated node crash: the node is off")

// nodeDisk is one node's path to a shared quorum disk: once its node crashes, every I/O fails,
// as it would on a powered-off host, so that the holder stops without releasing anything.
type nodeDisk struct {
	quorum.Device
	mu  sync.Mutex
	off bool
}

func (d *nodeDisk) powerOff() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.off = true
}

func (d *nodeDisk) failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.off
}

func (d *nodeDisk) ReadAt(p []byte, off int64) (int, error) {
	if d.failed() {
		return 0, errPowerOff
	}
	return d.Device.ReadAt(p, off)
}

func (d *nodeDisk) WriteAt(p []byte, off int64) (int, error) {
	if d.failed() {
		return 0, errPowerOff
	}
	return d.Device.WriteAt(p, off)
}

func (d *nodeDisk) Sync() error {
	if d.failed() {
		return errPowerOff
	}
	return d.Device.Sync()
}

// nodeClient is one node's path to the API server: once its node crashes, every call fails, so
// that a stopped holder cannot clear its Lease as a live one would on its way out.
type nodeClient struct {
	client.Client
	disk *nodeDisk
}

func (c nodeClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c.disk.failed() {
		return errPowerOff
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c nodeClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if c.disk.failed() {
		return errPowerOff
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c nodeClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if c.disk.failed() {
		return errPowerOff
	}
	return c.Client.Update(ctx, obj, opts...)
}

func (c nodeClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if c.disk.failed() {
		return errPowerOff
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

// simBootID is the boot ID of every simulated node.
const simBootID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

// simStart anchors simMono.
var simStart = time.Now()

// simMono is the simulated nodes' CLOCK_MONOTONIC: this process's monotonic clock, plus an hour
// of uptime.
func simMono() (nodelocal.Mono, error) { return nodelocal.Mono(time.Since(simStart) + time.Hour), nil }

// nodeAgent is a node's node-local channel to its agent, as the holder sees it: the agent's
// record is fresh, and not fenced, while the node is on (the agents of the integration tests
// run elsewhere and write none).
type nodeAgent struct {
	nodelocal.Fake
	node string
	disk *nodeDisk
}

func (a *nodeAgent) ReadAgent() (nodelocal.AgentRecord, error) {
	if !a.disk.failed() {
		now, _ := simMono()
		if err := a.WriteAgent(nodelocal.AgentRecord{Node: a.node, BootID: simBootID, PID: 1, Incarnation: 1,
			WrittenAt: now, Interval: time.Second, HasQuorum: true}); err != nil {
			return nodelocal.AgentRecord{}, err
		}
	}
	return a.Fake.ReadAgent()
}

// simHolder is a real quorum holder run in-process for a holder pod.
type simHolder struct {
	node   string
	disk   *nodeDisk
	cancel context.CancelFunc
	done   chan struct{}
}

// holders runs the quorum holders of the holder pods: a real quorumholder.Holder per Running
// pod on a live node, on one in-memory quorum disk per cluster shared by the nodes. A pod being
// deleted stops its holder gracefully (it releases the disk) before the pod goes. k.mu is held.
func (k *Kubelet) holders(ctx context.Context, pods []corev1.Pod) {
	for i := range pods {
		p := &pods[i]
		if p.Labels["app.kubernetes.io/component"] != arbitration.HolderComponent || !k.alive[p.Spec.NodeName] {
			continue
		}
		h := k.running[p.Name]
		switch {
		case p.DeletionTimestamp != nil && h != nil:
			h.cancel()
			<-h.done
			delete(k.running, p.Name)
		case p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && h == nil:
			if err := k.startHolder(ctx, p); err != nil {
				k.holderErrs = append(k.holderErrs, err)
			}
		}
	}
}

func (k *Kubelet) startHolder(ctx context.Context, p *corev1.Pod) error {
	cluster := p.Labels[wolfpackv1alpha1.ClusterLabel]
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := k.c.Get(ctx, client.ObjectKey{Name: cluster}, qd); err != nil {
		return err
	}
	dev := k.disks[cluster]
	if dev == nil {
		dev = quorum.NewMemDevice(quorum.Layout{Slots: quorumholder.DefaultSlots, LogEntries: quorumholder.DefaultLogEntries}.Size())
		k.disks[cluster] = dev
	}
	var duration time.Duration
	if qd.Spec.LeaseDuration != nil {
		duration = qd.Spec.LeaseDuration.Duration
	}
	disk := &nodeDisk{Device: dev}
	agent := &nodeAgent{node: p.Spec.NodeName, disk: disk}
	holder, err := quorumholder.New(quorumholder.Config{Node: p.Spec.NodeName, Cluster: cluster, ClusterUID: qd.UID,
		Device: disk, Format: true, LeaseDuration: duration, LeaseNamespace: envtest.LeaseNamespace, Client: nodeClient{Client: k.c, disk: disk},
		Local: agent, LocalNode: nodelocal.Node{Name: p.Spec.NodeName, BootID: simBootID, Clock: simMono}})
	if err != nil {
		return fmt.Errorf("quorum holder of pod %s: %w", p.Name, err)
	}
	hctx, cancel := context.WithCancel(context.Background())
	h := &simHolder{node: p.Spec.NodeName, disk: disk, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if err := holder.Run(hctx); err != nil && !disk.failed() {
			k.mu.Lock()
			k.holderErrs = append(k.holderErrs, fmt.Errorf("quorum holder of pod %s: %w", p.Name, err))
			k.mu.Unlock()
		}
	}()
	k.running[p.Name] = h
	k.holderStarts = append(k.holderStarts, p.Spec.NodeName)
	return nil
}

// crashHolders stops the holders of node as a power loss would: their disk I/O and API calls fail
// first, so that they release and clear nothing. k.mu is held.
func (k *Kubelet) crashHolders(node string) {
	for name, h := range k.running {
		if h.node == node {
			h.disk.powerOff()
			h.cancel()
			delete(k.running, name)
		}
	}
}

// stopHolders stops every holder and waits for them.
func (k *Kubelet) stopHolders() {
	k.mu.Lock()
	running := k.running
	k.running = map[string]*simHolder{}
	k.mu.Unlock()
	for _, h := range running {
		h.cancel()
		<-h.done
	}
}

// HolderStarts lists the nodes on which a quorum holder was started, in order.
func (k *Kubelet) HolderStarts() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.holderStarts...)
}

// HolderErrors are the errors of the quorum holders, other than those of a simulated crash.
func (k *Kubelet) HolderErrors() []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]error(nil), k.holderErrs...)
}
