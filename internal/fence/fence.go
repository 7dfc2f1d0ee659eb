// Package fence holds the ways a node agent stops its group workloads when its node must fail
// itself: the agent cannot renew its node Lease (the API is unreachable, or the quorum rules say
// the node lost), so it stops every workload of a ResourceGroup on the node before the Lease runs
// out, and only then may the manager start those groups on another node.
//
// Every fence action is a Fencer, made by New from the QuorumDisk's FenceAction:
//
//   - None records its calls and stops nothing: for tests only.
//   - CRI stops the group pods' containers and sandboxes through the node's CRI socket.
//   - Watchdog feeds /dev/watchdog while the agent holds its Lease, and stops feeding it to fence,
//     so that the hardware (or softdog) resets the node. It is the only action that also covers
//     an agent that hangs (stopped, starved of CPU, looping on OOM kills): the device resets the
//     node when the agent stops feeding it, whatever the reason.
//   - CRI with a watchdog fallback (Options.WatchdogFallbackPath): CRI, with a watchdog fed as
//     Watchdog's is, that Escalate stops feeding when the CRI fence fails.
//
// Besides Fencer, a Fencer may have optional methods, which the agent finds with a type assertion
// (or the functions of the same names here): Timeout (TimeoutReporter), Disarm (Disarmer),
// Handover (HandoverCloser) and Escalate (Escalator).
//
// A Fencer does not decide when to fence; the agent does.
package fence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/clock"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// Defaults of Options.
const (
	// DefaultCRIEndpoint is containerd's CRI socket.
	DefaultCRIEndpoint = "unix:///run/containerd/containerd.sock"
	// DefaultCRITimeout bounds connecting to the container runtime, and each call to it.
	DefaultCRITimeout = 2 * time.Second
	// DefaultWatchdogPath is the Linux watchdog device.
	DefaultWatchdogPath = "/dev/watchdog"
)

// ErrFenced is returned by a Watchdog's Heartbeat once Fence has run: a fenced node is not fed
// any more.
var ErrFenced = errors.New("fenced")

// ErrNoEscalation is returned by Escalate for a Fencer that has nothing to escalate to.
var ErrNoEscalation = errors.New("the fence action has no escalation")

// Fencer is one fence action. Its methods may be called from several goroutines.
type Fencer interface {
	// Fence stops every group workload on this node, that is every pod labelled
	// wolfpack.dev/group, and reports what it stopped. It does as much as it can before ctx ends
	// and returns the errors of what it could not stop, each naming the pod or container.
	// It may be called again: the kubelet, which still runs the pods it knows, may restart them.
	Fence(ctx context.Context) (Report, error)
	// Heartbeat tells an action that needs feeding (Watchdog) that the agent still holds its
	// Lease; the agent calls it at least once per Lease renewal. A Watchdog that has fenced
	// returns ErrFenced. It is a no-op for the others.
	Heartbeat() error
	// Close releases what the action holds. A watchdog stays armed (no magic close): the node
	// resets unless another agent opens the device and feeds it in time. Only Disarm disarms it.
	Close() error
}

// TimeoutReporter is a Fencer whose device resets the node a time after the last Heartbeat.
type TimeoutReporter interface {
	// Timeout is the timeout that the device granted, 0 when it does not say or before the
	// first Heartbeat has set it. It may be longer than Options.WatchdogTimeout (the device
	// cannot count that finely, or not that short): the agent must then publish a lease long
	// enough for it (RULES.md section 1).
	Timeout() time.Duration
}

// Disarmer is a Fencer that a clean, deliberate stop (the node leaves the cluster; a test) can
// disarm. Nothing else may: an agent that stops otherwise leaves its watchdog armed.
type Disarmer interface {
	// Disarm disarms the watchdog (the magic close) and closes it. It refuses once the Fencer has
	// fenced: a fenced node must reset.
	Disarm() error
}

// HandoverCloser is a Fencer that can hand its armed watchdog on to the agent that replaces this
// one (a rolling update or a restart).
type HandoverCloser interface {
	// Handover sets the watchdog's timeout to d, so that the next agent has d to open the device
	// and feed it, feeds it once and closes it without disarming it; it returns the timeout that
	// the device granted (0 when it does not say), which may be longer than d. It feeds the
	// device, so the caller calls it only when it may feed (right after a renewal) and picks d
	// so that the node resets before the manager may count it fenced: at most its published
	// lease duration less the time since its last renewal began. It refuses once the Fencer has
	// fenced. It is a no-op returning 0 for an action without a watchdog.
	Handover(d time.Duration) (granted time.Duration, err error)
}

// Escalator is a Fencer with a stronger action for when Fence fails: CRI with a watchdog
// fallback stops feeding the watchdog, so that the node resets.
type Escalator interface {
	// Escalate runs the stronger action, for good. It returns nil once that action has been
	// taken (the watchdog is no longer fed: the node resets within its timeout).
	Escalate() error
}

// Timeout returns f's Timeout, 0 when f has none.
func Timeout(f Fencer) time.Duration {
	if t, ok := f.(TimeoutReporter); ok {
		return t.Timeout()
	}
	return 0
}

// Disarm disarms f when it can be disarmed, and does nothing otherwise.
func Disarm(f Fencer) error {
	if d, ok := f.(Disarmer); ok {
		return d.Disarm()
	}
	return nil
}

// Handover hands f's watchdog over when it has one, and returns 0 otherwise.
func Handover(f Fencer, d time.Duration) (time.Duration, error) {
	if h, ok := f.(HandoverCloser); ok {
		return h.Handover(d)
	}
	return 0, nil
}

// Escalate runs f's stronger action; ErrNoEscalation when it has none.
func Escalate(f Fencer) error {
	if e, ok := f.(Escalator); ok {
		return e.Escalate()
	}
	return ErrNoEscalation
}

// Options configures the fence actions. The zero value gives every default.
type Options struct {
	// CRIEndpoint is the container runtime's CRI socket (CRI); DefaultCRIEndpoint when empty.
	CRIEndpoint string
	// CRITimeout bounds connecting to the runtime and each call to it (CRI); DefaultCRITimeout
	// when not positive. The context given to Fence bounds the whole.
	CRITimeout time.Duration
	// StopGracePeriod is how long the runtime lets a container handle SIGTERM before it kills
	// it (CRI), rounded up to whole seconds, the CRI's unit. Zero, the default, kills at once:
	// fencing is not a graceful shutdown.
	StopGracePeriod time.Duration
	// WatchdogPath is the watchdog device (Watchdog); DefaultWatchdogPath when empty.
	WatchdogPath string
	// WatchdogTimeout, when positive, is set on the device by the first Heartbeat (Watchdog, and
	// the CRI's fallback), rounded down to whole seconds (at least one): a node whose agent stops
	// feeding the device (because it fenced, hung or died) resets at most this long after the
	// last Heartbeat, by the device's own timer. Opening the device does not set it, since setting it feeds the
	// device: an agent that has not renewed its Lease yet must not push back the reset that its
	// predecessor's Lease covers. Zero keeps the device's timeout. The device may grant another
	// timeout: see TimeoutReporter.
	WatchdogTimeout time.Duration
	// WatchdogFallbackPath, when set, gives the CRI action a watchdog at this path: opened (so
	// armed), fed by every Heartbeat (the first sets WatchdogTimeout), and no longer fed once Escalate is
	// called (when the CRI fence fails), so that the node resets. A CRI Fence does not stop
	// feeding it. With it, CRI also covers a hung agent, as Watchdog does. Ignored by the other
	// actions.
	WatchdogFallbackPath string
	// Clock stamps reports; the real clock when nil.
	Clock clock.PassiveClock
}

// withDefaults returns o with every unset field at its default.
func (o Options) withDefaults() Options {
	if o.CRIEndpoint == "" {
		o.CRIEndpoint = DefaultCRIEndpoint
	}
	if o.CRITimeout <= 0 {
		o.CRITimeout = DefaultCRITimeout
	}
	if o.StopGracePeriod < 0 {
		o.StopGracePeriod = 0
	}
	if o.WatchdogPath == "" {
		o.WatchdogPath = DefaultWatchdogPath
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// New returns the Fencer of action. Only Watchdog (and CRI with a watchdog fallback) does anything
// here: it opens, and so arms, the device, after which the agent must call Heartbeat more often
// than the watchdog's timeout.
func New(action wolfpackv1alpha1.FenceAction, opts Options) (Fencer, error) {
	opts = opts.withDefaults()
	switch action {
	case wolfpackv1alpha1.FenceNone:
		return NewNone(opts.Clock), nil
	case wolfpackv1alpha1.FenceCRI:
		if opts.WatchdogFallbackPath == "" {
			return newCRI(opts), nil
		}
		return newCRIWithFallback(opts)
	case wolfpackv1alpha1.FenceWatchdog:
		return openWatchdog(opts)
	default:
		return nil, fmt.Errorf("unknown fence action %q: want %s, %s or %s", action,
			wolfpackv1alpha1.FenceNone, wolfpackv1alpha1.FenceCRI, wolfpackv1alpha1.FenceWatchdog)
	}
}

// ActionFor returns the fence action of node under spec: its entry in spec.Nodes, else
// spec.Action, else the API's default.
func ActionFor(spec wolfpackv1alpha1.FencingSpec, node string) wolfpackv1alpha1.FenceAction {
	for _, n := range spec.Nodes {
		if n.Node == node && n.Action != "" {
			return n.Action
		}
	}
	return spec.ActionOrDefault()
}

// Report is what one Fence call did.
type Report struct {
	// Action is the fence action that ran.
	Action wolfpackv1alpha1.FenceAction
	// Started is when Fence began.
	Started time.Time
	// Duration is how long Fence took.
	Duration time.Duration
	// Pods are the group pods that Fence stopped (CRI), in namespace/name order.
	Pods []StoppedPod
	// ResetIn is how long, at most, until the watchdog resets the node (Watchdog); zero when the
	// device does not say.
	ResetIn time.Duration
}

// StoppedPod is a group pod whose sandbox Fence stopped.
type StoppedPod struct {
	// Namespace and Name are the pod's.
	Namespace, Name string
	// Group is its wolfpack.dev/group label.
	Group string
	// SandboxID is the runtime's id of the pod sandbox.
	SandboxID string
	// Containers are the names of the containers Fence stopped before the sandbox.
	Containers []string
}

// Containers returns how many containers the report's pods had stopped.
func (r Report) Containers() int {
	n := 0
	for _, p := range r.Pods {
		n += len(p.Containers)
	}
	return n
}

// String sums the report up in one line, for logs and Events.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(string(r.Action))
	switch r.Action {
	case wolfpackv1alpha1.FenceCRI:
		fmt.Fprintf(&b, ": stopped %d pods (%d containers)", len(r.Pods), r.Containers())
		if len(r.Pods) > 0 {
			names := make([]string, len(r.Pods))
			for i, p := range r.Pods {
				names[i] = p.Namespace + "/" + p.Name
			}
			fmt.Fprintf(&b, " [%s]", strings.Join(names, ", "))
		}
	case wolfpackv1alpha1.FenceWatchdog:
		if r.ResetIn > 0 {
			fmt.Fprintf(&b, ": stopped feeding the watchdog; the node resets within %s", r.ResetIn)
		} else {
			b.WriteString(": stopped feeding the watchdog; the device does not say when it resets the node")
		}
	default:
		b.WriteString(": stopped nothing")
	}
	fmt.Fprintf(&b, " in %s", r.Duration)
	return b.String()
}

// watchdogSeconds returns a watchdog timeout of d in the device's whole seconds, rounded down (but
// at least one second): the node must reset no later than d after the last feed.
func watchdogSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(int64(d/time.Second), 1)
}

// seconds returns d rounded up to whole seconds.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
