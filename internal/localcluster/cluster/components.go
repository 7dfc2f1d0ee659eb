package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The component names, which are also the names of their binaries and log files.
const (
	etcd              = "etcd"
	kubeAPIServer     = "kube-apiserver"
	controllerManager = "kube-controller-manager"
	scheduler         = "kube-scheduler"
	kwok              = "kwok"
)

// APIServer names the kube-apiserver process, for Pause, Resume and Kill.
const APIServer = kubeAPIServer

const (
	serviceCIDR = "10.96.0.0/16"
	// nodeLeaseSeconds is the node Lease duration kwok writes; kwok renews it every quarter of
	// that, as the kubelet does with its default 40 s.
	nodeLeaseSeconds = 40
	kwokConfigFile   = "kwok.yaml"
)

// serviceIP is the first address of serviceCIDR, the ClusterIP of the "kubernetes" Service.
var serviceIP = net.IPv4(10, 96, 0, 1)

// Ports are the TCP ports on 127.0.0.1 that the cluster listens on.
type Ports struct {
	Etcd              int            `json:"etcd"`
	EtcdPeer          int            `json:"etcdPeer"`
	APIServer         int            `json:"apiServer"`
	ControllerManager int            `json:"controllerManager"`
	Scheduler         int            `json:"scheduler"`
	Kwok              map[string]int `json:"kwok"` // by node name
}

// FreeTCPPorts picks n distinct TCP ports on 127.0.0.1 that are free at the moment: each
// listener is held until all are picked.
func FreeTCPPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// freePorts picks the cluster's ports, all distinct.
func freePorts(nodes []Node) (Ports, error) {
	ports, err := FreeTCPPorts(5 + len(nodes))
	if err != nil {
		return Ports{}, err
	}
	p := Ports{Etcd: ports[0], EtcdPeer: ports[1], APIServer: ports[2], ControllerManager: ports[3],
		Scheduler: ports[4], Kwok: map[string]int{}}
	for i, node := range nodes {
		p.Kwok[node.Name] = ports[5+i]
	}
	return p, nil
}

// processes returns the command lines of every component, in start order.
func processes(dir, binDir string, ports Ports, nodes []Node, extraAPIAddresses []netip.Addr) []*Process {
	in := func(name string) string { return filepath.Join(dir, name) }
	bin := func(name string) string { return filepath.Join(binDir, name) }
	proc := func(name string, args []string) *Process {
		return &Process{Name: name, Args: append([]string{bin(name)}, args...), Log: in(name + ".log")}
	}
	procs := make([]*Process, 0, 4+len(nodes))
	procs = append(procs,
		proc(etcd, etcdArgs(in, ports)),
		proc(kubeAPIServer, apiServerArgs(in, ports, extraAPIAddresses)),
		// As the admin, with one client for all controllers rather than a service account each
		// (--use-service-account-credentials): kube-controller-manager fetches those from the
		// API server while its controllers start, and exits if the API server restarts then.
		proc(controllerManager, append(componentArgs(in, adminKubeconfig, ports.ControllerManager),
			"--service-account-private-key-file="+in(serviceAccountKey),
			"--root-ca-file="+in(caCertFile),
		)),
		proc(scheduler, componentArgs(in, schedKubeconfig, ports.Scheduler)),
	)
	for i, node := range nodes {
		procs = append(procs, kwokProcess(in, bin, ports.Kwok[node.Name], i, node))
	}
	return procs
}

func etcdArgs(in func(string) string, ports Ports) []string {
	peer := "http://127.0.0.1:" + strconv.Itoa(ports.EtcdPeer)
	client := "http://127.0.0.1:" + strconv.Itoa(ports.Etcd)
	return []string{
		"--name=default",
		"--data-dir=" + in("etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		// A throwaway cluster: losing the last writes on a machine crash does not matter.
		"--unsafe-no-fsync=true",
	}
}

func apiServerArgs(in func(string) string, ports Ports, extraAddresses []netip.Addr) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(ports.Etcd),
		"--bind-address=" + apiBindAddress(extraAddresses),
		"--advertise-address=127.0.0.1",
		// The endpoints of the "kubernetes" Service may not be loopback addresses; nothing
		// here runs in a pod network that would use them.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(ports.APIServer),
		"--tls-cert-file=" + in(servingCertFile),
		"--tls-private-key-file=" + in(servingKeyFile),
		"--client-ca-file=" + in(caCertFile),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + in(serviceAccountPub),
		"--service-account-signing-key-file=" + in(serviceAccountKey),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		// Without it, SIGTERM waits 60 s for the open watches to end before it gives up.
		"--shutdown-watch-termination-grace-period=2s",
		"--cert-dir=" + in("pki"),
	}
}

// componentArgs are the flags kube-controller-manager and kube-scheduler share. Their timings
// are the upstream defaults (node-monitor-grace-period 50 s, node-monitor-period 5 s, ...).
func componentArgs(in func(string) string, kubeconfig string, port int) []string {
	return []string{
		// No --authentication-kubeconfig: it wants a front-proxy CA the API server does not
		// have, and /healthz, the only endpoint used, is always allowed.
		"--kubeconfig=" + in(kubeconfig),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + in(servingCertFile),
		"--tls-private-key-file=" + in(servingKeyFile),
		// One instance of each: with leader election, both exit when a restart of the API
		// server outlasts their lease's renew deadline (10 s).
		"--leader-elect=false",
	}
}

// kwokProcess plays the kubelet of one node only: it manages the Node that carries that node's
// own hostname label, renews its Lease, and runs the kwok Stages for the pods bound to it.
func kwokProcess(in, bin func(string) string, port, index int, node Node) *Process {
	return &Process{
		Name: kwokName(node.Name),
		Args: []string{
			bin(kwok),
			"--kubeconfig=" + in(adminKubeconfig),
			"--config=" + in(kwokConfigFile),
			"--manage-all-nodes=false",
			"--manage-nodes-with-label-selector=" + hostnameLabel + "=" + node.Name,
			"--node-lease-duration-seconds=" + strconv.Itoa(nodeLeaseSeconds),
			"--server-address=127.0.0.1:" + strconv.Itoa(port),
			"--node-ip=" + node.IP,
			// Pod IPs: each kwok allocates from its own range, so no two pods share one.
			"--cidr=" + fmt.Sprintf("10.244.%d.0/24", index),
		},
		Log: in(kwokName(node.Name) + ".log"),
	}
}

func kwokName(node string) string { return kwok + "-" + node }

// healthCheck returns the readiness check of the named component.
func (c *Cluster) healthCheck(name string) func(context.Context) error {
	switch name {
	case etcd:
		return getOK(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", c.state.Ports.Etcd))
	case kubeAPIServer:
		return c.apiServerReady
	case controllerManager:
		return all(getOK(c.servingClient(), fmt.Sprintf("https://127.0.0.1:%d/healthz", c.state.Ports.ControllerManager)),
			c.defaultServiceAccount)
	case scheduler:
		return getOK(c.servingClient(), fmt.Sprintf("https://127.0.0.1:%d/healthz", c.state.Ports.Scheduler))
	}
	for node, port := range c.state.Ports.Kwok {
		if name == kwokName(node) {
			return getOK(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		}
	}
	return func(context.Context) error { return fmt.Errorf("no health check for %q", name) }
}

// apiServerReady asks kube-apiserver's /readyz as the admin.
func (c *Cluster) apiServerReady(ctx context.Context) error {
	body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w: %s", err, body)
	}
	return nil
}

// defaultServiceAccount checks that the ServiceAccount controller has created the "default"
// ServiceAccount of the "default" namespace, without which no pod can be created there: the
// sign that kube-controller-manager runs its controllers, which it starts after /healthz is up.
func (c *Cluster) defaultServiceAccount(ctx context.Context) error {
	_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
	return err
}

// all returns a check that passes when every check passes.
func all(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, check := range checks {
			if err := check(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// servingClient trusts the cluster CA, which signed the serving certificate of
// kube-controller-manager and kube-scheduler.
func (c *Cluster) servingClient() *http.Client {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(filepath.Join(c.state.Dir, caCertFile)); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}}
}

// GetOK GETs url, within 10 s, and wants 200 OK: a readiness check of a process that serves
// plain HTTP on the host, such as Extra.Ready.
func GetOK(ctx context.Context, url string) error {
	return getOK(http.DefaultClient, url)(ctx)
}

// getOK returns a check that GETs url with client, within 10 s, and wants 200 OK.
func getOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		return nil
	}
}
