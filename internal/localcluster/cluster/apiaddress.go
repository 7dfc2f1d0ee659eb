package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
)

// apiBindAddress is kube-apiserver's --bind-address: 127.0.0.1, or the wildcard address when it
// also serves on extra addresses (it takes only one), "::" if one of them is IPv6. Clients still
// need the cluster CA and a client certificate.
func apiBindAddress(extra []netip.Addr) string {
	switch {
	case len(extra) == 0:
		return "127.0.0.1"
	case slices.ContainsFunc(extra, netip.Addr.Is6):
		return "::"
	default:
		return "0.0.0.0"
	}
}

// KubeconfigFor returns the path of an admin kubeconfig whose server is https://<addr>:<port>,
// for addr one of Options.ExtraAPIAddresses (or 127.0.0.1, the admin kubeconfig itself). It
// writes the file, admin-<addr>.kubeconfig in the directory, on each call.
func (c *Cluster) KubeconfigFor(addr netip.Addr) (string, error) {
	if addr == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return c.state.Kubeconfig, nil
	}
	if !slices.Contains(c.state.ExtraAPIAddresses, addr) {
		return "", fmt.Errorf("cluster: kube-apiserver does not serve on %s: not in Options.ExtraAPIAddresses %v", addr, c.state.ExtraAPIAddresses)
	}
	config, err := clientcmd.LoadFromFile(c.state.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("admin kubeconfig: %w", err)
	}
	server := "https://" + net.JoinHostPort(addr.String(), strconv.Itoa(c.state.Ports.APIServer))
	for _, cluster := range config.Clusters {
		cluster.Server = server
	}
	path := filepath.Join(c.state.Dir, "admin-"+addr.String()+".kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("kubeconfig for %s: %w", server, err)
	}
	return path, nil
}
