package api

import (
	"crypto/sha256"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gridmap/auth"
	"gridmap/data"
)

// BenchmarkIdentify is the server's side of checking a credential, alone:
// an API token (a map lookup once the tokens are loaded) and a JWT already
// verified once (a hash and a lookup; BenchmarkOIDCVerify in auth is the
// first sight of one). The HTTP benchmarks (BenchmarkHTTPAuth…) show it in
// a whole request.
func BenchmarkIdentify(b *testing.B) {
	tok, hash := auth.NewToken()
	s := &Server{opts: Options{OIDC: &auth.OIDC{}}, tokens: &tokenCache{byHash: map[[32]byte]*data.Token{
		[32]byte(hash): {Name: "bench", Role: auth.Viewer, Scopes: []string{auth.City}, Hash: hash},
	}}}
	s.tokens.following.Store(true)
	jwt := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0." + strings.Repeat("eyJhdWQiOlsiZ3JpZG1hcCJdfQ", 20) + "." + strings.Repeat("c2lnbmF0dXJl", 28)
	s.jwts.ids = map[[32]byte]*auth.Identity{sha256.Sum256([]byte(jwt)): {Actor: "oidc:bench", Expires: time.Now().Add(time.Hour)}}
	for _, c := range []struct{ name, cred string }{{"token", tok}, {"jwt", jwt}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/v1/locate", nil)
			r.Header.Set("Authorization", "Bearer "+c.cred)
			b.ReportAllocs()
			for b.Loop() {
				if id, err := s.identify(r); err != nil || id == nil {
					b.Fatal(id, err)
				}
			}
		})
	}
}
