package env

import (
	"context"
	"fmt"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/wolfpack-ha/wolfpack/internal/arbitration"
)

// The ServiceAccounts of the Helm release "wolfpack" in SystemNamespace, whose rights the
// components run with, as they would in their pods: the manager with the manager's, each agent
// with the agents', each quorum holder with the holders'. So a rule missing from the chart's RBAC
// fails here.
const (
	managerAccount = "wolfpack-manager"
	agentAccount   = "wolfpack-node-agent"
	holderAccount  = arbitration.HolderServiceAccount
)

// tokenLifetime is how long the components' tokens are valid: long enough for `make demo` to be
// left running for a while.
const tokenLifetime = 7 * 24 * 3600

// issueTokens writes a kubeconfig for each component's ServiceAccount (see kubeconfigOf).
func (e *Env) issueTokens(ctx context.Context) error {
	for _, sa := range []string{managerAccount, agentAccount, holderAccount} {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(tokenLifetime))}}
		tr, err := e.Cluster.Client().CoreV1().ServiceAccounts(SystemNamespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("a token of ServiceAccount %s/%s: %w", SystemNamespace, sa, err)
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
		if err := clientcmd.WriteToFile(*config, e.kubeconfigOf(sa)); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfigOf is the kubeconfig with the token of ServiceAccount sa.
func (e *Env) kubeconfigOf(sa string) string { return filepath.Join(e.o.Dir, sa+".kubeconfig") }
