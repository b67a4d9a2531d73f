package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and
// localhost and its key into dir, and returns their files and a pool
// that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gridmap test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: `gridmap serve --tls-cert --tls-key --public-read` serves
// HTTPS (logging an https URL) that a client trusting the certificate
// reads: /healthz, and a public read with no credential; a write still
// needs one, and a token revoked from the command line is refused by the
// running server within a second (serve follows the tokens channel).
func TestServeTLS(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	srv := startServe(t, bin, s.URL(), "--tls-cert", certFile, "--tls-key", keyFile, "--public-read", "--cors-origins", "https://ops.city.example")
	if !strings.HasPrefix(srv.base, "https://") {
		t.Fatalf("serve logged %s, want an https URL", srv.base)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.base+path, nil)
		req.Header.Set("Origin", "https://ops.city.example")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, srv.logText())
		}
		resp.Body.Close()
		return resp
	}
	resp := get("/healthz", "")
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET /healthz over TLS: %s %v", resp.Status, resp.TLS)
	}
	if resp = get("/v1/units?level=district&geometry=none", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://ops.city.example" {
		t.Errorf("a public read: %s, Access-Control-Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Not trusting the certificate: refused.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(srv.base + "/healthz"); err == nil {
		t.Error("a client that does not trust the certificate was served")
	}

	req, _ := http.NewRequest(http.MethodPost, srv.base+"/v1/events", strings.NewReader(`{}`))
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("a write without a credential under --public-read: %v %v", resp, err)
	}

	text, _, err := s.CreateToken(context.Background(), data.NewToken{Name: "wall-1", Role: auth.Viewer, Scopes: []string{"440308"}, CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	if resp := get("/v1/me", text); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/me with a new token: %s", resp.Status)
	}
	if out, code := runBin(t, bin, s.URL(), "token", "revoke", "wall-1"); code != 0 {
		t.Fatalf("token revoke: exit %d: %s", code, out)
	}
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp := get("/v1/me", text); resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the served process still takes a token revoked a second ago")
		}
	}
}

// TestServeAccessSettingsRefused: a bad access setting, as a flag or an
// environment variable, stops serve at start with exit 1 and a message
// naming it (before the database is opened).
func TestServeAccessSettingsRefused(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"GRIDMAP_PUBLIC_READ=maybe"}, nil, `GRIDMAP_PUBLIC_READ="maybe"`},
		{[]string{"GRIDMAP_WRITE_RATE=fast"}, nil, `GRIDMAP_WRITE_RATE="fast"`},
		{[]string{"GRIDMAP_WRITE_RATE=NaN"}, nil, `GRIDMAP_WRITE_RATE="NaN"`},
		{[]string{"GRIDMAP_WRITE_BURST=1.5"}, nil, `GRIDMAP_WRITE_BURST="1.5"`},
		{nil, []string{"--write-burst", "0"}, "--write-burst 0"},
		{[]string{"GRIDMAP_TLS_CERT=" + certFile}, nil, "give both or neither"},
		{nil, []string{"--tls-key", keyFile}, "give both or neither"},
		{nil, []string{"--tls-cert", keyFile, "--tls-key", certFile}, "TLS certificate"},
		{nil, []string{"--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", keyFile}, "no such file"},
		{[]string{"GRIDMAP_OIDC_ISSUER=https://sso.city.example/realms/grid"}, nil, "needs --oidc-audience"},
		{nil, []string{"--oidc-audience", "gridmap"}, "without --oidc-issuer"},
		{nil, []string{"--oidc-issuer", "sso.city.example", "--oidc-audience", "gridmap"}, "issuer"},
		{nil, []string{"--oidc-issuer", "https://sso.city.example", "--oidc-audience", "gridmap", "--oidc-role-map", "ops=boss"}, `unknown role "boss"`},
		{nil, []string{"--oidc-issuer", "https://sso.city.example", "--oidc-audience", "gridmap", "--oidc-role-map", "ops"}, "provider-role=gridmap-role"},
		{[]string{"GRIDMAP_CORS_ORIGINS=https://ops.city.example/"}, nil, `CORS origin "https://ops.city.example/"`},
		{nil, []string{"--cors-origins", "https://*.city.example"}, "CORS origin"},
	} {
		cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, c.args...)...)
		// No database: the settings are refused before one is needed.
		cmd.Env = append(append(os.Environ(), "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?connect_timeout=1"), c.env...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "database") {
			t.Errorf("serve %v %v: %v, output %q; want exit 1 saying %q", c.env, c.args, err, out, c.want)
		}
	}
}
