package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// One server on the shared full-scale demo city for all HTTP benchmarks,
// reading as the wall does (public reads) or with a credential: an API
// token, or a JWT of an OpenID provider on loopback.
var (
	benchOnce  sync.Once
	benchURL   string
	benchToken string
	benchJWT   string
)

func benchServer(b *testing.B) (string, [][2]float64) {
	s := pgtest.SharedFullDemo(b)
	benchOnce.Do(func() {
		idp := newTestIDP(b)
		o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.srv.URL, Audience: accessAudience})
		if err != nil {
			b.Fatal(err)
		}
		srv, err := api.New(context.Background(), s, api.Options{PublicRead: true, OIDC: o})
		if err != nil {
			b.Fatal(err)
		}
		go srv.FollowTokens(context.Background())
		benchURL = httptest.NewServer(srv.Handler()).URL
		benchToken = mintToken(b, s, fmt.Sprintf("bench-viewer-%d", time.Now().UnixNano()), auth.Viewer, auth.City)
		benchJWT = idp.sign(b, idp.key, idp.claims(map[string]any{"roles": []string{"viewer"}, "units": []string{auth.City}}))
	})
	if benchURL == "" {
		b.Fatal("no benchmark server")
	}
	return benchURL, pgtest.RandomPoints(b, s, 65536, 3)
}

// credentials of the benchmarks: none (public reads), an API token, a JWT.
func benchCredentials() []struct{ name, header string } {
	return []struct{ name, header string }{{"public", ""}, {"token", "Bearer " + benchToken}, {"jwt", "Bearer " + benchJWT}}
}

// benchGets runs GETs of path(i) from 2×GOMAXPROCS keep-alive clients and
// reports their rate in unit.
func benchGets(b *testing.B, authz, unit string, path func(i int) string) {
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1 << 20)
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, benchURL+path(i), nil)
			i++
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			resp, err := benchClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkHTTPAuthLocate: GET /v1/locate, one point a request, without a
// credential and with each kind: what checking a credential costs.
func BenchmarkHTTPAuthLocate(b *testing.B) {
	_, pts := benchServer(b)
	for _, c := range benchCredentials() {
		b.Run(c.name, func(b *testing.B) {
			benchGets(b, c.header, "req/s", func(i int) string {
				p := pts[i%len(pts)]
				return fmt.Sprintf("/v1/locate?lon=%.7f&lat=%.7f", p[0], p[1])
			})
		})
	}
}

// BenchmarkHTTPAuthTile: a warm (cached) district tile, the cheapest read
// there is, so the share of the credential check is at its largest.
func BenchmarkHTTPAuthTile(b *testing.B) {
	benchServer(b)
	for _, c := range benchCredentials() {
		b.Run(c.name, func(b *testing.B) {
			benchGets(b, c.header, "req/s", func(int) string { return "/tiles/units/8/209/111.mvt" })
		})
	}
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// BenchmarkHTTPLocateSingle: GET /v1/locate, one point per request, with
// 2×GOMAXPROCS concurrent keep-alive clients (as the wall: no credential).
func BenchmarkHTTPLocateSingle(b *testing.B) {
	_, pts := benchServer(b)
	benchGets(b, "", "points/s", func(i int) string {
		p := pts[i%len(pts)]
		return fmt.Sprintf("/v1/locate?lon=%.7f&lat=%.7f", p[0], p[1])
	})
}

// BenchmarkHTTPLocateBatch: POST /v1/locate with 1,000 points per request.
func BenchmarkHTTPLocateBatch(b *testing.B) {
	url, pts := benchServer(b)
	const batch = 1000
	bodies := make([][]byte, 16)
	for k := range bodies {
		points := make([][2]float64, batch)
		for j := range points {
			points[j] = pts[(k*batch+j)%len(pts)]
		}
		bodies[k], _ = json.Marshal(map[string]any{"points": points})
	}
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		k := rand.IntN(len(bodies))
		for pb.Next() {
			resp, err := benchClient.Post(url+"/v1/locate", "application/json", bytes.NewReader(bodies[k%len(bodies)]))
			k++
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "points/s")
}
