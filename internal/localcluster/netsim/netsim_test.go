package netsim_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/cluster"
	"github.com/wolfpack-ha/wolfpack/internal/localcluster/netsim"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

const (
	// echoPort is where the udp-echo helper listens in a node's namespace.
	echoPort = 7000
	// arrival bounds the wait for a datagram's echo where it must come back.
	arrival = 5 * time.Second
	// silence is how long a test listens for an echo that must not come.
	silence = 1500 * time.Millisecond
)

// TestNet makes three nodes and checks what the end-to-end tests rely on: datagrams between
// nodes on the private and the public network; a process in a node's namespace reaching a TCP
// listener on HostIP, but no other node, through the management network; Cut and Restore of one
// node's private link, for everyone; Addresses; and Close leaving nothing behind.
func TestNet(t *testing.T) {
	skipUnlessAvailable(t)
	id := newID()
	n := newNet(t, id, "a", "b", "c")

	t.Run("layout", func(t *testing.T) {
		checkLayout(t, n, "a", "b", "c")
	})

	stopEcho := startEcho(t, n, "b", echoAddrs(n, "b")...)
	fromA, fromC := udpConnIn(t, n, "a"), udpConnIn(t, n, "c")

	t.Run("datagrams cross the private and the public network", func(t *testing.T) {
		for _, network := range []string{netsim.Private, netsim.Public} {
			waitEcho(t, fromA, n.IP("b", network), "a to b on "+network)
			waitEcho(t, fromC, n.IP("b", network), "c to b on "+network)
		}
	})
	t.Run("the management network reaches the host, not the other nodes", func(t *testing.T) {
		reachHost(t, n, "a")
		noEcho(t, fromA, n.IP("b", netsim.Mgmt), "a to b on mgmt")
	})
	t.Run("Cut takes the node off the network for everyone", func(t *testing.T) {
		if err := n.Cut("a", netsim.Private); err != nil {
			t.Fatal(err)
		}
		noEcho(t, fromA, n.IP("b", netsim.Private), "a to b on private after Cut(a, private)")
		waitEcho(t, fromA, n.IP("b", netsim.Public), "a to b on public after Cut(a, private)")
		waitEcho(t, fromC, n.IP("b", netsim.Private), "c to b on private after Cut(a, private)")
		checkNoCarrier(t, n, "a", netsim.Private)
	})
	t.Run("Restore puts it back", func(t *testing.T) {
		if err := n.Restore("a", netsim.Private); err != nil {
			t.Fatal(err)
		}
		waitEcho(t, fromA, n.IP("b", netsim.Private), "a to b on private after Restore(a, private)")
	})
	t.Run("Addresses shows an address added in the namespace", func(t *testing.T) {
		floating := netip.PrefixFrom(netip.AddrFrom4(withLast(n.CIDR(netsim.Public).Addr(), netsim.FirstFree)), 24)
		if out, err := n.Command(t.Context(), "a", "ip", "addr", "add", floating.String(), "dev", n.Interface(netsim.Public)).CombinedOutput(); err != nil {
			t.Fatalf("adding %s in a: %v: %s", floating, err, out)
		}
		poll.Wait(t, "a's addresses listing "+floating.String(), arrival, func() error {
			if got := n.Addresses("a"); !slices.Contains(got, floating) {
				return fmt.Errorf("got %v", got)
			}
			return nil
		})
	})
	t.Run("Reset removes the added address and keeps the node's own", func(t *testing.T) {
		floating := netip.PrefixFrom(netip.AddrFrom4(withLast(n.CIDR(netsim.Public).Addr(), netsim.FirstFree)), 24)
		if err := n.Reset("a"); err != nil {
			t.Fatal(err)
		}
		got := n.Addresses("a")
		if slices.Contains(got, floating) {
			t.Errorf("a still has %s after Reset: %v", floating, got)
		}
		for _, network := range []string{netsim.Mgmt, netsim.Public, netsim.Private} {
			if own := netip.PrefixFrom(n.IP("a", network), 24); !slices.Contains(got, own) {
				t.Errorf("a lost its %s address %s in Reset: %v", network, own, got)
			}
		}
		waitEcho(t, fromA, n.IP("b", netsim.Public), "a to b on public after Reset(a)")
	})
	t.Run("Attach finds the same Net", func(t *testing.T) {
		a, err := netsim.Attach(id, []string{"a", "b", "c"})
		if err != nil {
			t.Fatal(err)
		}
		if a.HostIP() != n.HostIP() || a.IP("c", netsim.Private) != n.IP("c", netsim.Private) || a.NamespacePath("b") != n.NamespacePath("b") {
			t.Errorf("attached: host %s, c's private %s, b's namespace %s; want %s, %s, %s", a.HostIP(), a.IP("c", netsim.Private),
				a.NamespacePath("b"), n.HostIP(), n.IP("c", netsim.Private), n.NamespacePath("b"))
		}
		if _, err := netsim.Attach(newID(), []string{"a"}); err == nil {
			t.Error("Attach to an ID without a Net: no error")
		}
	})
	t.Run("Close leaves nothing behind and may be called again", func(t *testing.T) {
		stopEcho()
		for range 2 {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
		checkGone(t, id)
	})
}

// TestLeftovers checks that New removes the leftovers of a crashed run with its ID, that two
// Nets get distinct management ranges, that Close removes the links of a namespace in which a
// process still runs, and that Command's pid is the program's, in the node's namespace.
func TestLeftovers(t *testing.T) {
	skipUnlessAvailable(t)
	id := newID()
	if _, err := netsim.New(netsim.Options{ID: id, Nodes: []string{"a"}, Log: logWriter{t}}); err != nil {
		t.Fatal(err)
	}
	// The first Net is dropped as by a crash; a second one with its ID replaces it.
	n := newNet(t, id, "a", "b")
	other := newNet(t, newID(), "a")
	if n.CIDR(netsim.Mgmt).Overlaps(other.CIDR(netsim.Mgmt)) {
		t.Errorf("two Nets share the management range %s", n.CIDR(netsim.Mgmt))
	}

	sleep := n.Command(t.Context(), "a", "sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleep.Process.Kill()
		_ = sleep.Wait()
	})
	checkInNamespace(t, n, "a", sleep.Process.Pid, "sleep")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, id)
	if err := netsim.Remove(id); err != nil {
		t.Errorf("Remove after Close: %v", err)
	}
}

// TestAPIServerFromNamespace starts a cluster whose API server also serves on HostIP, and lists
// the Nodes from a process in a node's namespace with KubeconfigFor(HostIP); with the admin
// kubeconfig, whose server is 127.0.0.1, the same process reaches nothing.
func TestAPIServerFromNamespace(t *testing.T) {
	skipUnlessAvailable(t)
	binDir := os.Getenv("WOLFPACK_E2E_BINDIR")
	if binDir == "" {
		t.Skip("WOLFPACK_E2E_BINDIR is not set: run make test-e2e, or set it to the output of " +
			"hack/k8s-binaries.sh etcd kube-apiserver kube-controller-manager kube-scheduler kwok")
	}
	n := newNet(t, newID(), "a")
	c, err := cluster.Start(t.Context(), cluster.Options{
		Dir:               t.TempDir(),
		BinDir:            binDir,
		Nodes:             []cluster.Node{{Name: "wolfpack-a", IP: n.IP("a", netsim.Public).String()}},
		Log:               logWriter{t},
		ExtraAPIAddresses: []netip.Addr{n.HostIP()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	kubeconfig, err := c.KubeconfigFor(n.HostIP())
	if err != nil {
		t.Fatal(err)
	}
	out, err := runHelperIn(t.Context(), t, n, "a", []string{"KUBECONFIG=" + kubeconfig}, "list-nodes")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(out), "wolfpack-a") {
		t.Errorf("the Nodes listed from a's namespace are %q, want wolfpack-a", out)
	}
	if out, err := runHelperIn(t.Context(), t, n, "a", []string{"KUBECONFIG=" + c.Kubeconfig()}, "list-nodes"); err == nil {
		t.Errorf("a's namespace reaches the API server at 127.0.0.1: %q", out)
	}
	if _, err := c.KubeconfigFor(n.IP("a", netsim.Mgmt)); err == nil {
		t.Error("KubeconfigFor an address the API server does not serve on succeeded")
	}
}

func skipUnlessAvailable(t *testing.T) {
	t.Helper()
	if err := netsim.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// newID is a random ID of 4 hex digits.
func newID() string { return fmt.Sprintf("%04x", rand.IntN(1<<16)) }

// newNet makes a Net and closes it when the test ends.
func newNet(t *testing.T, id string, nodes ...string) *netsim.Net {
	t.Helper()
	begin := time.Now()
	n, err := netsim.New(netsim.Options{ID: id, Nodes: nodes, Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("New with %d nodes took %s", len(nodes), time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// checkLayout checks each node's addresses on each network and the interface names.
func checkLayout(t *testing.T, n *netsim.Net, nodes ...string) {
	t.Helper()
	if !n.CIDR(netsim.Mgmt).Contains(n.HostIP()) {
		t.Errorf("HostIP %s is not in the management range %s", n.HostIP(), n.CIDR(netsim.Mgmt))
	}
	for _, node := range nodes {
		addrs, err := n.ListAddresses(node)
		if err != nil {
			t.Fatal(err)
		}
		for _, network := range []string{netsim.Private, netsim.Public, netsim.Mgmt} {
			ip := n.IP(node, network)
			if !n.CIDR(network).Contains(ip) || !slices.Contains(addrs, netip.PrefixFrom(ip, 24)) {
				t.Errorf("node %s on %s: address %s, range %s; the namespace has %v", node, network, ip, n.CIDR(network), addrs)
			}
		}
	}
	for network, want := range map[string]string{netsim.Private: "priv0", netsim.Public: "pub0", netsim.Mgmt: "mgmt0"} {
		if got := n.Interface(network); got != want {
			t.Errorf("Interface(%s) = %q, want %q", network, got, want)
		}
	}
}

func echoAddrs(n *netsim.Net, node string) []string {
	addrs := make([]string, 0, 3)
	for _, network := range []string{netsim.Private, netsim.Public, netsim.Mgmt} {
		addrs = append(addrs, netip.AddrPortFrom(n.IP(node, network), echoPort).String())
	}
	return addrs
}

// udpConnIn opens a UDP socket in node's namespace, from this process: a socket stays in the
// namespace of the thread that made it. The thread, moved into the namespace, ends with its
// goroutine, which never unlocks it.
func udpConnIn(t *testing.T, n *netsim.Net, node string) *net.UDPConn {
	t.Helper()
	type result struct {
		conn *net.UDPConn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(n.NamespacePath(node))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer func() { _ = ns.Close() }()
		if err := netns.Set(ns); err != nil {
			done <- result{err: err}
			return
		}
		conn, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{conn: conn.(*net.UDPConn)}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("a UDP socket in %s: %v", node, r.err)
	}
	t.Cleanup(func() { _ = r.conn.Close() })
	return r.conn
}

// echo sends one datagram from conn to the echo on to and waits up to timeout for it to come
// back from there.
func echo(conn *net.UDPConn, to netip.Addr, timeout time.Duration) error {
	dst := netip.AddrPortFrom(to, echoPort)
	payload := strconv.FormatInt(rand.Int64(), 36)
	if _, err := conn.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
		return fmt.Errorf("sending to %s: %w", dst, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 64)
	for {
		m, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return fmt.Errorf("no echo from %s: %w", dst, err)
		}
		if from.Addr().Unmap() == to && string(buf[:m]) == payload {
			return nil // an echo of an earlier datagram is skipped
		}
	}
}

// waitEcho sends datagrams until one comes back.
func waitEcho(t *testing.T, conn *net.UDPConn, to netip.Addr, what string) {
	t.Helper()
	poll.Wait(t, what, arrival, func() error { return echo(conn, to, 300*time.Millisecond) })
}

// noEcho sends datagrams for a while and fails if any comes back.
func noEcho(t *testing.T, conn *net.UDPConn, to netip.Addr, what string) {
	t.Helper()
	for end := time.Now().Add(silence); time.Now().Before(end); {
		if err := echo(conn, to, 300*time.Millisecond); err == nil {
			t.Fatalf("%s: a datagram came back", what)
		}
	}
}

// reachHost runs a process in node's namespace that connects to a listener on HostIP, and
// checks that the connection comes from node's management address.
func reachHost(t *testing.T, n *netsim.Net, node string) {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", netip.AddrPortFrom(n.HostIP(), 0).String())
	if err != nil {
		t.Fatalf("listening on HostIP: %v", err)
	}
	defer func() { _ = l.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			accepted <- conn
		}
	}()
	if _, err := runHelperIn(t.Context(), t, n, node, nil, "tcp-hello", l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	select {
	case conn := <-accepted:
		defer func() { _ = conn.Close() }()
		from := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if from != n.IP(node, netsim.Mgmt) || line != "hello\n" {
			t.Errorf("got %q from %s, want \"hello\" from %s", line, from, n.IP(node, netsim.Mgmt))
		}
	case <-time.After(arrival):
		t.Fatalf("no connection from %s on %s", node, l.Addr())
	}
}

// checkNoCarrier checks that node's interface on network is still up but has no carrier.
func checkNoCarrier(t *testing.T, n *netsim.Net, node, network string) {
	t.Helper()
	ns, err := netns.GetFromPath(n.NamespacePath(node))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(n.Interface(network))
	if err != nil {
		t.Fatal(err)
	}
	if a := l.Attrs(); a.Flags&net.FlagUp == 0 || a.RawFlags&unix.IFF_LOWER_UP != 0 {
		t.Errorf("%s's %s after Cut: flags %v, state %v; want up without carrier", node, n.Interface(network), a.Flags, a.OperState)
	}
}

// checkInNamespace checks that pid runs comm in node's namespace.
func checkInNamespace(t *testing.T, n *netsim.Net, node string, pid int, comm string) {
	t.Helper()
	poll.Wait(t, fmt.Sprintf("pid %d running %s", pid, comm), arrival, func() error {
		got, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(got)) != comm {
			return fmt.Errorf("comm %q", got)
		}
		return nil
	})
	var want, got syscall.Stat_t
	if err := syscall.Stat(n.NamespacePath(node), &want); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino {
		t.Errorf("pid %d is in network namespace %d, want %s's %d", pid, got.Ino, node, want.Ino)
	}
}

// checkGone checks that no namespace or host interface has id in its name.
func checkGone(t *testing.T, id string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), "wp-"+id+"-") {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", "wp-"+id+"-a")); err == nil {
		t.Errorf("/run/netns/wp-%s-a left behind", id)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, "wp") && strings.Contains(name, id) {
			t.Errorf("interface %s left behind", l.Attrs().Name)
		}
	}
}

func withLast(a netip.Addr, last byte) [4]byte {
	b := a.As4()
	b[3] = last
	return b
}
