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

// One full-scale demo city and one server for all HTTP benchmarks.
var (
	benchOnce sync.Once
	benchURL  string
	benchPts  [][2]float64
)

type keepAlive struct{ testing.TB }

func (k *keepAlive) Cleanup(func()) {}

func benchServer(b *testing.B) (string, [][2]float64) {
	benchOnce.Do(func() {
		s := pgtest.NewFullDemo(&keepAlive{TB: b})
		srv, err := api.New(context.Background(), s, api.Options{})
		if err != nil {
			b.Fatal(err)
		}
		benchURL = httptest.NewServer(srv.Handler()).URL
		var minX, minY, maxX, maxY float64
		if err := s.Pool.QueryRow(context.Background(),
			`SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL) x`).
			Scan(&minX, &minY, &maxX, &maxY); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for range 65536 {
			benchPts = append(benchPts, [2]float64{minX + rng.Float64()*(maxX-minX), minY + rng.Float64()*(maxY-minY)})
		}
	})
	if benchURL == "" {
		b.Fatal("no benchmark server")
	}
	return benchURL, benchPts
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
