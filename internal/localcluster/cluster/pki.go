package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certValidity is long enough for a demo cluster left running.
const certValidity = 365 * 24 * time.Hour

// The files written by writePKI, relative to the cluster directory.
const (
	caCertFile        = "pki/ca.crt"
	servingCertFile   = "pki/serving.crt"
	servingKeyFile    = "pki/serving.key"
	serviceAccountKey = "pki/sa.key"
	serviceAccountPub = "pki/sa.pub"
	adminKubeconfig   = "admin.kubeconfig"
	schedKubeconfig   = "kube-scheduler.kubeconfig"
)

// An identity is a client certificate's user: the admin (in system:masters, which RBAC lets do
// anything), which kube-controller-manager and kwok use too, and kube-scheduler, whose user
// RBAC's bootstrap policy knows.
type identity struct {
	kubeconfig string
	user       string
	groups     []string
}

var identities = []identity{
	{kubeconfig: adminKubeconfig, user: "wolfpack-e2e-admin", groups: []string{"system:masters"}},
	{kubeconfig: schedKubeconfig, user: "system:kube-scheduler"},
}

// writePKI generates a fresh CA, one serving certificate for kube-apiserver,
// kube-controller-manager and kube-scheduler (all on 127.0.0.1, kube-apiserver also on the
// extra addresses), the service-account signing key, and a kubeconfig with its own client
// certificate for each identity.
func writePKI(dir string, apiServerPort int, extraAPIAddresses []netip.Addr) error {
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "wolfpack-e2e-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTemplate, caTemplate, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, caCertFile), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeServingCert(dir, ca, caKey, extraAPIAddresses); err != nil {
		return err
	}
	if err := writeServiceAccountKey(dir); err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", apiServerPort)
	for _, id := range identities {
		if err := writeKubeconfig(dir, id, server, ca, caKey); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", id.kubeconfig, err)
		}
	}
	return nil
}

func writeServingCert(dir string, ca *x509.Certificate, caKey crypto.Signer, extraAddresses []netip.Addr) error {
	ips := make([]net.IP, 0, 3+len(extraAddresses))
	ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP)
	for _, a := range extraAddresses {
		ips = append(ips, a.AsSlice())
	}
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: ips,
	}
	return writeKeyPair(dir, servingCertFile, servingKeyFile, template, ca, caKey)
}

func writeServiceAccountKey(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, serviceAccountKey), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, serviceAccountPub), "PUBLIC KEY", pub)
}

func writeKubeconfig(dir string, id identity, server string, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: id.user, Organization: id.groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := sign(template, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	const name = "wolfpack-e2e"
	config := clientcmdapi.NewConfig()
	config.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
	}
	config.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ClientKeyData:         pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	config.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	config.CurrentContext = name
	return clientcmd.WriteToFile(*config, filepath.Join(dir, id.kubeconfig))
}

// writeKeyPair issues a certificate for template with a new key and writes both as PEM.
func writeKeyPair(dir, certFile, keyFile string, template, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := sign(template, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, certFile), "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, keyFile), "EC PRIVATE KEY", keyDER)
}

// sign fills in the serial number and validity of template and signs it with parent's key.
func sign(template, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(certValidity)
	return x509.CreateCertificate(rand.Reader, template, parent, pub, parentKey)
}

func writePEM(path, blockType string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600)
}
