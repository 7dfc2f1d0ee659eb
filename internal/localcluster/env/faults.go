package env

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
)

// The faults the end-to-end tests inject besides Crash, Net.Cut and the cluster's own restarts.
// A paused process (SIGSTOP) keeps its sockets and its state and does nothing: its peers see a
// black hole (connections accepted by the kernel and never answered, heartbeats that stop), not
// a refusal; its timers do not run, and after the resume (SIGCONT) it carries on where it was,
// late by the pause.

// Manager names the manager's process, for Cluster.Pause, Resume and Kill.
const Manager = "manager"

// AgentProcess names node's agent process.
func AgentProcess(node string) string { return "agent-" + node }

// HolderProcess names node's quorum holder process.
func HolderProcess(node string) string { return "holder-" + node }

// PauseAPIServer stops kube-apiserver with SIGSTOP until ResumeAPIServer: every request hangs.
func (e *Env) PauseAPIServer() error { return e.Cluster.Pause(cluster.APIServer) }

// ResumeAPIServer continues a paused kube-apiserver.
func (e *Env) ResumeAPIServer() error { return e.Cluster.Resume(cluster.APIServer) }

// PauseAgent stops node's agent with SIGSTOP until ResumeAgent: a hung agent on a live node.
func (e *Env) PauseAgent(node string) error { return e.Cluster.Pause(AgentProcess(node)) }

// ResumeAgent continues node's paused agent.
func (e *Env) ResumeAgent(node string) error { return e.Cluster.Resume(AgentProcess(node)) }

// PauseManager stops the manager with SIGSTOP until ResumeManager.
func (e *Env) PauseManager() error { return e.Cluster.Pause(Manager) }

// ResumeManager continues the paused manager.
func (e *Env) ResumeManager() error { return e.Cluster.Resume(Manager) }

// RestartAgent stops node's agent and starts it again, as the kubelet does with an agent pod:
// with SIGTERM (SIGKILL after a grace period) as a DaemonSet rolling update or a drain stops it,
// or at once with SIGKILL when kill is set, as an OOM kill or a crash does. It returns once the
// new agent has renewed its Lease (StartAgent).
func (e *Env) RestartAgent(ctx context.Context, node string, kill bool) error {
	if e.isCrashed(node) {
		return fmt.Errorf("restarting the agent of %s: the node has crashed", node)
	}
	stop, how := e.Cluster.Terminate, "SIGTERM"
	if kill {
		stop, how = e.Cluster.Kill, "SIGKILL"
	}
	if err := stop(AgentProcess(node)); err != nil {
		return fmt.Errorf("stopping the agent of %s with %s: %w", node, how, err)
	}
	e.logf("stopped the agent of %s with %s; starting it again", node, how)
	return e.StartAgent(ctx, node)
}

// SetFencing sets the QuorumDisk's fence action (spec.fencing.action) and restarts the agents of
// the live member nodes one after the other (SIGTERM, as a rolling update), since an agent makes
// its fence action once, when it starts: as an administrator changes it. Watchdog has the agents
// open their node's simulated watchdog device.
func (e *Env) SetFencing(ctx context.Context, action wolfpackv1alpha1.FenceAction) error {
	qd := &wolfpackv1alpha1.QuorumDisk{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: ClusterName}, qd); err != nil {
		return err
	}
	patch := client.MergeFrom(qd.DeepCopy())
	qd.Spec.Fencing.Action = action
	if err := e.Client.Patch(ctx, qd, patch); err != nil {
		return fmt.Errorf("setting spec.fencing.action of QuorumDisk %s to %s: %w", ClusterName, action, err)
	}
	e.mu.Lock()
	e.o.Fencing = action
	e.mu.Unlock()
	var errs []error
	for _, n := range Member {
		if !e.isCrashed(n) {
			errs = append(errs, e.RestartAgent(ctx, n, false))
		}
	}
	return errors.Join(errs...)
}

// Fencing is the fence action the environment set last (Options.Fencing, SetFencing); empty is
// the sample's, CRI.
func (e *Env) Fencing() wolfpackv1alpha1.FenceAction {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.o.Fencing
}
