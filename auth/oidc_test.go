package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testNow is the clock of every OIDC test.
var testNow = time.Unix(1_800_000_000, 0)

type testKeys struct {
	rsa, rsa2, other *rsa.PrivateKey
	ec               *ecdsa.PrivateKey
}

var keysOnce = sync.OnceValue(func() testKeys {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return testKeys{rsa: gen(), rsa2: gen(), other: gen(), ec: ec}
})

// idp is an identity provider on loopback: a discovery document and a
// JWKS, both of which can be made to fail.
type idp struct {
	srv       *httptest.Server
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	down      bool
	discovery atomic.Int32 // requests for the discovery document
	jwks      atomic.Int32 // requests for the JWKS
}

func newIDP(t testing.TB) *idp {
	k := keysOnce()
	p := &idp{keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa1", Algorithm: "RS256", Use: "sig"},
		{Key: k.ec.Public(), KeyID: "ec1", Algorithm: "ES256", Use: "sig"},
	}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down, keys := p.down, p.keys
		p.mu.Unlock()
		var body any
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			p.discovery.Add(1)
			body = map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256", "ES256"}}
		case "/jwks":
			p.jwks.Add(1)
			body = jose.JSONWebKeySet{Keys: keys}
		default:
			http.NotFound(w, r)
			return
		}
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...jose.JSONWebKey) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

const testAudience = "gridmap-api"

func (p *idp) config() OIDCConfig {
	return OIDCConfig{Issuer: p.srv.URL, Audience: testAudience}
}

func newTestOIDC(t testing.TB, cfg OIDCConfig, now *time.Time) *OIDC {
	t.Helper()
	o, err := NewOIDC(cfg)
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	o.now = func() time.Time { return *now }
	return o
}

// claims are a valid token's, for the issuer, with edits applied (a nil
// value deletes the claim).
func (p *idp) claims(edit map[string]any) map[string]any {
	c := map[string]any{
		"iss":                p.srv.URL,
		"aud":                []string{testAudience, "account"},
		"exp":                testNow.Add(time.Hour).Unix(),
		"iat":                testNow.Add(-time.Minute).Unix(),
		"sub":                "5f0c2a4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
		"preferred_username": "alice",
		"roles":              []string{"editor", "offline_access"},
		"units":              []string{"440306"},
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned crafts a token with the given header by hand.
func unsigned(header string, claims map[string]any, sig string) string {
	payload, _ := json.Marshal(claims)
	b := base64.RawURLEncoding
	return b.EncodeToString([]byte(header)) + "." + b.EncodeToString(payload) + "." + sig
}

// checkNoEcho fails if a credential error's text holds the token or one
// of its segments.
func checkNoEcho(t *testing.T, err error, raw string) {
	t.Helper()
	var ce *CredentialError
	if !errors.As(err, &ce) {
		return
	}
	for _, s := range append([]string{raw}, strings.Split(raw, ".")...) {
		if len(s) >= 4 && (strings.Contains(ce.Detail, s) || strings.Contains(ce.Error(), s)) {
			t.Errorf("the detail %q echoes the token (%.20s…)", ce.Detail, s)
		}
	}
}

func TestOIDCVerify(t *testing.T) {
	k := keysOnce()
	p := newIDP(t)
	rs := func(edit map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return sign(t, jose.RS256, k.rsa, "rsa1", p.claims(edit)) }
	}
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	keycloak := func(c *OIDCConfig) {
		c.RolesClaim = "realm_access.roles"
		c.RoleMap = map[string]Role{"gm-admin": Admin, "gm-dispatcher": Dispatcher, "gm-viewer": Viewer}
	}
	for _, tc := range []struct {
		name   string
		cfg    func(*OIDCConfig)
		token  func(t *testing.T) string
		reason string  // "" for a valid token
		grants []Grant // of a valid token
		actor  string  // of a valid token; "" for "oidc:alice"
		detail string  // a substring of the detail
	}{
		{name: "bare roles with units", token: rs(map[string]any{"roles": []string{"editor", "viewer", "offline_access", "uma_authorization"}, "units": []string{"440307001", "440306", "440306002"}}),
			grants: []Grant{{Viewer, []string{"440306", "440307001"}}, {Editor, []string{"440306", "440307001"}}}},
		{name: "units as one comma-separated string", token: rs(map[string]any{"units": "440306, 440307"}),
			grants: []Grant{{Editor, []string{"440306", "440307"}}}},
		{name: "aud as a string", token: rs(map[string]any{"aud": testAudience}),
			grants: []Grant{{Editor, []string{"440306"}}}},
		{name: "role@code", token: rs(map[string]any{"roles": []string{"editor@440306", "viewer@*", "reporter@440307001002", "editor@440307"}, "units": nil}),
			grants: []Grant{{Viewer, []string{City}}, {Reporter, []string{"440307001002"}}, {Editor, []string{"440306", "440307"}}}},
		{name: "role@code and bare role", token: rs(map[string]any{"roles": []string{"editor@440307", "dispatcher"}, "units": "440306"}),
			grants: []Grant{{Dispatcher, []string{"440306"}}, {Editor, []string{"440307"}}}},
		{name: "keycloak realm roles through a role map", cfg: keycloak,
			token:  rs(map[string]any{"roles": nil, "realm_access": map[string]any{"roles": []string{"default-roles-city", "offline_access", "gm-dispatcher", "editor"}}, "units": []string{"440306001"}}),
			grants: []Grant{{Dispatcher, []string{"440306001"}}}},
		{name: "keycloak scoped value through a role map", cfg: keycloak,
			token:  rs(map[string]any{"roles": nil, "realm_access": map[string]any{"roles": []string{"gm-viewer@440306"}}, "units": nil}),
			grants: []Grant{{Viewer, []string{"440306"}}}},
		{name: "namespaced claim with dots", cfg: func(c *OIDCConfig) { c.RolesClaim = "https://city.example/roles" },
			token:  rs(map[string]any{"roles": nil, "https://city.example/roles": []string{"viewer"}}),
			grants: []Grant{{Viewer, []string{"440306"}}}},
		{name: "admin holds the city", token: rs(map[string]any{"roles": []string{"admin"}, "units": nil}),
			grants: []Grant{{Admin, []string{City}}}},
		{name: "admin mapped, with units", cfg: keycloak, token: rs(map[string]any{"roles": nil, "realm_access": map[string]any{"roles": []string{"gm-admin"}}}),
			grants: []Grant{{Admin, []string{City}}}},
		{name: "ES256", token: func(t *testing.T) string { return sign(t, jose.ES256, k.ec, "ec1", p.claims(nil)) },
			grants: []Grant{{Editor, []string{"440306"}}}},
		{name: "user falls back to sub", token: rs(map[string]any{"preferred_username": nil}),
			grants: []Grant{{Editor, []string{"440306"}}}, actor: "oidc:5f0c2a4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"},
		{name: "user claim configured", cfg: func(c *OIDCConfig) { c.UserClaim = "email" }, token: rs(map[string]any{"email": "bob@city.example"}),
			grants: []Grant{{Editor, []string{"440306"}}}, actor: "oidc:bob@city.example"},
		{name: "nbf within the skew", token: rs(map[string]any{"nbf": testNow.Add(30 * time.Second).Unix()}),
			grants: []Grant{{Editor, []string{"440306"}}}},

		{name: "expired", token: rs(map[string]any{"exp": testNow.Add(-time.Minute).Unix()}), reason: Expired, detail: "expired at"},
		{name: "no exp", token: rs(map[string]any{"exp": nil}), reason: Expired, detail: "no expiry"},
		{name: "not yet valid", token: rs(map[string]any{"nbf": testNow.Add(10 * time.Minute).Unix()}), reason: Expired, detail: "not valid before"},
		{name: "not yet valid, inside the library's leeway", token: rs(map[string]any{"nbf": testNow.Add(2 * time.Minute).Unix()}), reason: Expired, detail: "not valid before"},
		{name: "wrong issuer", token: rs(map[string]any{"iss": "https://evil.example/realms/city"}), reason: Issuer, detail: "not issued by " + p.srv.URL},
		{name: "no issuer", token: rs(map[string]any{"iss": nil}), reason: Issuer},
		{name: "wrong issuer and expired", token: rs(map[string]any{"iss": "https://evil.example", "exp": testNow.Add(-time.Hour).Unix()}), reason: Issuer},
		{name: "wrong audience", token: rs(map[string]any{"aud": []string{"account"}}), reason: Audience, detail: "audience " + testAudience},
		{name: "wrong audience string", token: rs(map[string]any{"aud": "other"}), reason: Audience},
		{name: "no audience", token: rs(map[string]any{"aud": nil}), reason: Audience},
		{name: "wrong audience and expired", token: rs(map[string]any{"aud": "other", "exp": testNow.Add(-time.Hour).Unix()}), reason: Audience},
		{name: "another key, same kid", token: func(t *testing.T) string { return sign(t, jose.RS256, k.other, "rsa1", p.claims(nil)) }, reason: Signature},
		{name: "another key, unknown kid", token: func(t *testing.T) string { return sign(t, jose.RS256, k.other, "stranger", p.claims(nil)) }, reason: Signature},
		{name: "another key, no kid", token: func(t *testing.T) string { return sign(t, jose.RS256, k.other, "", p.claims(nil)) }, reason: Signature},
		{name: "no kid, right key", token: func(t *testing.T) string { return sign(t, jose.RS256, k.rsa, "", p.claims(nil)) },
			grants: []Grant{{Editor, []string{"440306"}}}},
		{name: "EC key under the RSA kid", token: func(t *testing.T) string { return sign(t, jose.ES256, k.ec, "rsa1", p.claims(nil)) }, reason: Signature},
		{name: "payload tampered", token: func(t *testing.T) string {
			parts := strings.Split(sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil)), ".")
			forged := strings.Split(unsigned(`{"alg":"RS256","kid":"rsa1"}`, p.claims(map[string]any{"roles": []string{"admin"}}), ""), ".")
			return parts[0] + "." + forged[1] + "." + parts[2]
		}, reason: Signature},
		{name: "alg none", token: func(t *testing.T) string { return unsigned(`{"alg":"none","typ":"JWT"}`, p.claims(nil), "") }, reason: Signature, detail: "alg none"},
		{name: "alg none with a signature", token: func(t *testing.T) string {
			return unsigned(`{"alg":"none","kid":"rsa1"}`, p.claims(nil), strings.Split(rs(nil)(t), ".")[2])
		}, reason: Signature},
		{name: "HS256 keyed with the public key (algorithm confusion)", token: func(t *testing.T) string {
			return sign(t, jose.HS256, pubPEM(), "rsa1", p.claims(nil))
		}, reason: Signature, detail: "signed with HS256"},
		{name: "ES256 where only RS256 is accepted", cfg: func(c *OIDCConfig) { c.Algorithms = []string{"RS256"} },
			token: func(t *testing.T) string { return sign(t, jose.ES256, k.ec, "ec1", p.claims(nil)) }, reason: Signature},
		{name: "an unknown alg is not echoed", token: func(t *testing.T) string { return unsigned(`{"alg":"zz-evil-alg"}`, p.claims(nil), "c2ln") }, reason: Signature},

		{name: "garbage", token: func(*testing.T) string { return "garbage" }, reason: Malformed},
		{name: "empty", token: func(*testing.T) string { return "" }, reason: Malformed},
		{name: "an API token", token: func(*testing.T) string { tok, _ := NewToken(); return tok }, reason: Malformed},
		{name: "two segments", token: func(*testing.T) string { return "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0" }, reason: Malformed},
		{name: "four segments", token: func(t *testing.T) string { return rs(nil)(t) + ".x" }, reason: Malformed},
		{name: "not base64url", token: func(*testing.T) string { return "eyJhbGciOiJSUzI1NiJ9+.eyJzdWIiOiJ4In0.c2ln" }, reason: Malformed},
		{name: "header not JSON", token: func(*testing.T) string { return "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln" }, reason: Malformed},
		{name: "header without alg", token: func(t *testing.T) string { return unsigned(`{"typ":"JWT"}`, p.claims(nil), "c2ln") }, reason: Malformed},
		{name: "payload not JSON", token: func(*testing.T) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + ".bm90IGpzb24.c2ln"
		}, reason: Malformed},
		{name: "too long", token: func(*testing.T) string { return strings.Repeat("a", maxJWT) + ".b.c" }, reason: Malformed},
		{name: "signature not base64url", token: func(t *testing.T) string { return rs(nil)(t) + "=" }, reason: Malformed},
		{name: "signature segment not decodable", token: func(t *testing.T) string {
			parts := strings.Split(rs(nil)(t), ".")
			return parts[0] + "." + parts[1] + ".a"
		}, reason: Malformed},
		{name: "distributed claims without a source", token: rs(map[string]any{"_claim_names": map[string]any{"groups": ""}}), reason: Malformed},
		{name: "control characters in the user", token: rs(map[string]any{"preferred_username": "alice\nadmin"}), reason: Malformed},
		{name: "no user at all", token: rs(map[string]any{"preferred_username": nil, "sub": nil}), reason: Malformed},

		{name: "no gridmap role", token: rs(map[string]any{"roles": []string{"offline_access", "uma_authorization"}}), reason: NoGrant,
			detail: "expected roles claim roles with values viewer, reporter, dispatcher, editor, admin"},
		{name: "no roles claim", token: rs(map[string]any{"roles": nil}), reason: NoGrant, detail: "no gridmap role"},
		{name: "roles claim not strings", token: rs(map[string]any{"roles": 7}), reason: NoGrant, detail: "not a list of strings"},
		{name: "bare role without units", token: rs(map[string]any{"units": nil}), reason: NoGrant, detail: "the role editor needs unit codes in the units claim units"},
		{name: "bare role with empty units", token: rs(map[string]any{"units": []string{}}), reason: NoGrant},
		{name: "a bad unit code is refused", token: rs(map[string]any{"units": []string{"440306", "44O307"}}), reason: NoGrant, detail: `"44O307"`},
		{name: "a unit code not a string", token: rs(map[string]any{"units": []any{"440306", 440307}}), reason: NoGrant, detail: "not a list of unit codes"},
		{name: "a bad scoped code is refused", token: rs(map[string]any{"roles": []string{"editor@4403"}}), reason: NoGrant, detail: `"editor@4403"`},
		{name: "an empty scoped code is refused", token: rs(map[string]any{"roles": []string{"viewer@"}}), reason: NoGrant},
		{name: "an admin is not narrowed", token: rs(map[string]any{"roles": []string{"admin@440306"}}), reason: NoGrant, detail: "whole city"},
		{name: "role names unmapped under a role map", cfg: keycloak,
			token: rs(map[string]any{"realm_access": map[string]any{"roles": []string{"editor", "admin"}}}), reason: NoGrant,
			detail: "expected roles claim realm_access.roles with values gm-admin, gm-dispatcher, gm-viewer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := p.config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			now := testNow
			o := newTestOIDC(t, cfg, &now)
			raw := tc.token(t)
			id, err := o.Verify(context.Background(), raw)
			checkNoEcho(t, err, raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				actor := tc.actor
				if actor == "" {
					actor = "oidc:alice"
				}
				// Subject is always sub, whatever claim names the user.
				want := &Identity{Actor: actor, Kind: "oidc", Grants: tc.grants, Expires: testNow.Add(time.Hour), Subject: "5f0c2a4e-1d2b-4c3a-9e8f-7a6b5c4d3e2f"}
				if !reflect.DeepEqual(id, want) {
					t.Errorf("identity\n got %+v\nwant %+v", id, want)
				}
				return
			}
			var ce *CredentialError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, %v; want a %s credential error", id, err, tc.reason)
			}
			if id != nil {
				t.Errorf("an identity with an error: %+v", id)
			}
			if ce.Reason != tc.reason {
				t.Errorf("reason %q (%s), want %q", ce.Reason, ce.Detail, tc.reason)
			}
			if !strings.Contains(ce.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", ce.Detail, tc.detail)
			}
			if strings.Contains(ce.Detail, "oidc:") || strings.Contains(ce.Detail, "zz-evil") {
				t.Errorf("detail %q passes on the library's or the client's text", ce.Detail)
			}
		})
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	k := keysOnce()
	p := newIDP(t)
	now := testNow
	o := newTestOIDC(t, p.config(), &now)
	ctx := context.Background()
	old := sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))
	if _, err := o.Verify(ctx, old); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	fetched := p.jwks.Load()
	if _, err := o.Verify(ctx, old); err != nil || p.jwks.Load() != fetched {
		t.Fatalf("a cached key: %v, %d JWKS fetches after %d", err, p.jwks.Load(), fetched)
	}
	p.setKeys(jose.JSONWebKey{Key: k.rsa2.Public(), KeyID: "rsa2", Algorithm: "RS256", Use: "sig"})
	if _, err := o.Verify(ctx, sign(t, jose.RS256, k.rsa2, "rsa2", p.claims(nil))); err != nil {
		t.Fatalf("a token with the new key: %v", err)
	}
	_, err := o.Verify(ctx, old)
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Reason != Signature {
		t.Fatalf("a token of the retired key: %v, want a signature error", err)
	}
}

func TestOIDCProviderDown(t *testing.T) {
	k := keysOnce()
	ctx := context.Background()
	notCredential := func(t *testing.T, err error) {
		t.Helper()
		var ce *CredentialError
		if err == nil || errors.As(err, &ce) {
			t.Fatalf("Verify = %v, want an error that is no credential error", err)
		}
	}

	t.Run("JWKS unreachable", func(t *testing.T) {
		p := newIDP(t)
		cfg := p.config()
		cfg.JWKSURL = p.srv.URL + "/jwks"
		p.srv.Close()
		now := testNow
		o := newTestOIDC(t, cfg, &now)
		raw := sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))
		_, err := o.Verify(ctx, raw)
		notCredential(t, err)
		t.Log(err)
		if strings.Contains(err.Error(), strings.Split(raw, ".")[2]) {
			t.Errorf("the error echoes the token: %v", err)
		}
	})

	t.Run("JWKS failing", func(t *testing.T) {
		p := newIDP(t)
		p.setDown(true)
		cfg := p.config()
		cfg.JWKSURL = p.srv.URL + "/jwks"
		now := testNow
		o := newTestOIDC(t, cfg, &now)
		_, err := o.Verify(ctx, sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil)))
		notCredential(t, err)
		p.setDown(false)
		if _, err := o.Verify(ctx, sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))); err != nil {
			t.Fatalf("the JWKS back: %v", err)
		}
	})

	t.Run("cached keys outlive the provider", func(t *testing.T) {
		p := newIDP(t)
		now := testNow
		o := newTestOIDC(t, p.config(), &now)
		raw := sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))
		if _, err := o.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		p.srv.Close()
		if _, err := o.Verify(ctx, raw); err != nil {
			t.Fatalf("with the provider gone: %v", err)
		}
		// A key the cache lacks needs the provider.
		notCredential(t, func() error {
			_, err := o.Verify(ctx, sign(t, jose.RS256, k.rsa2, "rsa2", p.claims(nil)))
			return err
		}())
	})

	t.Run("discovery lazy and retried", func(t *testing.T) {
		p := newIDP(t)
		p.setDown(true)
		now := testNow
		o := newTestOIDC(t, p.config(), &now)
		if n := p.discovery.Load(); n != 0 {
			t.Fatalf("NewOIDC made %d discovery requests", n)
		}
		// Garbage and refused algorithms never reach the provider.
		o.Verify(ctx, "garbage")
		o.Verify(ctx, unsigned(`{"alg":"none"}`, p.claims(nil), ""))
		if n := p.discovery.Load(); n != 0 {
			t.Fatalf("refused tokens made %d discovery requests", n)
		}
		raw := sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))
		_, err := o.Verify(ctx, raw)
		notCredential(t, err)
		_, err = o.Verify(ctx, raw)
		notCredential(t, err)
		if n := p.discovery.Load(); n != 1 {
			t.Errorf("%d discovery requests within the retry interval, want 1", n)
		}
		p.setDown(false)
		now = now.Add(discoveryRetry)
		if _, err := o.Verify(ctx, raw); err != nil {
			t.Fatalf("the provider back: %v", err)
		}
		if _, err := o.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if n := p.discovery.Load(); n != 2 {
			t.Errorf("%d discovery requests, want 2 (discovery done once it succeeds)", n)
		}
	})

	t.Run("discovery names another issuer", func(t *testing.T) {
		p := newIDP(t)
		cfg := p.config()
		cfg.Issuer = p.srv.URL + "/"
		now := testNow
		o := newTestOIDC(t, cfg, &now)
		_, err := o.Verify(ctx, sign(t, jose.RS256, k.rsa, "rsa1", p.claims(map[string]any{"iss": cfg.Issuer})))
		notCredential(t, err)
	})

	t.Run("caller gives up", func(t *testing.T) {
		p := newIDP(t)
		now := testNow
		o := newTestOIDC(t, p.config(), &now)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		raw := sign(t, jose.RS256, k.rsa, "rsa1", p.claims(nil))
		_, err := o.Verify(cctx, raw)
		notCredential(t, err)
		if _, err := o.Verify(ctx, raw); err != nil {
			t.Fatalf("a cancelled request must not hold discovery back: %v", err)
		}
	})
}

func TestNewOIDCConfig(t *testing.T) {
	good := OIDCConfig{Issuer: "https://sso.city.example/realms/city", Audience: "gridmap"}
	for _, tc := range []struct {
		name string
		edit func(*OIDCConfig)
		err  string // "" for a good config
	}{
		{"defaults", func(*OIDCConfig) {}, ""},
		{"keycloak", func(c *OIDCConfig) {
			c.RolesClaim, c.RoleMap, c.JWKSURL = "realm_access.roles", map[string]Role{"gm-admin": Admin}, "https://sso.city.example/realms/city/protocol/openid-connect/certs"
		}, ""},
		{"http issuer", func(c *OIDCConfig) { c.Issuer = "http://keycloak:8080/realms/city" }, ""},
		{"PS256 and EdDSA", func(c *OIDCConfig) { c.Algorithms = []string{"PS256", "EdDSA"} }, ""},
		{"no issuer", func(c *OIDCConfig) { c.Issuer = "" }, "issuer"},
		{"relative issuer", func(c *OIDCConfig) { c.Issuer = "sso.city.example" }, "issuer"},
		{"ftp issuer", func(c *OIDCConfig) { c.Issuer = "ftp://sso.city.example" }, "issuer"},
		{"no audience", func(c *OIDCConfig) { c.Audience = " " }, "audience"},
		{"bad JWKS URL", func(c *OIDCConfig) { c.JWKSURL = "/certs" }, "JWKS URL"},
		{"empty claim name in path", func(c *OIDCConfig) { c.RolesClaim = "realm_access..roles" }, "roles claim"},
		{"trailing dot", func(c *OIDCConfig) { c.UnitsClaim = "units." }, "units claim"},
		{"unknown role in map", func(c *OIDCConfig) { c.RoleMap = map[string]Role{"gm-boss": "boss"} }, "gm-boss"},
		{"empty key in map", func(c *OIDCConfig) { c.RoleMap = map[string]Role{"": Viewer} }, "empty"},
		{"alg none", func(c *OIDCConfig) { c.Algorithms = []string{"RS256", "none"} }, `"none"`},
		{"HS256", func(c *OIDCConfig) { c.Algorithms = []string{"HS256"} }, `"HS256"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			o, err := NewOIDC(cfg)
			if tc.err == "" {
				if err != nil || o == nil {
					t.Fatalf("NewOIDC: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("NewOIDC = %v, want an error naming %s", err, tc.err)
			}
		})
	}

	// The configuration is the verifier's own: later edits by the caller
	// do not reach it.
	m := map[string]Role{"gm-viewer": Viewer}
	algs := []string{"RS256"}
	o, err := NewOIDC(OIDCConfig{Issuer: good.Issuer, Audience: good.Audience, RoleMap: m, Algorithms: algs})
	if err != nil {
		t.Fatal(err)
	}
	m["gm-viewer"] = Admin
	algs[0] = "none"
	if o.cfg.RoleMap["gm-viewer"] != Viewer || o.cfg.Algorithms[0] != "RS256" {
		t.Errorf("the caller's map or slice is shared: %v %v", o.cfg.RoleMap, o.cfg.Algorithms)
	}
}

func TestParseRoleMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]Role
		err  string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"gm-admin=admin,gm-editor=editor", map[string]Role{"gm-admin": Admin, "gm-editor": Editor}, ""},
		{" gm-viewer = viewer , city:staff=viewer ", map[string]Role{"gm-viewer": Viewer, "city:staff": Viewer}, ""},
		{"gm-admin=boss", nil, `unknown role "boss"`},
		{"gm-admin", nil, "provider-role=gridmap-role expected"},
		{"=admin", nil, "no provider role"},
		{"a=admin,,b=viewer", nil, "item 2 is empty"},
		{"a=admin,", nil, "item 2 is empty"},
		{"a=admin,a=viewer", nil, `"a" given twice`},
		{"a=viewer=x", nil, "unknown role"},
	} {
		got, err := ParseRoleMap(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRoleMap(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("ParseRoleMap(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	tok, _ := NewToken()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true}, // unsigned: still a JWT, refused as such
		{"a.b.c", true},
		{"", false},
		{"..", false},
		{".b.c", false},
		{"a..c", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{"a.b.c=", false},
		{"a+b.c.d", false},
		{"a.b/.c", false},
		{"a.b. c", false},
		{tok, false},
		{"Bearer a.b.c", false},
	} {
		if got := LooksLikeJWT(tc.in); got != tc.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func BenchmarkOIDCVerify(b *testing.B) {
	k := keysOnce()
	p := newIDP(b)
	now := testNow
	o := newTestOIDC(b, p.config(), &now)
	raw := sign(b, jose.RS256, k.rsa, "rsa1", p.claims(map[string]any{"roles": []string{"editor", "viewer@*", "offline_access"}, "units": []string{"440306", "440307001"}}))
	ctx := context.Background()
	if _, err := o.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
