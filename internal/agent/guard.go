package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
)

// FenceFailedReason is the reason of the Event of a fence action that failed.
const FenceFailedReason = "FenceFailed"

// handoverBudget bounds the last Lease writes of an agent that stops.
const handoverBudget = time.Second

// LocalRecord is the agent's record on the node-local channel (package nodelocal), which the
// quorum holder on the same node reads: the holder renews the quorum disk only while the record
// is fresh (written within two of its intervals, by the node's CLOCK_MONOTONIC) and the node is
// not failing, so that a hung, dead or failing agent lets the disk go.
type LocalRecord interface {
	Write(fenced, hasQuorum bool) error
}

// escalator is a fence action with a fallback for when it fails (a watchdog that resets the
// node).
type escalator interface{ Escalate() error }

// timeoutReporter is a fence action with a watchdog, which resets the node a time after the
// last Heartbeat: the timeout the device granted, 0 when it does not say.
type timeoutReporter interface{ Timeout() time.Duration }

// handoverer is a fence action that can outlive the agent for a while: a watchdog kept armed, with
// a longer timeout, so that the next agent takes it over. It returns the timeout granted.
type handoverer interface {
	Handover(d time.Duration) (time.Duration, error)
}

// guard applies MustFail on the agent's monotonic clock (m.Clock), in a goroutine of its own that
// no API call can hold up: at the renew deadline (lastRenewed + R(d), or the agent's start + R(d)
// before its first renewal), at every renewal, at every change of what the node hears (kick), and
// at least once per renew interval. While the node must not fail, it feeds the fence action (a
// watchdog); while it must, it fences, again every renew interval while fenced (the kubelet
// restarts Always pods after its back-off), and at every tick while the fence fails.
func (m *NodeManager) guard(ctx context.Context) {
	for {
		next := m.check(ctx)
		t := m.Clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-m.kick:
			t.Stop()
		}
	}
}

// check decides once and acts, and returns how long until it must decide again.
func (m *NodeManager) check(ctx context.Context) time.Duration {
	now := m.Clock.Now()
	m.mu.Lock()
	d, every := m.s.acting(), m.s.renewInterval()
	since := m.s.lastRenewed
	if since.IsZero() {
		since = m.s.started
	}
	e := Evidence{Node: m.Node, Unrenewed: now.Sub(since), LeaseDuration: d, Joined: m.s.joined(now), Cluster: m.s.cluster}
	if m.s.hearing != nil {
		e.Reachable, e.HeardBy = m.s.hearing.Reachable(), m.s.hearing.HeardBy()
	}
	if qd := m.s.cluster; qd != nil {
		e.Arbitration = ArbitrationWait(qd.Spec.LeaseDurationOrDefault())
		owner := qd.Status.Owner
		switch {
		case owner == "" || owner == m.Node || slices.Contains(Mutual(e.Reachable, e.HeardBy), owner):
			m.s.ownerLost = time.Time{}
		case m.s.ownerLost.IsZero():
			m.s.ownerLost = now
		}
		if !m.s.ownerLost.IsZero() {
			e.OwnerUnheard = now.Sub(m.s.ownerLost)
		}
	}
	fenced, failing, lastFence, fed := m.s.fenced, m.s.failing, m.s.lastFence, m.s.fed
	m.mu.Unlock()
	e.HoldsDisk = m.HoldsDisk != nil && m.HoldsDisk() // a file read: outside the lock

	next := every
	if deadline := since.Add(RenewDeadline(d)); deadline.After(now) {
		// Just past the deadline: MustFail takes "past" strictly.
		next = min(next, deadline.Sub(now)+time.Millisecond)
	}
	must, why := MustFail(e)
	// The holder is told before the fence runs: a node that must fail stops defending the disk.
	m.writeLocal(ctx, every, must)
	if !must {
		if fenced || failing {
			m.unfence(ctx, fenced)
		}
		err := m.fencer.Heartbeat()
		m.mu.Lock()
		m.s.fed = err == nil
		m.mu.Unlock()
		if err != nil && fed {
			ctrl.LoggerFrom(ctx).Error(err, "feeding the fence action")
		}
		return next
	}
	if fenced && now.Sub(lastFence) < every {
		m.feedFenced()
		return every - now.Sub(lastFence)
	}
	if m.fence(ctx, why, d, fenced, failing) {
		m.feedFenced()
	}
	return every
}

// writeLocal writes the node-local record, at every decision: failing is true from the moment the
// node must fail, before its fence has succeeded. A failed write is logged: the holder then
// sees the record go stale and lets the disk go, the safe way.
func (m *NodeManager) writeLocal(ctx context.Context, every time.Duration, failing bool) {
	if m.NewLocal == nil {
		return
	}
	if m.local == nil || m.localInterval != every {
		w, err := m.NewLocal(m.incarnation, every)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "opening the node-local channel")
			return
		}
		m.local, m.localInterval = w, every
	}
	if err := m.local.Write(failing, !failing); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "writing the node-local record")
	}
}

// feedFenced feeds the fence action of a node whose fence succeeded: a CRI action's watchdog
// fallback keeps the node up while its agent runs and its workloads are stopped (a Watchdog that
// fenced refuses with ErrFenced: its node resets).
func (m *NodeManager) feedFenced() {
	_ = m.fencer.Heartbeat()
}

// fence runs the fence path once, bounded by the fence budget B(d): it removes every floating
// address the node holds and runs the fence action. Only when both succeed is the node fenced
// (and reported so in its next view); a failure is escalated to the action's fallback, if it has
// one, and retried at the next tick. It reports whether the node is fenced.
func (m *NodeManager) fence(ctx context.Context, why string, d time.Duration, wasFenced, wasFailing bool) bool {
	log := ctrl.LoggerFrom(ctx)
	began := m.Clock.Now()
	fctx, cancel := context.WithTimeout(ctx, FenceBudget(d))
	defer cancel()
	var errs []error
	if m.FloatingAddresses != nil {
		if err := m.FloatingAddresses.Fence(fctx); err != nil {
			errs = append(errs, err)
		}
	}
	report, err := m.fencer.Fence(fctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("fence action %s: %w", report.Action, err))
	}
	err = errors.Join(errs...)
	m.mu.Lock()
	m.s.fenced, m.s.failing = err == nil, err != nil
	if err == nil {
		m.s.lastFence = began
	}
	m.mu.Unlock()
	wake(m.nudge) // report it
	if err == nil {
		if !wasFenced {
			log.Info("failed the node", "why", why, "report", report.String())
			m.Recorder.Eventf(clusterRef(m.Cluster), nil, corev1.EventTypeWarning, wolfpackv1alpha1.SelfFencedReason, "Fence",
				"node %s failed itself: %s; %s", m.Node, why, report.String())
		}
		return true
	}
	escalated := "no fallback to escalate to"
	if e, ok := m.fencer.(escalator); ok {
		if eerr := e.Escalate(); eerr != nil {
			escalated = "escalating failed too: " + eerr.Error()
		} else {
			escalated = "escalated to the fallback"
		}
	}
	if !wasFailing {
		log.Error(err, "failing the node: the fence failed; retrying", "why", why, "escalation", escalated)
		m.Recorder.Eventf(clusterRef(m.Cluster), nil, corev1.EventTypeWarning, FenceFailedReason, "Fence",
			"node %s must fail itself (%s) but its fence failed, retrying (%s): %v", m.Node, why, escalated, err)
	}
	return false
}

// unfence takes the node back once it no longer must fail.
func (m *NodeManager) unfence(ctx context.Context, wasFenced bool) {
	m.mu.Lock()
	m.s.fenced, m.s.failing = false, false
	m.mu.Unlock()
	if m.FloatingAddresses != nil {
		m.FloatingAddresses.Unfence()
	}
	wake(m.nudge)
	if wasFenced {
		ctrl.LoggerFrom(ctx).Info("the node has its Lease and quorum again")
		m.Recorder.Eventf(clusterRef(m.Cluster), nil, corev1.EventTypeNormal, wolfpackv1alpha1.RejoinedReason, "Fence",
			"node %s has its Lease and quorum again", m.Node)
	}
}

// stop runs when the agent stops (SIGTERM, a rolling update): it writes the node's Lease once
// more, within handoverBudget, so that the manager sees it fresh and the next agent has a whole
// lease to take over in. An agent that has not fenced its node and whose fence action can be
// handed over (a watchdog) first publishes a duration that covers the handover timeout, then asks
// for the handover, and publishes again if the device granted longer. Nothing is handed over
// unless the manager was told first: a watchdog left armed longer than the published deadline
// would let the manager count the node as fenced before it resets.
func (m *NodeManager) stop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	m.mu.Lock()
	last, d := m.s.view, m.s.acting()
	reported, fenced := m.s.fenced, m.s.fenced || m.s.failing
	m.mu.Unlock()
	if last == nil {
		return // it never made a view: no heartbeats, no Lease
	}
	view := *last
	view.Fenced = reported
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverBudget)
	defer cancel()
	// Only a fence action with a watchdog (one that reports its timeout) has anything to hand
	// over: for the others the last Lease keeps the duration the agent acts on.
	h, ok := m.fencer.(handoverer)
	_, watchdog := m.fencer.(timeoutReporter)
	handover := ok && watchdog && !fenced && m.HandoverTimeout > 0
	if handover {
		d = max(d, LeaseCovering(m.HandoverTimeout))
	}
	if err := m.renew(ctx, view, d); err != nil {
		log.Error(err, "writing the node Lease at the stop; no handover")
		return
	}
	if !handover {
		return
	}
	granted, err := h.Handover(m.HandoverTimeout)
	if err != nil {
		log.Error(err, "handing the fence action over")
		return
	}
	if cover := LeaseCovering(granted); cover > d {
		if err := m.renew(ctx, view, cover); err != nil {
			log.Error(err, "the watchdog was granted a longer handover than the Lease publishes", "granted", granted, "published", d)
			return
		}
		d = cover
	}
	log.Info("handed the fence action over to the next agent", "timeout", granted, "published", d)
}
