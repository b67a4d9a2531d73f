package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// BenchmarkUnitTilesCold serves random z14 unit tiles of the city's centre
// with the tile cache off, drawn by each renderer, through the whole
// handler (no network): what a cache miss costs the server.
func BenchmarkUnitTilesCold(b *testing.B) {
	s := pgtest.SharedFullDemo(b)
	for _, r := range []string{api.TileRendererMemory, api.TileRendererPostGIS} {
		srv, err := api.New(context.Background(), s, api.Options{PublicRead: true, TileCacheBytes: -1, TileRenderer: r})
		if err != nil {
			b.Fatal(err)
		}
		h := srv.Handler()
		b.Run(r, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				// 14/13360–13383/7120–7143: the centre of the demo city
				req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/tiles/units/14/%d/%d.mvt", 13360+i%24, 7120+(i/24)%24), nil)
				req.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK && w.Code != http.StatusNoContent {
					b.Fatalf("%s: %d %s", req.URL, w.Code, w.Body)
				}
			}
		})
	}
}
