package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// tcpProxy forwards connections to a PostgreSQL server until cut: then
// its port is closed and every connection through it is broken, as when
// the database host goes away.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// cut closes the port and breaks every connection.
func (p *tcpProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// via is raw with its host and port replaced by the proxy's.
func (p *tcpProxy) via(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// dbSecrets are the parts of a connection string and of PostgreSQL's
// errors that no answer may show.
func dbSecrets(t *testing.T, raw string, more ...string) []string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{u.Hostname(), ":" + u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username() + "@",
		"SQLSTATE", "FATAL", "dial tcp", "connection refused", "SELECT", "terminating", "pgx", "pool"}
	return append(out, more...)
}

// expectUnavailable checks a 503 with Retry-After whose body names none
// of secrets.
func expectUnavailable(t *testing.T, what string, r reply, secrets []string) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("%s: status %d, want 503: %s", what, r.Status, r)
	}
	expectProblem(t, r, http.StatusServiceUnavailable, typeUnavail, "")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("%s: Retry-After %q, want a number of seconds", what, r.Header.Get("Retry-After"))
	}
	expectNoLeak(t, what, r, secrets)
}

func expectNoLeak(t *testing.T, what string, r reply, secrets []string) {
	t.Helper()
	body := strings.ToLower(string(r.Body))
	for _, s := range secrets {
		if s != "" && strings.Contains(body, strings.ToLower(s)) {
			t.Errorf("%s: the body reveals %q: %s", what, s, r.Body)
		}
	}
}

// unavailableRequests are a read, a write and /readyz, each of which must
// reach the database.
func unavailableRequests(t *testing.T, e *apiEnv, x, y float64, secrets []string) {
	t.Helper()
	expectUnavailable(t, "GET /v1/units", e.get("/v1/units?level=district&geometry=none"), secrets)
	obj := objFeatureJSON(demoDistrict+"0101000077", "0101", pointJSON(x, y), "")
	expectUnavailable(t, "POST /v1/objects", e.post("/v1/objects", obj), secrets)
	expectUnavailable(t, "GET /readyz", e.get("/readyz"), secrets)
	// Liveness and the in-memory locator do not need the database.
	expect(t, e.get("/healthz"), http.StatusOK, ctJSON, nil)
	expect(t, e.get(fmt.Sprintf("/v1/locate?lon=%v&lat=%v", x, y)), http.StatusOK, ctJSON, nil)
}

// TestDatabaseUnreachable: the database's port closes under a running
// server (every pooled connection breaks, new ones are refused).
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	u, _ := url.Parse(s.URL())
	proxy := newTCPProxy(t, u.Host)
	viaProxy := proxy.via(t, s.URL())
	ps, err := data.Open(context.Background(), viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Close)
	e := newEnv(t, ps, api.Options{})
	x, y, _ := demoPoint(t, &apiEnv{t: t, store: s}, "")
	expect(t, e.get("/readyz"), http.StatusOK, ctJSON, nil)
	expect(t, e.get("/v1/units?level=district&geometry=none"), http.StatusOK, ctGeoJSON, nil)

	proxy.cut()
	unavailableRequests(t, e, x, y, dbSecrets(t, viaProxy, dbSecrets(t, s.URL())...))
}

// TestDatabaseDropped: the server's database is dropped under it, which
// terminates its backends (57P01) and refuses new connections (3D000).
func TestDatabaseDropped(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	e := newEnv(t, s, api.Options{})
	x, y, _ := demoPoint(t, e, "")
	expect(t, e.get("/readyz"), http.StatusOK, ctJSON, nil)

	u, _ := url.Parse(s.URL())
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	unavailableRequests(t, e, x, y, dbSecrets(t, s.URL(), "does not exist"))
}
