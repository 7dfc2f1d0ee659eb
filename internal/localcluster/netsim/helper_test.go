package netsim_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wolfpack-ha/wolfpack/internal/localcluster/netsim"
)

// helperEnv switches the test binary into one of the helper programs below, which the tests
// run inside a node's namespace: NETSIM_HELPER=<name> <test binary> <args...>.
const helperEnv = "NETSIM_HELPER"

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		if err := runHelper(name, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(name string, args []string) error {
	ctx := context.Background()
	switch name {
	case "udp-echo":
		return udpEcho(ctx, args)
	case "tcp-hello":
		return tcpHello(ctx, args)
	case "list-nodes":
		return listNodes(ctx)
	}
	return fmt.Errorf("no helper %q", name)
}

// udpEcho listens on every address:port in addrs, says "ready" on stdout, and sends every
// datagram back to its sender until it is killed.
func udpEcho(ctx context.Context, addrs []string) error {
	errc := make(chan error, len(addrs))
	for _, addr := range addrs {
		conn, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", addr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := conn.ReadFrom(buf)
				if err != nil {
					errc <- err
					return
				}
				_, _ = conn.WriteTo(buf[:n], from)
			}
		}()
	}
	fmt.Println("ready")
	return <-errc
}

// tcpHello connects to the address in args and writes "hello".
func tcpHello(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("want one address")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", args[0])
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "hello\n")
	return err
}

// listNodes prints the names of the Nodes, as the client of $KUBECONFIG sees them.
func listNodes(ctx context.Context) error {
	config, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	config.Timeout = 10 * time.Second
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		fmt.Println(n.Name)
	}
	return nil
}

// helper returns the command that runs the named helper with args in node's namespace.
func helper(ctx context.Context, t *testing.T, n *netsim.Net, node, name string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := n.Command(ctx, node, self, args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	return cmd
}

// runHelperIn runs the named helper in node's namespace and returns its output.
func runHelperIn(ctx context.Context, t *testing.T, n *netsim.Net, node string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := helper(ctx, t, n, node, name, args...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helper %s in %s (%s): %w: %s", name, node, strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// startEcho starts a udp-echo helper in node's namespace, waits until it listens, and kills it
// when the test ends. It returns a function that kills it earlier.
func startEcho(t *testing.T, n *netsim.Net, node string, addrs ...string) (stop func()) {
	t.Helper()
	cmd := helper(t.Context(), t, n, node, "udp-echo", addrs...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the echo in %s: %v", node, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "ready" {
			<-done
			t.Fatalf("the echo in %s did not start: %q %s", node, s, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the echo in %s is not ready after 30 s", node)
	}
	return stop
}

// logWriter sends each line written to it to the test's log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
