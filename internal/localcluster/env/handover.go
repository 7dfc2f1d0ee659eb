package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wolfpackv1alpha1 "github.com/wolfpack-ha/wolfpack/api/v1alpha1"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/netsim"
)

// kubeletProcess names the stand-in kubelet once it runs as a process of its own.
const kubeletProcess = "kubelet"

// Handover leaves the environment running without this process: it stops this process's
// stand-in kubelet and starts it again as a process of its own, recorded with the cluster's
// processes, which Down stops. The command line args must run RunKubelet with this environment's
// directory, as `demo kubelet --dir DIR` does. The nodes' container runtimes start empty in the
// new process, and it gives every group pod a sandbox again.
func (e *Env) Handover(ctx context.Context, args ...string) error {
	if e.Fencing() == wolfpackv1alpha1.FenceWatchdog {
		return errors.New("cannot hand the environment over: its fence action is Watchdog, and the simulated watchdog devices run in this process")
	}
	e.Detach()
	return e.Cluster.Run(ctx, cluster.Extra{Name: kubeletProcess, Args: args,
		Ready: func(ctx context.Context) error {
			for _, n := range Member {
				path := strings.TrimPrefix(e.runtimes[n].endpoint, "unix://")
				conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
				if err != nil {
					return fmt.Errorf("the container runtime of %s: %w", n, err)
				}
				_ = conn.Close()
			}
			return nil
		}})
}

// RunKubelet runs the stand-in kubelet of the environment in dir, started by Handover, until ctx
// ends.
func RunKubelet(ctx context.Context, dir string, log io.Writer) error {
	e, err := attach(ctx, dir, log)
	if err != nil {
		return err
	}
	if err := e.startRuntimes(); err != nil {
		e.stopRuntimes()
		return err
	}
	if err := e.runKubelet(ctx); err != nil {
		e.Detach()
		return err
	}
	e.logf("running the quorum holders and the container runtimes of %v (crashed: %v)", Member, e.Crashed())
	<-ctx.Done()
	e.Detach()
	return nil
}

// attach finds the environment in dir, once the cluster's state file records this process as
// its stand-in kubelet (Handover records it just after starting it, and this process must not
// write the state file before, or the record would be lost).
func attach(ctx context.Context, dir string, log io.Writer) (*Env, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	e := &Env{o: Options{Dir: dir, WolfpackBin: st.WolfpackBin, Log: log}, crashed: map[string]bool{}, netID: st.NetID,
		quorumDevice: st.QuorumDevice, loopDevice: st.LoopDevice}
	for _, n := range st.Crashed {
		e.crashed[n] = true
	}
	nodes := []string{NodeA, NodeB, NodeC}
	if st.Network == NetworkNamespaces {
		e.Net, err = netsim.Attach(st.NetID, nodes)
	} else {
		e.Net, err = netsim.NewLoopback(netsim.Options{ID: st.NetID, Nodes: nodes})
	}
	if err != nil {
		return nil, err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		e.Cluster, last = cluster.Attach(dir)
		if last == nil && e.Cluster.PIDs()[kubeletProcess] != os.Getpid() {
			last = errors.New("the cluster's state file does not record this process as its kubelet")
		}
		return last == nil, nil
	})
	if err != nil {
		if ctx.Err() == nil && last != nil {
			err = last
		}
		return nil, err
	}
	e.Client, err = client.New(e.Cluster.RESTConfig(), client.Options{Scheme: Scheme()})
	return e, err
}
