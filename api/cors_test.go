package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestCORS: with CORSOrigins, a preflight from an allowed origin is a 204
// with the methods, headers and max age, answered without a credential
// (authenticate never sees it); one from another origin gets no
// Access-Control-Allow-Origin; a real request from an allowed origin
// carries it and exposes ETag; a request with no Origin is as before.
func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "https://ops.city.example"
	e := newEnv(t, pgtest.NewDemo(t), api.Options{CORSOrigins: []string{allowed, "http://localhost:3000"}})

	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.url+"/v1/objects/4403080101000001", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPut)
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,if-match")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(allowed)
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("preflight from %s: %s, Access-Control-Allow-Origin %q", allowed, resp.Status, h.Get("Access-Control-Allow-Origin"))
	}
	if m := h.Get("Access-Control-Allow-Methods"); m != http.MethodPut {
		t.Errorf("Access-Control-Allow-Methods %q, want PUT", m)
	}
	if got := strings.ToLower(h.Get("Access-Control-Allow-Headers")); got != "authorization,content-type,if-match" {
		t.Errorf("Access-Control-Allow-Headers %q", got)
	}
	if h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "" || h.Get("WWW-Authenticate") != "" {
		t.Errorf("preflight headers: %v", h)
	}

	resp = preflight("https://evil.example")
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("preflight from another origin: Access-Control-Allow-Origin %q", v)
	}

	// A method not allowed cross-origin (PATCH) is not granted.
	req, _ := http.NewRequest(http.MethodOptions, e.url+"/v1/units/440308", nil)
	req.Header.Set("Origin", allowed)
	req.Header.Set("Access-Control-Request-Method", http.MethodPatch)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("PATCH preflight granted: %v", resp.Header)
	}

	get := func(origin, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/units/440308", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp = get(allowed, e.token)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("GET from %s: %s, headers %v", allowed, resp.Status, resp.Header)
	}
	exposed := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	for _, want := range []string{"etag", "location", "retry-after", "idempotent-replayed", "www-authenticate", "link"} {
		if !strings.Contains(exposed, want) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("Vary %q lacks Origin", resp.Header.Get("Vary"))
	}
	// Without a credential the read is still a 401 a page's script can read.
	resp = get(allowed, "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("GET without a credential: %s, Access-Control-Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp = get("https://evil.example", e.token)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin: %s, Access-Control-Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestNoCORS: without CORSOrigins no CORS header is sent and an OPTIONS
// preflight is what it was, a 405.
func TestNoCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	req, _ := http.NewRequest(http.MethodOptions, e.url+"/v1/me", nil)
	req.Header.Set("Origin", "https://ops.city.example")
	req.Header.Set("Access-Control-Request-Method", http.MethodGet)
	e.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("OPTIONS without CORS: %s, headers %v", resp.Status, resp.Header)
	}
	r := e.get("/v1/me")
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET /v1/me without CORS: %d, headers %v", r.Status, r.Header)
	}
}

// TestCORSOriginsChecked: an origin that is not "*" or scheme://host[:port]
// is refused by api.New.
func TestCORSOriginsChecked(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"https://*.city.example", "ops.city.example", "https://ops.city.example/", "ftp://x", "https://a.example/path", ""} {
		if err := api.CheckCORSOrigins([]string{o}); err == nil {
			t.Errorf("origin %q accepted", o)
		}
	}
	if err := api.CheckCORSOrigins([]string{"*", "https://ops.city.example", "http://localhost:3000", "http://[::1]:8080"}); err != nil {
		t.Error(err)
	}
	if _, err := api.New(context.Background(), pgtest.New(t), api.Options{CORSOrigins: []string{"https://a.example/"}}); err == nil {
		t.Error("api.New took a bad origin")
	}
}
