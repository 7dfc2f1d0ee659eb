package quorumholder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/membership"
	"github.com/wolfpack-ha/wolfpack/internal/nodelocal"
	"github.com/wolfpack-ha/wolfpack/internal/quorum"
)

// The holder's RBAC: its Lease in the agents' namespace, its QuorumDisk, and Events.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=wolfpack-system
// +kubebuilder:rbac:groups=wolfpack.dev,resources=quorumdisks,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Defaults of Config.
const (
	DefaultSlots          = 16
	DefaultLogEntries     = 64
	DefaultLeaseNamespace = "wolfpack-system"
)

// shutdownTimeout bounds each of the two steps of a shutdown, the release of the disk lease
// and the clearing of the Lease, so that both fit in the holder pod's grace period of 10s.
const shutdownTimeout = 4 * time.Second

// publishAttempts is how many times one publication is tried when the Lease changed under it.
const publishAttempts = 3

// Renewal error reasons, the values of the metric's reason label.
const (
	ReasonLate    = "late"
	ReasonLost    = "lost"
	ReasonIO      = "io"
	ReasonCorrupt = "corrupt"
)

// DiskDamagedReason is the reason of the Warning Event that names the damaged blocks of the
// quorum disk.
const DiskDamagedReason = "QuorumDiskDamaged"

// ownerBlockIndex is the owner record's block on the quorum disk (package quorum's layout).
const ownerBlockIndex = 1

// Config configures a Holder.
type Config struct {
	// Node is this node's name: the disk slot's owner and the Lease's holderIdentity.
	Node string
	// Cluster is the QuorumDisk's name (cluster-scoped).
	Cluster string
	// ClusterUID is the QuorumDisk's UID, a UUID: the disk's header must carry it.
	ClusterUID types.UID
	// Device is the quorum disk. The caller opens and closes it.
	Device quorum.Device
	// Format lets the holder format a device that carries no quorum disk header. A damaged
	// header or another cluster's is never formatted over.
	Format bool
	// Slots and LogEntries are the layout of a disk the holder formats (0: DefaultSlots,
	// DefaultLogEntries). An existing disk keeps its own.
	Slots, LogEntries int
	// LeaseDuration is L, the QuorumDisk's spec.leaseDuration (0: the API's default).
	LeaseDuration time.Duration
	// LeaseNamespace holds the holder's Lease (empty: DefaultLeaseNamespace).
	LeaseNamespace string
	// Client writes the Lease.
	Client client.Client
	// APIReader reads the Lease (nil: Client). With a manager's cached client, pass the
	// manager's API reader, so that neither a stale cache nor list and watch rights are needed.
	APIReader client.Reader
	// Clock is the clock (nil: the real one).
	Clock clock.WithTicker
	// Recorder records the QuorumHeld and QuorumLost Events (nil: none).
	Recorder events.EventRecorder
	// Logger receives what the holder does (zero value: discarded).
	Logger logr.Logger
	// Local is the node-local channel to this node's agent (package nodelocal): the holder
	// renews only while the agent's record there is fresh and not fenced, and writes its own
	// record there. Required.
	Local nodelocal.Channel
	// LocalNode is this process on its node: boot ID and CLOCK_MONOTONIC, by which the
	// agent's record is judged and the holder's is written (nodelocal.SystemNode; tests give a
	// fake clock). Its Name is Node (set when empty); PID defaults to this process's.
	LocalNode nodelocal.Node
}

// Holder holds the quorum disk's lease for its node and publishes the hold. See the package
// documentation for its rules. It is a controller-runtime Runnable (Start), and Run may be
// called from main; either only once.
type Holder struct {
	cfg    Config
	uid    [quorum.UIDLen]byte
	timing quorum.Timing
	reader client.Reader
	clock  clock.WithTicker
	log    logr.Logger
	ref    *wolfpackv1alpha1.QuorumDisk

	heldGauge, epochGauge, damagedGauge prometheus.Gauge
	renewErrors                         map[string]prometheus.Counter

	started atomic.Bool

	mu    sync.Mutex // guards held and epoch
	held  bool
	epoch uint64

	// current is the Lease as last written or read, when known (known); nil and known: there
	// is none. Only Run's goroutine uses them.
	current *coordinationv1.Lease
	known   bool

	// Only Run's goroutine uses these: what was last said about the agent, the disk's damage,
	// the Lease and the holder's record, so that each is logged (or recorded) when it changes.
	agentWhy   string
	damage     string
	acquireWhy string
	publishErr error
	localErr   string
}

var (
	heldVec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_quorum_held",
		Help: "1 while this node's quorum holder holds the quorum disk's lease, else 0.",
	}, []string{"cluster", "node"})
	epochVec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_quorum_epoch",
		Help: "Epoch of this node's current or last hold of the quorum disk's lease.",
	}, []string{"cluster", "node"})
	renewErrorsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wolfpack_quorum_renew_errors_total",
		Help: "Failed renewals of the quorum disk's lease, by reason: late, lost, io, corrupt.",
	}, []string{"cluster", "node", "reason"})
	damagedVec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wolfpack_quorum_damaged_blocks",
		Help: "Damaged blocks of the quorum disk at this node's holder's last check.",
	}, []string{"cluster", "node"})
	registerOnce sync.Once
)

// completeLocal checks the node-local channel's settings and fills in their defaults.
func (cfg *Config) completeLocal() error {
	switch {
	case cfg.Local == nil:
		return fmt.Errorf("quorum holder of QuorumDisk %s: no node-local channel to the node agent", cfg.Cluster)
	case cfg.LocalNode.Clock == nil || cfg.LocalNode.BootID == "":
		return fmt.Errorf("quorum holder of QuorumDisk %s: no CLOCK_MONOTONIC or boot ID for the node-local channel", cfg.Cluster)
	case cfg.LocalNode.Name != "" && cfg.LocalNode.Name != cfg.Node:
		return fmt.Errorf("quorum holder of QuorumDisk %s: the node-local channel is node %s's, not %s's", cfg.Cluster, cfg.LocalNode.Name, cfg.Node)
	}
	if cfg.LocalNode.Name == "" {
		cfg.LocalNode.Name = cfg.Node
	}
	if cfg.LocalNode.PID == 0 {
		cfg.LocalNode.PID = os.Getpid()
	}
	return nil
}

// New checks cfg, fills in its defaults and returns a Holder. It does no I/O.
func New(cfg Config) (*Holder, error) {
	switch {
	case cfg.Node == "" || len(cfg.Node) > quorum.MaxNodeName:
		return nil, fmt.Errorf("quorum holder: node name %q: want 1 to %d bytes", cfg.Node, quorum.MaxNodeName)
	case cfg.Cluster == "":
		return nil, errors.New("quorum holder: no cluster (QuorumDisk name)")
	case cfg.Device == nil:
		return nil, fmt.Errorf("quorum holder of QuorumDisk %s: no device", cfg.Cluster)
	case cfg.Client == nil:
		return nil, fmt.Errorf("quorum holder of QuorumDisk %s: no API client", cfg.Cluster)
	case cfg.LeaseDuration < 0:
		return nil, fmt.Errorf("quorum holder of QuorumDisk %s: negative lease duration %v", cfg.Cluster, cfg.LeaseDuration)
	}
	if err := cfg.completeLocal(); err != nil {
		return nil, err
	}
	u, err := uuid.Parse(string(cfg.ClusterUID))
	if err != nil {
		return nil, fmt.Errorf("quorum holder: UID %q of QuorumDisk %s: %w", cfg.ClusterUID, cfg.Cluster, err)
	}
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.LogEntries == 0 {
		cfg.LogEntries = DefaultLogEntries
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = wolfpackv1alpha1.DefaultLeaseDuration
	}
	if cfg.LeaseNamespace == "" {
		cfg.LeaseNamespace = DefaultLeaseNamespace
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	h := &Holder{cfg: cfg, uid: u, clock: cfg.Clock, reader: cfg.APIReader,
		log: cfg.Logger.WithValues("cluster", cfg.Cluster, "node", cfg.Node)}
	if cfg.Format {
		if err := (quorum.Layout{ClusterUID: h.uid, Slots: cfg.Slots, LogEntries: cfg.LogEntries}).Validate(); err != nil {
			return nil, fmt.Errorf("quorum holder of QuorumDisk %s: %w", cfg.Cluster, err)
		}
	}
	if h.timing, err = h.leaseConfig(0).Timing(); err != nil {
		return nil, fmt.Errorf("quorum holder of QuorumDisk %s: lease duration %v: %w", cfg.Cluster, cfg.LeaseDuration, err)
	}
	if h.reader == nil {
		h.reader = cfg.Client
	}
	h.ref = &wolfpackv1alpha1.QuorumDisk{}
	h.ref.Name, h.ref.UID = cfg.Cluster, cfg.ClusterUID
	h.ref.SetGroupVersionKind(wolfpackv1alpha1.GroupVersion.WithKind("QuorumDisk"))

	registerOnce.Do(func() { metrics.Registry.MustRegister(heldVec, epochVec, renewErrorsVec, damagedVec) })
	h.heldGauge = heldVec.WithLabelValues(cfg.Cluster, cfg.Node)
	h.epochGauge = epochVec.WithLabelValues(cfg.Cluster, cfg.Node)
	h.damagedGauge = damagedVec.WithLabelValues(cfg.Cluster, cfg.Node)
	h.renewErrors = map[string]prometheus.Counter{}
	for _, r := range []string{ReasonLate, ReasonLost, ReasonIO, ReasonCorrupt} {
		h.renewErrors[r] = renewErrorsVec.WithLabelValues(cfg.Cluster, cfg.Node, r)
	}
	return h, nil
}

// leaseConfig is the disk lease's configuration for slot.
func (h *Holder) leaseConfig(slot int) quorum.LeaseConfig {
	return quorum.LeaseConfig{Node: h.cfg.Node, Slot: slot, LeaseDuration: h.cfg.LeaseDuration,
		IOTimeout: h.cfg.LeaseDuration / 10, Clock: h.clock, Logger: h.log.WithName("disk")}
}

// Timing is the disk lease's durations.
func (h *Holder) Timing() quorum.Timing { return h.timing }

// Held reports whether the holder holds the disk lease and publishes it.
func (h *Holder) Held() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// Epoch is the epoch of the current or last hold (0 before the first).
func (h *Holder) Epoch() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.epoch
}

// Start implements controller-runtime's Runnable: it is Run.
func (h *Holder) Start(ctx context.Context) error { return h.Run(ctx) }

// NeedLeaderElection is false: a holder runs on its own node, whichever manager leads.
func (h *Holder) NeedLeaderElection() bool { return false }

// Run holds the disk lease until ctx ends, then releases it and clears the Lease, and returns
// nil. It returns an error when it cannot start (the disk cannot be opened or formatted, no
// slot is free) and when the disk's owner block is damaged (rule 4 of the package
// documentation).
func (h *Holder) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return fmt.Errorf("quorum holder of QuorumDisk %s: Run called twice", h.cfg.Cluster)
	}
	disk, err := h.open()
	if err != nil {
		return err
	}
	lease, err := h.newLease(disk)
	if err != nil {
		return err
	}
	h.heldGauge.Set(0)
	h.writeLocal(nil)
	var wait time.Duration
	for {
		if err := h.sleep(ctx, wait); err != nil {
			return h.shutdown(ctx, lease)
		}
		wait = h.timing.RenewInterval
		if !h.agentAlive() {
			h.writeLocal(nil)
			continue
		}
		if !h.known {
			// Best effort: the holder contends whether or not the API server answers (rule 2).
			if err := h.readLease(ctx); err != nil {
				h.log.V(1).Info("cannot read the holder's Lease; contending for the disk anyway", "reason", err.Error())
			}
		}
		h.log.V(1).Info("acquiring the quorum disk lease")
		err := lease.Acquire(ctx)
		switch {
		case ctx.Err() != nil:
			return h.shutdown(ctx, lease)
		case errors.Is(err, quorum.ErrSlotTaken):
			// Another node took the free slot this one chose, at the same time: choose again.
			h.log.Info("the chosen node slot was taken by another node; choosing again", "reason", err.Error())
			if lease, err = h.newLease(disk); err != nil {
				return err
			}
			wait = 0
			continue
		case damagedOwner(err):
			h.event(corev1.EventTypeWarning, wolfpackv1alpha1.QuorumLostReason, "Acquire",
				"node %s cannot acquire the quorum disk %s: %v; the holder stops until an administrator repairs the disk",
				h.cfg.Node, h.deviceName(), err)
			h.clearBounded(ctx)
			return fmt.Errorf("quorum device %s of QuorumDisk %s is damaged; the quorum holder stops until an administrator repairs or wipes it: %w",
				h.deviceName(), h.cfg.Cluster, err)
		case damaged(err):
			// Another block than the owner record (another node's slot): the holder keeps
			// running and trying, once a lease duration, so that a repair is seen at once.
			wait = h.cfg.LeaseDuration
			if why := err.Error(); why != h.acquireWhy {
				h.acquireWhy = why
				h.log.Error(err, "the quorum disk is damaged where the holder must read it to acquire; trying again", "retryAfter", wait)
				h.event(corev1.EventTypeWarning, DiskDamagedReason, "Acquire",
					"node %s cannot acquire the quorum disk %s: %v; the holder keeps trying every %v until an administrator repairs the disk",
					h.cfg.Node, h.deviceName(), err, wait)
			}
			continue
		case err != nil:
			h.log.Error(err, "acquiring the quorum disk lease; trying again", "retryAfter", wait)
			continue
		}
		h.acquireWhy = ""
		h.acquired(lease)
		ended := h.hold(ctx, disk, lease)
		if ctx.Err() != nil {
			return h.shutdown(ctx, lease)
		}
		h.lost(lease, ended)
		wait = 0
	}
}

// agentAlive reports whether this node's agent is alive and has not fenced the node, by its
// node-local record (rule 3), and logs when that changes.
func (h *Holder) agentAlive() bool {
	_, err := h.cfg.LocalNode.AgentAlive(h.cfg.Local)
	why := ""
	if err != nil {
		why = err.Error()
	}
	if why != h.agentWhy {
		if err != nil {
			h.log.Info("the node agent is not alive, or has fenced this node: the quorum disk lease is neither acquired nor renewed", "reason", why)
		} else {
			h.log.Info("the node agent is alive")
		}
		h.agentWhy = why
	}
	return err == nil
}

// writeLocal writes the holder's node-local record: the hold of lease while it is valid (nil:
// none). A failure is logged when it changes; it changes nothing else.
func (h *Holder) writeLocal(lease *quorum.Lease) {
	err := func() error {
		mono, err := h.cfg.LocalNode.Clock() // read first: the validity below is then never too long
		if err != nil {
			return err
		}
		now := h.clock.Now()
		rec := nodelocal.HolderRecord{Node: h.cfg.Node, BootID: h.cfg.LocalNode.BootID, PID: h.cfg.LocalNode.PID,
			WrittenAt: mono, Epoch: h.Epoch()}
		if lease != nil {
			if until := lease.ValidUntil(); lease.Valid() && until.After(now) {
				rec.Held, rec.Epoch, rec.ValidUntil = true, lease.Epoch(), mono.Add(until.Sub(now))
			}
		}
		return h.cfg.Local.WriteHolder(rec)
	}()
	why := ""
	if err != nil {
		why = err.Error()
	}
	if why != h.localErr {
		if err != nil {
			h.log.Error(err, "writing the holder's node-local record")
		} else {
			h.log.Info("the holder's node-local record is written again")
		}
		h.localErr = why
	}
}

// checkDisk reads every block of the disk and reports the damaged ones when they change: an
// Event naming each block, the log, the metric (rule 4). Nothing else follows from it.
func (h *Holder) checkDisk(disk *quorum.Disk, epoch uint64) {
	var blocks []string
	for _, err := range disk.Check() {
		var be *quorum.BlockError
		if !errors.As(err, &be) {
			h.log.V(1).Info("checking the quorum disk", "reason", err.Error())
			continue
		}
		blocks = append(blocks, be.Error())
	}
	slices.Sort(blocks)
	h.damagedGauge.Set(float64(len(blocks)))
	damage := strings.Join(blocks, "; ")
	if damage == h.damage {
		return
	}
	h.damage = damage
	if damage == "" {
		h.log.Info("the quorum disk has no damaged block any more")
		return
	}
	h.log.Info("the quorum disk has damaged blocks; the hold goes on", "blocks", damage)
	h.event(corev1.EventTypeWarning, DiskDamagedReason, "Check",
		"node %s holds the quorum disk %s (epoch %d) and keeps holding it, but %d of its blocks are damaged: %s; repair or replace the disk",
		h.cfg.Node, h.deviceName(), epoch, len(blocks), damage)
}

// damaged reports whether err is damage on the disk that a person must look at.
func damaged(err error) bool {
	var be *quorum.BlockError
	return errors.As(err, &be) || errors.Is(err, quorum.ErrCorrupt)
}

// damagedOwner reports whether err is damage of the owner record, which the holder never
// claims.
func damagedOwner(err error) bool {
	var be *quorum.BlockError
	return errors.As(err, &be) && be.Block == ownerBlockIndex && errors.Is(be, quorum.ErrCorrupt)
}

// open opens the disk, formatting it first if it is empty and Format allows.
func (h *Holder) open() (*quorum.Disk, error) {
	d, err := quorum.Open(h.cfg.Device, h.uid)
	if errors.Is(err, quorum.ErrNotFormatted) && h.cfg.Format {
		l := quorum.Layout{ClusterUID: h.uid, Slots: h.cfg.Slots, LogEntries: h.cfg.LogEntries}
		h.log.Info("formatting the quorum disk", "device", h.deviceName(), "slots", l.Slots, "logEntries", l.LogEntries)
		if err := quorum.Format(h.cfg.Device, l); err != nil {
			return nil, fmt.Errorf("formatting quorum device %s for QuorumDisk %s: %w", h.deviceName(), h.cfg.Cluster, err)
		}
		d, err = quorum.Open(h.cfg.Device, h.uid)
	}
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, quorum.ErrNotFormatted):
			hint = "; formatting it was not asked for (Config.Format, node-agent quorum --format)"
		case errors.Is(err, quorum.ErrOtherCluster):
			hint = "; it belongs to another cluster (or to a QuorumDisk of this name deleted and created again): wipe its first block to reuse it"
		case errors.Is(err, quorum.ErrCorrupt):
			hint = "; its header is damaged, and the holder never formats over it"
		}
		return nil, fmt.Errorf("opening quorum device %s of QuorumDisk %s (UID %s): %w%s",
			h.deviceName(), h.cfg.Cluster, h.cfg.ClusterUID, err, hint)
	}
	return d, nil
}

// newLease finds this node's slot, or the first free one, and makes the disk lease on it.
func (h *Holder) newLease(d *quorum.Disk) (*quorum.Lease, error) {
	slot, err := d.FindSlot(h.cfg.Node)
	if err != nil {
		if !errors.Is(err, quorum.ErrNoSuchNode) {
			return nil, fmt.Errorf("reading the node slots of quorum device %s (QuorumDisk %s): %w", h.deviceName(), h.cfg.Cluster, err)
		}
		slots, serr := d.Slots()
		if slots == nil {
			return nil, fmt.Errorf("reading the node slots of quorum device %s (QuorumDisk %s): %w", h.deviceName(), h.cfg.Cluster, serr)
		}
		if serr != nil {
			h.log.Error(serr, "some node slots of the quorum disk are damaged")
		}
		slot = -1
		for i, r := range slots {
			if r.Node == "" {
				slot = i
				break
			}
		}
		if slot < 0 {
			names := make([]string, len(slots))
			for i, r := range slots {
				names[i] = r.Node
			}
			return nil, fmt.Errorf("quorum device %s of QuorumDisk %s has no free node slot for node %s: its %d slots belong to %v",
				h.deviceName(), h.cfg.Cluster, h.cfg.Node, len(slots), names)
		}
		h.log.Info("taking a free node slot of the quorum disk", "slot", slot)
	}
	lease, err := quorum.NewLease(d, h.leaseConfig(slot))
	if err != nil {
		return nil, fmt.Errorf("quorum holder of QuorumDisk %s: %w", h.cfg.Cluster, err)
	}
	return lease, nil
}

// Why a hold ended.
type ending struct {
	reason string // ReasonLost for a lost hold, "expired", "agent"
	err    error
}

// hold renews the lease and publishes it until the hold ends or ctx does. It renews only while
// the node agent is alive (rule 3), whether or not the API server answers (rule 2), and checks
// the whole disk once a lease duration (rule 4).
func (h *Holder) hold(ctx context.Context, disk *quorum.Disk, lease *quorum.Lease) ending {
	h.publishErr = nil
	h.writeLocal(lease)
	if h.agentAlive() {
		// Not when the agent's record went stale while Acquire waited on the disk: then the
		// hold is not renewed either, and runs out.
		h.publish(ctx, lease)
	}
	// Both on the holder's clock.
	next := h.clock.Now().Add(h.timing.RenewInterval)
	nextCheck := h.clock.Now()
	var renewErr, agentErr error
	for {
		now := h.clock.Now()
		if err := h.sleep(ctx, min(next.Sub(now), nextCheck.Sub(now))); err != nil {
			return ending{}
		}
		if !h.clock.Now().Before(nextCheck) {
			h.checkDisk(disk, lease.Epoch())
			nextCheck = h.clock.Now().Add(h.cfg.LeaseDuration)
		}
		if h.clock.Now().Before(next) {
			continue
		}
		next = h.clock.Now().Add(h.timing.RenewInterval)
		if !h.agentAlive() {
			// Let the lease run out; if the agent comes back first, the hold goes on.
			agentErr = errors.New(h.agentWhy)
			if !lease.Valid() {
				return ending{reason: "agent", err: agentErr}
			}
			h.writeLocal(lease)
			continue
		}
		err := lease.Renew(ctx)
		switch {
		case ctx.Err() != nil:
			return ending{}
		case err == nil:
			if renewErr != nil {
				h.log.Info("the quorum disk lease is renewed again")
			}
			if agentErr != nil {
				h.log.Info("the quorum disk lease is renewed again: the node agent is back", "epoch", lease.Epoch())
			}
			renewErr, agentErr = nil, nil
			h.writeLocal(lease)
			h.publish(ctx, lease)
			continue
		case errors.Is(err, quorum.ErrLost):
			h.renewErrors[ReasonLost].Inc()
			h.writeLocal(nil)
			return ending{reason: ReasonLost, err: err}
		case errors.Is(err, quorum.ErrNotHeld):
			// The validity ran out before this renewal: after failed renewals, or a stall.
			h.renewErrors[ReasonLost].Inc()
			h.writeLocal(nil)
			if agentErr != nil {
				return ending{reason: "agent", err: agentErr}
			}
			if renewErr != nil {
				err = fmt.Errorf("%w (the last renewal failed: %w)", err, renewErr)
			}
			return ending{reason: "expired", err: err}
		}
		renewErr = err
		h.renewErrors[renewReason(err)].Inc()
		h.log.Error(err, "renewing the quorum disk lease; trying again while it is valid", "validUntil", lease.ValidUntil())
		if !lease.Valid() {
			h.writeLocal(nil)
			return ending{reason: "expired", err: err}
		}
	}
}

// renewReason classifies a renewal error that does not end the hold.
func renewReason(err error) string {
	switch {
	case errors.Is(err, quorum.ErrLate):
		return ReasonLate
	case damaged(err):
		return ReasonCorrupt
	default:
		return ReasonIO
	}
}

// acquired records the start of a hold.
func (h *Holder) acquired(lease *quorum.Lease) {
	epoch, acq := lease.Epoch(), lease.LastAcquisition()
	h.mu.Lock()
	h.held, h.epoch = true, epoch
	h.mu.Unlock()
	h.heldGauge.Set(1)
	h.epochGauge.Set(float64(epoch))
	h.log.Info("holding the quorum disk", "epoch", epoch, "reason", acq.Reason.String(), "previous", acq.Previous)
	h.event(corev1.EventTypeNormal, wolfpackv1alpha1.QuorumHeldReason, "Acquire",
		"node %s holds the quorum disk at epoch %d (%s; previous holder %q)", h.cfg.Node, epoch, acq.Reason, acq.Previous)
}

// lost records the end of a hold.
func (h *Holder) lost(lease *quorum.Lease, e ending) {
	h.setNotHeld()
	epoch := lease.Epoch()
	var note string
	switch e.reason {
	case ReasonLost:
		note = fmt.Sprintf("node %s lost the quorum disk (epoch %d): %v", h.cfg.Node, epoch, e.err)
	case "agent":
		note = fmt.Sprintf("node %s let the quorum disk lease (epoch %d) run out: %v", h.cfg.Node, epoch, e.err)
	default:
		note = fmt.Sprintf("node %s could not renew the quorum disk lease (epoch %d) before it ran out: %v", h.cfg.Node, epoch, e.err)
	}
	h.log.Info("no longer holding the quorum disk; acquiring it again", "epoch", epoch, "why", note)
	h.event(corev1.EventTypeWarning, wolfpackv1alpha1.QuorumLostReason, "Renew", "%s", note)
}

func (h *Holder) setNotHeld() {
	h.mu.Lock()
	h.held = false
	h.mu.Unlock()
	h.heldGauge.Set(0)
	h.writeLocal(nil)
}

// shutdown releases the disk lease if it is held, and clears the Lease if it names this node.
func (h *Holder) shutdown(ctx context.Context, lease *quorum.Lease) error {
	ctx = context.WithoutCancel(ctx)
	if lease.Valid() {
		epoch := lease.Epoch()
		h.setNotHeld()
		done := make(chan error, 1)
		go func() { done <- lease.Release(ctx) }()
		t := h.clock.NewTimer(shutdownTimeout)
		var err error
		select {
		case err = <-done:
		case <-t.C():
			err = fmt.Errorf("no answer from the device in %v", shutdownTimeout)
		}
		t.Stop()
		if err != nil {
			h.log.Error(err, "releasing the quorum disk lease on shutdown")
		} else {
			h.log.Info("released the quorum disk on shutdown", "epoch", epoch)
		}
		h.event(corev1.EventTypeNormal, wolfpackv1alpha1.QuorumReleasedReason, "Release",
			"node %s released the quorum disk (epoch %d) on shutdown", h.cfg.Node, epoch)
	}
	h.setNotHeld()
	h.clearBounded(ctx)
	return nil
}

// clearBounded clears the Lease if it names this node, giving up after shutdownTimeout.
func (h *Holder) clearBounded(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := h.clear(ctx); err != nil {
		h.log.Error(err, "clearing the holder's Lease")
	}
}

// readLease reads the Lease into the holder's copy.
func (h *Holder) readLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(h.timing.RenewInterval, time.Second))
	defer cancel()
	l := &coordinationv1.Lease{}
	err := h.reader.Get(ctx, h.leaseKey(), l)
	switch {
	case apierrors.IsNotFound(err):
		h.current, h.known = nil, true
	case err != nil:
		h.current, h.known = nil, false
		return fmt.Errorf("reading Lease %s: %w", h.leaseKey(), err)
	default:
		h.current, h.known = l, true
	}
	return nil
}

var errNotValid = errors.New("the quorum disk lease is not valid")

// publish writes the Lease for the lease's current hold, while the lease is valid (rule 1), and
// logs when writing it starts or stops failing. It is tried after every renewal, whether or not
// the last one failed (rule 2): once the API server answers again, the same epoch is published.
func (h *Holder) publish(ctx context.Context, lease *quorum.Lease) {
	err := h.write(ctx, lease)
	switch {
	case err == nil && h.publishErr != nil:
		h.log.Info("the holder's Lease is written again", "epoch", lease.Epoch())
	case err != nil && h.publishErr == nil:
		h.log.Error(err, "writing the holder's Lease; the hold goes on, and the Lease is written again once the API server answers",
			"epoch", lease.Epoch())
	}
	h.publishErr = err
}

// write writes the Lease once, within half a renew interval, so that a hung API server delays
// no renewal by more than that.
func (h *Holder) write(ctx context.Context, lease *quorum.Lease) error {
	left := lease.ValidUntil().Sub(h.clock.Now())
	if !lease.Valid() || left <= 0 {
		return errNotValid
	}
	ctx, cancel := context.WithTimeout(ctx, min(left, h.timing.RenewInterval/2))
	defer cancel()
	p := Publication{Namespace: h.cfg.LeaseNamespace, Cluster: h.cfg.Cluster, Node: h.cfg.Node,
		Epoch: lease.Epoch(), LeaseDuration: h.cfg.LeaseDuration}
	var err error
	for range publishAttempts {
		if !h.known {
			if err = h.readLease(ctx); err != nil {
				return err
			}
		}
		if !lease.Valid() {
			return errNotValid
		}
		l := DesiredLease(h.current, p, h.clock.Now())
		if h.current == nil {
			err = h.cfg.Client.Create(ctx, l)
		} else {
			err = h.cfg.Client.Update(ctx, l)
		}
		if err == nil {
			h.current, h.known = l, true
			return nil
		}
		h.current, h.known = nil, false
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			break
		}
	}
	return fmt.Errorf("writing Lease %s: %w", h.leaseKey(), err)
}

// clear removes holderIdentity from the Lease if it names this node (rule 5).
func (h *Holder) clear(ctx context.Context) error {
	var err error
	for range publishAttempts {
		if err = h.readLease(ctx); err != nil {
			return err
		}
		l := ClearedLease(h.current, h.cfg.Node)
		if l == nil {
			return nil
		}
		if err = h.cfg.Client.Update(ctx, l); err == nil {
			h.current = l
			h.log.Info("cleared the holder's Lease", "lease", h.leaseKey())
			return nil
		}
		if !apierrors.IsConflict(err) {
			break
		}
	}
	return fmt.Errorf("clearing Lease %s: %w", h.leaseKey(), err)
}

func (h *Holder) leaseKey() client.ObjectKey {
	return client.ObjectKey{Namespace: h.cfg.LeaseNamespace, Name: membership.QuorumLeaseName(h.cfg.Cluster)}
}

// sleep waits d on the holder's clock, or until ctx ends.
func (h *Holder) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := h.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// event records an Event regarding the QuorumDisk, if there is a recorder.
func (h *Holder) event(eventType, reason, action, note string, args ...any) {
	if h.cfg.Recorder != nil {
		h.cfg.Recorder.Eventf(h.ref, nil, eventType, reason, action, note, args...)
	}
}

// deviceName names the device for messages: its path when it has one.
func (h *Holder) deviceName() string {
	if p, ok := h.cfg.Device.(interface{ Path() string }); ok {
		return p.Path()
	}
	return fmt.Sprintf("%T", h.cfg.Device)
}
