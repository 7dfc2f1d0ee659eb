package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/wolfpack-ha/wolfpack/internal/test/envtest"
	"github.com/wolfpack-ha/wolfpack/internal/test/freeport"
	"github.com/wolfpack-ha/wolfpack/internal/test/poll"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "renew deadline as long as the lease", args: []string{"--leader-elect-lease-duration=10s", "--leader-elect-renew-deadline=10s"},
			wantErr: "--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)"},
		{name: "no leader election, any renew deadline", args: []string{"--leader-elect=false", "--leader-elect-renew-deadline=1m"}},
		{name: "a negative fence grace", args: []string{"--fence-grace=-1s"}, wantErr: "--fence-grace must be at least 0 (an extra margin), not -1s"},
		{name: "an extra fence margin", args: []string{"--fence-grace=5s"}},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments: [extra]"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantErr: "flag provided but not defined: -no-such-flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFlags(%v): %v", tc.args, err)
				}
				if tc.args == nil && (!o.leaderElect || !o.secureMetrics || o.metricsAddr != ":8443" || o.probeAddr != ":8081" || o.fenceGrace != 0) {
					t.Fatalf("defaults %+v, want leader election, secure metrics on :8443, probes on :8081, no extra fence margin", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseFlags(%v) = %v, want an error with %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

// TestManagerRuns starts the manager against a real API server and checks what a cluster
// operator relies on: probes, leader election, metrics that only authorized clients may read,
// and a clean stop that hands leadership over.
func TestManagerRuns(t *testing.T) {
	env, err := envtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	cs := kubernetes.NewForConfigOrDie(env.Config)

	metricsAddr, probeAddr := freeport.TCPAddr(t), freeport.TCPAddr(t)
	o, err := parseFlags([]string{
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
		"--leader-election-namespace=default",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, env.Config, o) }()
	t.Cleanup(cancel)

	poll.Wait(t, "readiness probe", time.Minute, func() error {
		return expectStatus("http://"+probeAddr+"/readyz", "", http.StatusOK)
	})
	if err := expectStatus("http://"+probeAddr+"/healthz", "", http.StatusOK); err != nil {
		t.Fatal(err)
	}

	poll.Wait(t, "leader election Lease", time.Minute, func() error {
		lease, err := cs.CoordinationV1().Leases("default").Get(ctx, LeaderElectionID, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Errorf("lease %s has no holder", LeaderElectionID)
		}
		return nil
	})

	metricsURL := "https://" + metricsAddr + "/metrics"
	poll.Wait(t, "metrics without a token are refused", time.Minute, func() error {
		return expectStatus(metricsURL, "", http.StatusUnauthorized)
	})
	// Two identities, so that the endpoint's 30 s cache of denials does not delay the allowed one.
	intruder := serviceAccountToken(t, cs, "intruder")
	if err := expectStatus(metricsURL, intruder, http.StatusForbidden); err != nil {
		t.Fatalf("metrics with a token that may not read them: %v", err)
	}
	allowMetrics(t, cs, "scraper")
	token := serviceAccountToken(t, cs, "scraper")
	poll.Wait(t, "metrics with an authorized token", 30*time.Second, func() error {
		body, err := get(metricsURL, token, http.StatusOK)
		if err != nil {
			return err
		}
		want := `leader_election_master_status{name="` + LeaderElectionID + `"} 1`
		if !strings.Contains(body, want) {
			return fmt.Errorf("metrics do not show %q", want)
		}
		return nil
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("manager did not stop within a minute of its context ending")
	}
	lease, err := cs.CoordinationV1().Leases("default").Get(context.Background(), LeaderElectionID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := holder(lease); h != "" {
		t.Fatalf("the stopped manager still holds the Lease as %q; want it released", h)
	}
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func get(url, token string, want int) (string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The metrics endpoint serves a self-signed certificate unless one is configured.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != want {
		return "", fmt.Errorf("GET %s: %s, want %d", url, resp.Status, want)
	}
	return string(body), nil
}

func expectStatus(url, token string, want int) error {
	_, err := get(url, token, want)
	return err
}

func serviceAccountToken(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func allowMetrics(t *testing.T, cs kubernetes.Interface, sa string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "wolfpack-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "wolfpack-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: sa}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
