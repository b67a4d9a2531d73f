package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// TestTokensRoutes: an admin creates a token on POST /v1/tokens (shown in
// that answer only), lists it without its text, and revokes it with DELETE
// /v1/tokens/{name}, after which it is a 401 revoked; the name is never
// given again.
func TestTokensRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	var created struct {
		Token, Name, Role string
		CreatedBy         string `json:"created_by"`
		Scopes            []string
	}
	r := e.post("/v1/tokens", `{"name":"street-7","role":"editor","scopes":["440307001"]}`)
	expect(t, r, http.StatusCreated, "application/json", &created)
	if created.Name != "street-7" || created.CreatedBy != "token:test-admin" || r.Header.Get("Location") != "/v1/tokens/street-7" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /v1/tokens: %s", r)
	}
	created.Token = strings.TrimSpace(created.Token)
	me := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+created.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if status, _ := me(); status != http.StatusOK {
		t.Fatalf("GET /v1/me with the new token: %d", status)
	}
	r = e.get("/v1/tokens")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"street-7"`) || strings.Contains(string(r.Body), created.Token) || strings.Contains(string(r.Body), `"token"`) {
		t.Fatalf("GET /v1/tokens: %s", r)
	}

	r = e.do(http.MethodDelete, "/v1/tokens/street-7", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"revoked_by":"token:test-admin"`) {
		t.Fatalf("DELETE /v1/tokens/street-7: %s", r)
	}
	if status, challenge := me(); status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) || !strings.Contains(challenge, "revoked") {
		t.Fatalf("GET /v1/me with the revoked token: %d %q", status, challenge)
	}
	expectProblem(t, e.do(http.MethodDelete, "/v1/tokens/nobody", nil), http.StatusNotFound, typeNotFound, "")
	r = e.post("/v1/tokens", `{"name":"street-7","role":"viewer","scopes":["*"]}`)
	if r.Status != http.StatusConflict {
		t.Errorf("a revoked token's name again: %s", r)
	}
}

// TestXActorRefused: every write refuses an X-Actor header (who writes is
// the credential's identity) with a 400 naming it, and writes nothing.
func TestXActorRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	before := sqlInt(t, e.store, `SELECT count(*) FROM event_log`)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/events", `{"class":"0102","lon":114.2,"lat":22.6,"source":"grid_worker"}`},
		{http.MethodPut, "/v1/calendar/days/2030-01-02", `{"kind":"holiday"}`},
		{http.MethodDelete, "/v1/tokens/test-admin", ""},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Actor", "someone-else")
		resp, err := http.DefaultClient.Do(e.authorize(req))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s with X-Actor: %s, want 400", c.method, c.path, resp.Status)
		}
	}
	if n := sqlInt(t, e.store, `SELECT count(*) FROM event_log`); n != before {
		t.Errorf("event log grew from %d to %d", before, n)
	}
	if r := e.get("/v1/me"); r.Status != http.StatusOK {
		t.Errorf("the admin token after a refused revocation: %s", r)
	}
}

// TestWriteRateLimit: past its burst a credential's writes are a 429
// rate-limited with Retry-After, kept in the audit log; another
// credential's are not held up.
func TestWriteRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{WriteRate: 0.01, WriteBurst: 2})
	put := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPut, e.url+"/v1/calendar/days/2030-01-02", strings.NewReader(`{"kind":"holiday"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		if resp := put(e.token); resp.StatusCode/100 != 2 {
			t.Fatalf("write %d: %s", i+1, resp.Status)
		}
	}
	resp := put(e.token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third write: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	second, _, err := e.store.CreateToken(context.Background(), data.NewToken{Name: "second-admin", Role: auth.Admin, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if resp := put(second); resp.StatusCode/100 != 2 {
		t.Errorf("another credential's write: %s", resp.Status)
	}
	// Refusals for the rate are counted, not audited (TestAccessRateLimit).
	n := sqlInt(t, e.store, `SELECT count(*) FROM audit_log WHERE status = 429 AND actor = 'token:test-admin'`)
	if n != 0 {
		t.Errorf("%d refused writes in the audit log, want 0", n)
	}
}
