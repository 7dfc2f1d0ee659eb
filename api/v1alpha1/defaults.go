package v1alpha1

import (
	"cmp"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The defaults of the API, one constant per `+kubebuilder:default` marker. The API server fills
// them in when an object is created, so an object read from it has every defaulted field set; an
// object built in Go (a test, a fake client, a manifest not yet applied) may not. Code reads a
// defaulted field through its accessor, <Field>OrDefault, which returns the field when it is set
// and the constant otherwise. TestDefaultsMatchTheCRDs checks that every constant equals its
// marker in the generated CRDs.
const (
	// DefaultKeySecretKey is the key of the heartbeat key Secret that holds the key material.
	DefaultKeySecretKey = "key"
	// DefaultHeartbeatPort is MSCS's cluster service port, on which the agents exchange UDP
	// heartbeats.
	DefaultHeartbeatPort = 3343
	// DefaultHeartbeatInterval is the time between two heartbeats to one peer on one network.
	DefaultHeartbeatInterval = 500 * time.Millisecond
	// DefaultHeartbeatThreshold is how many intervals a peer may stay silent before it is
	// considered Down: with DefaultHeartbeatInterval, 2 s.
	DefaultHeartbeatThreshold = 4
	// DefaultFenceAction is the fence action of a node that has no entry of its own.
	DefaultFenceAction = FenceCRI
	// DefaultQuorumType is the two-node MSCS rule.
	DefaultQuorumType = DiskOnly
	// DefaultLeaseDuration is how long a quorum lease or a node lease stays valid without renewal.
	DefaultLeaseDuration = 10 * time.Second

	// DefaultFailbackPolicy keeps a group where it failed over to.
	DefaultFailbackPolicy = FailbackPrevent
	// DefaultDesiredState keeps a group running.
	DefaultDesiredState = DesiredOnline
	// DefaultPriority is MSCS's medium priority.
	DefaultPriority = 2000
	// DefaultFailoverPeriod is the period over which a group's failovers are counted.
	DefaultFailoverPeriod = 6 * time.Hour

	// DefaultServiceType is the type of a service resource's Service.
	DefaultServiceType = corev1.ServiceTypeClusterIP
	// DefaultRestartAction restarts a failed resource up to the threshold, then fails the group
	// over.
	DefaultRestartAction = RestartOrFailover
	// DefaultRestartThreshold is how many restarts on one node are made within the period.
	DefaultRestartThreshold = 3
	// DefaultRestartPeriod is the period over which restarts are counted.
	DefaultRestartPeriod = 15 * time.Minute
	// DefaultRestartDelay is the delay before a restart.
	DefaultRestartDelay = 500 * time.Millisecond
	// DefaultPendingTimeout is how long a resource may stay OnlinePending or OfflinePending.
	DefaultPendingTimeout = 3 * time.Minute
	// DefaultLooksAlivePollInterval is the interval of the quick health check.
	DefaultLooksAlivePollInterval = 5 * time.Second
	// DefaultIsAlivePollInterval is the interval of the thorough health check.
	DefaultIsAlivePollInterval = 60 * time.Second
	// DefaultHealthCheckTimeout is the timeout of one node-local health check.
	DefaultHealthCheckTimeout = 5 * time.Second
	// DefaultHTTPGetPath is the path of an httpGet health check.
	DefaultHTTPGetPath = "/"
	// DefaultHTTPGetScheme is the scheme of an httpGet health check.
	DefaultHTTPGetScheme = "HTTP"
)

// KeyOrDefault is the key of the Secret that holds the key material.
func (r SecretKeyReference) KeyOrDefault() string {
	return cmp.Or(r.Key, DefaultKeySecretKey)
}

// PortOrDefault is the UDP port the agents listen on.
func (h HeartbeatSpec) PortOrDefault() int32 {
	return ptr.Deref(h.Port, DefaultHeartbeatPort)
}

// IntervalOrDefault is the time between two heartbeats to one peer on one network.
func (h HeartbeatSpec) IntervalOrDefault() time.Duration {
	return durationOr(h.Interval, DefaultHeartbeatInterval)
}

// ThresholdOrDefault is how many intervals a peer may stay silent before it is considered Down.
func (h HeartbeatSpec) ThresholdOrDefault() int32 {
	return ptr.Deref(h.Threshold, DefaultHeartbeatThreshold)
}

// ActionOrDefault is the fence action of every node that has no entry in Nodes.
func (f FencingSpec) ActionOrDefault() FenceAction {
	return cmp.Or(f.Action, DefaultFenceAction)
}

// QuorumTypeOrDefault is the rule that decides which side of a partition stays active.
func (s QuorumDiskSpec) QuorumTypeOrDefault() QuorumType {
	return cmp.Or(s.QuorumType, DefaultQuorumType)
}

// LeaseDurationOrDefault is how long a quorum lease or a node lease stays valid without renewal.
func (s QuorumDiskSpec) LeaseDurationOrDefault() time.Duration {
	return durationOr(s.LeaseDuration, DefaultLeaseDuration)
}

// PolicyOrDefault says whether the group returns to its most preferred owner.
func (f FailbackSpec) PolicyOrDefault() FailbackPolicy {
	return cmp.Or(f.Policy, DefaultFailbackPolicy)
}

// StateOrDefault is the group's persistent desired state.
func (s ResourceGroupSpec) StateOrDefault() DesiredState {
	return cmp.Or(s.State, DefaultDesiredState)
}

// PriorityOrDefault orders groups after a failure: higher first.
func (s ResourceGroupSpec) PriorityOrDefault() int32 {
	return ptr.Deref(s.Priority, DefaultPriority)
}

// FailoverPeriodOrDefault is the period over which failovers are counted.
func (s ResourceGroupSpec) FailoverPeriodOrDefault() time.Duration {
	return durationOr(s.FailoverPeriod, DefaultFailoverPeriod)
}

// TypeOrDefault is the type of the Service.
func (s ServiceResource) TypeOrDefault() corev1.ServiceType {
	return cmp.Or(s.Type, DefaultServiceType)
}

// PrefixBits is the prefix length of the address on the interface: prefixLength, else the
// address's own length, 32 bits for IPv4 and 128 for IPv6 (a host address). It is 0 for an
// address that does not parse, which the CRD's validation rejects.
func (a IPAddressResource) PrefixBits() int32 {
	if a.PrefixLength != nil {
		return *a.PrefixLength
	}
	addr, err := netip.ParseAddr(a.Address)
	if err != nil {
		return 0
	}
	return int32(addr.BitLen()) //nolint:gosec // 32 or 128
}

// ActionOrDefault is what happens when the resource fails.
func (p RestartPolicy) ActionOrDefault() RestartAction {
	return cmp.Or(p.Action, DefaultRestartAction)
}

// ThresholdOrDefault is how many restarts on the same node are made within the period.
func (p RestartPolicy) ThresholdOrDefault() int32 {
	return ptr.Deref(p.Threshold, DefaultRestartThreshold)
}

// PeriodOrDefault is the period over which restarts are counted.
func (p RestartPolicy) PeriodOrDefault() time.Duration {
	return durationOr(p.Period, DefaultRestartPeriod)
}

// DelayOrDefault is the delay before a restart.
func (p RestartPolicy) DelayOrDefault() time.Duration {
	return durationOr(p.Delay, DefaultRestartDelay)
}

// PendingTimeoutOrDefault is how long the resource may stay OnlinePending or OfflinePending.
func (s ResourceSpec) PendingTimeoutOrDefault() time.Duration {
	return durationOr(s.PendingTimeout, DefaultPendingTimeout)
}

// LooksAlivePollIntervalOrDefault is the interval of the quick health check.
func (s ResourceSpec) LooksAlivePollIntervalOrDefault() time.Duration {
	return durationOr(s.LooksAlivePollInterval, DefaultLooksAlivePollInterval)
}

// IsAlivePollIntervalOrDefault is the interval of the thorough health check.
func (s ResourceSpec) IsAlivePollIntervalOrDefault() time.Duration {
	return durationOr(s.IsAlivePollInterval, DefaultIsAlivePollInterval)
}

// TimeoutOrDefault is the timeout of one check.
func (c HealthCheck) TimeoutOrDefault() time.Duration {
	return durationOr(c.Timeout, DefaultHealthCheckTimeout)
}

// PathOrDefault is the path of the request.
func (c HTTPGetCheck) PathOrDefault() string {
	return cmp.Or(c.Path, DefaultHTTPGetPath)
}

// SchemeOrDefault is HTTP or HTTPS.
func (c HTTPGetCheck) SchemeOrDefault() string {
	return cmp.Or(c.Scheme, DefaultHTTPGetScheme)
}

func durationOr(v *metav1.Duration, def time.Duration) time.Duration {
	return ptr.Deref(v, metav1.Duration{Duration: def}).Duration
}
