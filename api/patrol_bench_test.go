package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// BenchmarkPatrolIngest posts patrol batches over HTTP from 8 clients at
// once, as phones of 200 workers walking inside the small demo city would
// (a fix every second each), and reports points stored per second. Batch
// sizes: 20 (a phone's minute of fixes, sent every 20 s) and 500 (a relay
// or an offline phone catching up).
func BenchmarkPatrolIngest(b *testing.B) {
	store := pgtest.NewDemo(b)
	srv, err := api.New(context.Background(), store, api.Options{WriteRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	tok := adminToken(b, store)
	const workers = 200
	ids := make([]int64, workers)
	for i := range ids {
		p, err := store.CreatePerson(context.Background(), grid.Person{Name: fmt.Sprintf("巡查员%d", i), Role: grid.RoleWorker, Status: grid.PersonActive})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = p.ID
	}
	var lon0, lat0 float64
	if err := store.Pool.QueryRow(context.Background(), `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units
		WHERE level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 1) x`).Scan(&lon0, &lat0); err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-20 * 24 * time.Hour).Truncate(time.Second)
	for _, size := range []int{20, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var seq atomic.Int64 // each batch takes its own seconds
			var stored atomic.Int64
			var wg sync.WaitGroup
			next := make(chan int)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			for c := 0; c < 8; c++ {
				wg.Go(func() {
					for i := range next {
						w := ids[i%workers]
						s0 := seq.Add(int64(size)) - int64(size)
						pts := make([]map[string]any, size)
						for k := range pts {
							step := float64(s0 + int64(k))
							pts[k] = map[string]any{"worker": w, "t": base.Add(time.Duration(s0+int64(k)) * time.Second).Format(time.RFC3339),
								"lon": lon0 + 0.00001*math.Mod(step, 200), "lat": lat0 + 0.00001*float64(i%workers), "accuracy": 8}
						}
						body, _ := json.Marshal(map[string]any{"points": pts})
						req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/patrols/points", strings.NewReader(string(body)))
						req.Header.Set("Authorization", "Bearer "+tok)
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						var res struct{ Stored int }
						raw, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &res) != nil {
							b.Errorf("%d: %s", resp.StatusCode, raw)
							return
						}
						stored.Add(int64(res.Stored))
					}
				})
			}
			start := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				next <- i
			}
			close(next)
			wg.Wait()
			b.ReportMetric(float64(stored.Load())/time.Since(start).Seconds(), "points/s")
		})
	}
}
