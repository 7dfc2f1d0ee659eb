package env

import (
	"context"
	"fmt"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
)

// The ServiceAccounts of the Helm release "wolfpack" in SystemNamespace, whose rights the
// components run with, as they would in their pods: the manager with the manager's, each agent
// with the agents', each quorum holder with the holders'. So a rule missing from the chart's RBAC
// fails here. The agents' and the holders' tokens are bound to their Node, as the kubelet binds
// a pod's token to its pod on its node: the API server then puts the node's name in the token's
// user info (extra authentication.kubernetes.io/node-name), which the chart's admission policy
// compares with the node an object is about.
const (
	managerAccount = "wolfpack-manager"
	agentAccount   = "wolfpack-node-agent"
	holderAccount  = arbitration.HolderServiceAccount
)

// tokenLifetime is how long the components' tokens are valid: long enough for `make demo` to be
// left running for a while.
const tokenLifetime = 7 * 24 * 3600

// issueTokens writes a kubeconfig for the manager's ServiceAccount, and one for the agents' and
// the holders' on each member node (see kubeconfigOf).
func (e *Env) issueTokens(ctx context.Context) error {
	type identity struct{ sa, node string }
	ids := make([]identity, 0, 1+2*len(Member))
	ids = append(ids, identity{managerAccount, ""})
	for _, n := range Member {
		ids = append(ids, identity{agentAccount, n}, identity{holderAccount, n})
	}
	for _, id := range ids {
		sa := id.sa
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(tokenLifetime))}}
		if id.node != "" {
			node, err := e.Cluster.Client().CoreV1().Nodes().Get(ctx, id.node, metav1.GetOptions{})
			if err != nil {
				return err
			}
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name, UID: node.UID}
		}
		tr, err := e.Cluster.Client().CoreV1().ServiceAccounts(SystemNamespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("a token of ServiceAccount %s/%s for node %q: %w", SystemNamespace, sa, id.node, err)
		}
		// The manager runs on the host; the agents and holders in the nodes' namespaces.
		server := e.nsKubeconfig
		if sa == managerAccount {
			server = e.Kubeconfig()
		}
		config, err := clientcmd.LoadFromFile(server)
		if err != nil {
			return err
		}
		config.AuthInfos = map[string]*clientcmdapi.AuthInfo{sa: {Token: tr.Status.Token}}
		for _, c := range config.Contexts {
			c.AuthInfo = sa
		}
		if err := clientcmd.WriteToFile(*config, e.kubeconfigOf(sa, id.node)); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfigOf is the kubeconfig with the token of ServiceAccount sa bound to node, or not bound
// when node is empty.
func (e *Env) kubeconfigOf(sa, node string) string {
	if node != "" {
		sa += "-" + node
	}
	return filepath.Join(e.o.Dir, sa+".kubeconfig")
}

// AgentClient is a client with the credentials node's agent runs with: the agents'
// ServiceAccount, its token bound to node. A test writes with it what anyone holding that agent's
// token could.
func (e *Env) AgentClient(node string) (client.Client, error) {
	config, err := clientcmd.BuildConfigFromFlags("", e.kubeconfigOf(agentAccount, node))
	if err != nil {
		return nil, err
	}
	return client.New(config, client.Options{Scheme: Scheme()})
}
