package api_test

import (
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
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
