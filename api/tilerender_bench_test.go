package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// BenchmarkUnitTilesCold serves z14 unit tiles of the city's centre with
// the tile cache off, drawn by each renderer, over loopback HTTP from
// 2×GOMAXPROCS keep-alive clients: what cache misses cost a server
// (docs/benchmarks.md, unit tiles from memory).
func BenchmarkUnitTilesCold(b *testing.B) {
	s := pgtest.SharedFullDemo(b)
	for _, r := range []string{api.TileRendererMemory, api.TileRendererPostGIS} {
		srv, err := api.New(context.Background(), s, api.Options{PublicRead: true, TileCacheBytes: -1, TileRenderer: r})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
		b.Run(r, func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// 14/13360–13383/7120–7143: the centre of the demo city
					i := int(next.Add(1))
					req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/tiles/units/14/%d/%d.mvt", hs.URL, 13360+i%24, 7120+(i/24)%24), nil)
					req.Header.Set("Accept-Encoding", "gzip")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
						b.Errorf("%s: %d", req.URL, resp.StatusCode)
						return
					}
				}
			})
		})
		hs.Close()
	}
}
