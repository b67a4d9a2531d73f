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

	"gridmap/api"
	"gridmap/data/pgtest"
)

// One server on the shared full-scale demo city for all HTTP benchmarks.
var (
	benchOnce sync.Once
	benchURL  string
)

func benchServer(b *testing.B) (string, [][2]float64) {
	s := pgtest.SharedFullDemo(b)
	benchOnce.Do(func() {
		// Reads as a city-wide viewer would make them, each with its
		// token (BenchmarkHTTPLocateSinglePublic: without one).
		srv, err := api.New(context.Background(), s, api.Options{PublicRead: true})
		if err != nil {
			b.Fatal(err)
		}
		benchURL = httptest.NewServer(srv.Handler()).URL
	})
	if benchURL == "" {
		b.Fatal("no benchmark server")
	}
	return benchURL, pgtest.RandomPoints(b, s, 65536, 3)
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// BenchmarkHTTPLocateSingle: GET /v1/locate, one point per request, with
// 2×GOMAXPROCS concurrent keep-alive clients.
func BenchmarkHTTPLocateSingle(b *testing.B) {
	url, pts := benchServer(b)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(pts))
		for pb.Next() {
			p := pts[i%len(pts)]
			i++
			resp, err := benchClient.Get(fmt.Sprintf("%s/v1/locate?lon=%.7f&lat=%.7f", url, p[0], p[1]))
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
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
