package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// Extra is a process run next to the cluster's own, such as a Wolfpack manager or node agent.
type Extra struct {
	// Name names the process and its log file, <Name>.log in the cluster's directory.
	Name string
	// Args is the command line; Args[0] is the binary.
	Args []string
	// Env is added to the environment.
	Env []string
	// Exe is the program Args[0] execs, when it is a wrapper such as nsenter.
	Exe string
	// Ready, when set, is polled until it returns nil; Run fails with the tail of the log if the
	// process exits or readyTimeout passes first.
	Ready func(context.Context) error
}

// Run starts an extra process and records it in the state file, so that Stop (and a Stop from
// Attach) stops it too, before the cluster's own processes. A process of the same name that
// has stopped is started again with the new command line.
func (c *Cluster) Run(ctx context.Context, e Extra) error {
	c.mu.Lock()
	p, err := c.process(e.Name)
	if err != nil {
		p = &Process{Name: e.Name}
		c.state.Processes = append(c.state.Processes, p)
	} else if p.running() {
		c.mu.Unlock()
		return fmt.Errorf("%s is already running (pid %d)", e.Name, p.PID)
	}
	p.Args, p.Env, p.Exe, p.Log = e.Args, e.Env, e.Exe, filepath.Join(c.state.Dir, e.Name+".log")
	begin := time.Now()
	if err := p.start(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.logf("started %s (pid %d), log %s", p.Name, p.PID, p.Log)
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if e.Ready == nil {
		return nil
	}
	if err := p.waitReady(ctx, readyTimeout, e.Ready); err != nil {
		return err
	}
	c.logf("%s is ready after %s", p.Name, since(begin))
	return nil
}

// Kill stops a process at once with SIGKILL, as a crash would.
func (c *Cluster) Kill(name string) error { return c.stopExtra(name, 0) }

// Terminate stops a process with SIGTERM, and SIGKILL after the grace period.
func (c *Cluster) Terminate(name string) error { return c.stopExtra(name, stopGrace) }

func (c *Cluster) stopExtra(name string, grace time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.process(name)
	if err != nil {
		return err
	}
	if err := p.stop(grace); err != nil {
		return err
	}
	c.logf("stopped %s", name)
	return c.saveLocked()
}

// Pause stops the named process, any of the cluster's own or an extra one, with SIGSTOP to its
// process group: it keeps its sockets and its state but does nothing, as a process that hangs
// (or a machine that stalls) would. A client of a paused kube-apiserver sees its connections
// accepted by the kernel and never answered: a black hole, not a refusal. Resume undoes it; Stop,
// Terminate and Kill work on a paused process too.
func (c *Cluster) Pause(name string) error { return c.signal(name, syscall.SIGSTOP, "paused") }

// Resume continues a process that Pause stopped, with SIGCONT.
func (c *Cluster) Resume(name string) error { return c.signal(name, syscall.SIGCONT, "resumed") }

func (c *Cluster) signal(name string, sig syscall.Signal, what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.process(name)
	if err != nil {
		return err
	}
	if err := p.signal(sig); err != nil {
		return err
	}
	c.logf("%s %s (pid %d)", what, name, p.PID)
	return nil
}

// Running tells whether the named process runs.
func (c *Cluster) Running(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.process(name)
	return err == nil && p.running()
}

// LogPath is the log file of the named process.
func (c *Cluster) LogPath(name string) string {
	return filepath.Join(c.state.Dir, name+".log")
}
