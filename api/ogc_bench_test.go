package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/data/pgtest"
)

// BenchmarkOGCItems: GET /ogc/collections/grids/items?limit=1000 (GeoJSON)
// on the full demo city (19,700 grids, 20 pages), and the same page served
// the way pg_featureserv serves it (docs/benchmarks.md, "OGC items").
//
//	go test -run '^$' -bench BenchmarkOGCItems -benchtime 200x ./api/
//
// cold: one client walks every page by its next link, once, right after
// the server started (each page's first request); warm: 16 keep-alive
// clients ask for random pages.
func BenchmarkOGCItems(b *testing.B) {
	base, _ := benchServer(b)
	store := pgtest.SharedFullDemo(b)
	const limit = 1000
	var pages []string // the path of every page, found by walking next links
	var coldPage time.Duration
	features := 0
	b.Run("gridmap/cold", func(b *testing.B) {
		// One walk, whatever b.N: only a page's first request is cold.
		if pages == nil {
			start := time.Now()
			next := "/ogc/collections/grids/items?limit=" + strconv.Itoa(limit)
			for next != "" {
				pages = append(pages, next)
				var p struct {
					Features []json.RawMessage
					Links    []struct{ Rel, Href string }
				}
				if err := json.Unmarshal(benchGet(b, base+next), &p); err != nil {
					b.Fatal(err)
				}
				features += len(p.Features)
				next = ""
				for _, l := range p.Links {
					if l.Rel == "next" {
						next = l.Href[len(base):]
					}
				}
			}
			coldPage = time.Since(start) / time.Duration(len(pages))
			if features < 19000 {
				b.Fatalf("walked %d grids", features)
			}
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(coldPage.Microseconds())/1000, "ms/page")
		b.ReportMetric(float64(features)/(coldPage.Seconds()*float64(len(pages))), "features/s")
	})
	b.Run("gridmap/warm", func(b *testing.B) {
		benchPages(b, func(i int) string { return base + pages[i%len(pages)] }, limit)
	})
	fs := httptest.NewServer(featureservItems(store))
	b.Cleanup(fs.Close)
	b.Run("featureserv-way/warm", func(b *testing.B) {
		benchPages(b, func(i int) string {
			return fmt.Sprintf("%s/collections/grids/items?limit=%d&offset=%d", fs.URL, limit, (i%len(pages))*limit)
		}, limit)
	})
}

// benchGet GETs url and returns the body of a 200.
func benchGet(b *testing.B, url string) []byte {
	resp, err := benchClient.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

// benchPages GETs url(i) from 16 keep-alive clients (8 per CPU on the 2-CPU
// machine) and reports requests and features per second.
func benchPages(b *testing.B, url func(i int) string, perPage int) {
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1 << 20)
		for pb.Next() {
			resp, err := benchClient.Get(url(i))
			i++
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(b.N*perPage)/b.Elapsed().Seconds(), "features/s")
}

// featureservItems serves a page of grids the way pg_featureserv does
// (github.com/CrunchyData/pg_featureserv, which the module proxy here
// refuses to fetch): its SQL, ST_AsGeoJSON of the geometry with the
// properties as columns and LIMIT/OFFSET paging, each feature's properties
// put in a map and the collection marshalled with encoding/json. It is a
// stand-in written from its source's approach, not pg_featureserv itself.
func featureservItems(store *data.Store) http.Handler {
	type feature struct {
		Type       string           `json:"type"`
		ID         string           `json:"id"`
		Geometry   *json.RawMessage `json:"geometry"`
		Properties map[string]any   `json:"properties"`
	}
	type collection struct {
		Type           string     `json:"type"`
		Features       []*feature `json:"features"`
		NumberReturned int        `json:"numberReturned"`
		TimeStamp      string     `json:"timeStamp"`
		Links          []any      `json:"links"`
	}
	names := []string{"code", "name", "level", "parent_code", "layer", "area_m2", "complete", "version", "valid_from", "valid_to"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		rows, err := store.Pool.Query(r.Context(), `SELECT ST_AsGeoJSON(ST_Transform(geom, 4326)) AS _geojson,
			code, name, level, parent_code, layer, area_m2, complete, version, valid_from, valid_to
			FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY code LIMIT $1 OFFSET $2`, limit, offset)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		fc := collection{Type: "FeatureCollection", TimeStamp: time.Now().UTC().Format(time.RFC3339), Links: []any{}}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			g := json.RawMessage(vals[0].(string))
			props := make(map[string]any, len(names))
			for i, n := range names {
				props[n] = vals[i+1]
			}
			fc.Features = append(fc.Features, &feature{Type: "Feature", ID: vals[1].(string), Geometry: &g, Properties: props})
		}
		if rows.Err() != nil {
			http.Error(w, rows.Err().Error(), 500)
			return
		}
		fc.NumberReturned = len(fc.Features)
		out, err := json.Marshal(fc)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/geo+json")
		_, _ = w.Write(out)
	})
}
