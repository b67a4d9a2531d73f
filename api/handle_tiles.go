package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// tileRoutes registers the vector tiles, their TileJSON and the wall style.
func (s *Server) tileRoutes(r *mux.Router) {
	s.handle(r, "/tiles/{layer}/{z}/{x}/{y}.mvt", s.tile, http.MethodGet, http.MethodHead)
	s.handle(r, "/tiles/{layer}.json", s.tileJSON, http.MethodGet, http.MethodHead)
	s.handle(r, "/styles/wall.json", s.wallStyle, http.MethodGet, http.MethodHead)
}

// tileCache is the server's cache of rendered tiles and the reader of the
// store's tile changes that keeps it exact.
type tileCache struct {
	cache   *tiles.Cache
	changes *tiles.Changes
}

// tileRenderTimeout bounds one render; it runs detached from the request
// that started it, since concurrent requests for the tile wait on it too.
const tileRenderTimeout = time.Minute

// tileListenerGrace is how long the tile-change listener may be down before
// the cache is cleared on reconnection instead of caught up: changes are
// kept an hour (migration 004).
const tileListenerGrace = 30 * time.Minute

func (s *Server) initTileCache(ctx context.Context) error {
	size := s.opts.TileCacheBytes
	switch {
	case size == 0:
		size = DefaultTileCacheBytes
	case size < 0:
		size = 0
	}
	c := tiles.NewCache(size)
	ch, err := tiles.NewChanges(ctx, s.store.Pool, c, s.tiles.Catalogue)
	if err != nil {
		return err
	}
	ch.Seen = s.store.RaiseFloor
	s.tileMem = &tileCache{cache: c, changes: ch}
	s.metrics.reg.MustRegister(newTileCacheCollector(c))
	return nil
}

// TileCacheStats are the tile cache's counters.
func (s *Server) TileCacheStats() tiles.CacheStats { return s.tileMem.cache.Stats() }

// syncTiles applies the committed tile changes now: a write's own server
// drops the tiles it changed before it answers, so the writer's next tile
// request shows the change. Other servers learn of it by FollowTiles.
func (s *Server) syncTiles(ctx context.Context) {
	if res, err := s.tileMem.changes.Sync(ctx); err != nil {
		s.log.Error("tile cache: read changes", "err", err)
	} else if res.Changes > 0 {
		s.log.Debug("tile cache: changes applied", "changes", res.Changes, "dropped", res.Dropped, "last_id", res.LastID)
	}
}

// FollowTiles keeps the tile cache exact when any process changes units or
// objects: it follows the tile changes channel and, on each notice (and on
// every (re)connection, to catch up), reads the changes it has not seen
// and drops the cached tiles they touch. After a listener outage longer
// than tileListenerGrace the cache is cleared instead. It returns when ctx
// ends.
func (s *Server) FollowTiles(ctx context.Context) {
	s.store.Follow(ctx, tiles.ChangesChannel, s.log, func(down time.Duration) {
		if down > tileListenerGrace {
			n := s.tileMem.cache.Clear()
			s.log.Warn("tile cache cleared after a long listener outage", "down_seconds", down.Seconds(), "tiles", n)
		}
		s.syncTiles(ctx)
	})
}

// noTileset is the 404 of a tileset the catalogue does not have.
func (s *Server) noTileset(name string) error {
	return notFound("no tileset %q: there are %s", name, strings.Join(s.tiles.Catalogue.Names(), ", "))
}

// tileCRS reads a tile's ?crs=: wgs84 or gcj02 (BD-09 has no Web
// Mercator tile grid: a 400 saying so).
func tileCRS(r *http.Request) (geo.CRS, error) {
	crs, err := crsParam(r)
	if err != nil {
		return "", err
	}
	if err := tiles.TileCRS(crs); err != nil {
		return "", &paramError{"crs", err.Error()}
	}
	return crs, nil
}

// tile: GET /tiles/{layer}/{z}/{x}/{y}.mvt?crs=, from the cache (X-Cache:
// hit) or rendered (X-Cache: miss). An empty tile is 204 No Content
// (MapLibre draws nothing, as for an empty 200). Tiles drawn in GCJ-02 are
// cached under their own name (tiles.CRSLayer), which the tile changes
// reach too.
func (s *Server) tile(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if _, ok := s.tiles.Catalogue.Tileset(v["layer"]); !ok {
		return s.noTileset(v["layer"])
	}
	zxy, err := tileParams(r)
	if err != nil {
		return err
	}
	crs, err := tileCRS(r)
	if err != nil {
		return err
	}
	// Tile coordinates are not positions, but a client checking what it
	// draws over learns it here as from every other answer.
	setContentCRS(w, crs)
	k := tiles.Key{Layer: v["layer"], Z: zxy[0], X: zxy[1], Y: zxy[2]}
	if r.URL.Query().Has("as_of") {
		return s.tileAsOf(w, r, k, crs)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), tileRenderTimeout)
	defer cancel()
	ck := k
	ck.Layer = tiles.CRSLayer(k.Layer, crs)
	e, hit, err := s.tileMem.cache.GetRendered(ctx, ck, func(ctx context.Context) (tiles.Rendered, error) {
		return s.tiles.RenderTileIn(ctx, k.Layer, k.Z, k.X, k.Y, nil, crs)
	})
	if err != nil {
		return err
	}
	setXCache(w, hit)
	return writeTile(w, r, e, false)
}

func setXCache(w http.ResponseWriter, hit bool) {
	if hit {
		w.Header().Set("X-Cache", "hit")
	} else {
		w.Header().Set("X-Cache", "miss")
	}
}

// tileAsOf: GET /tiles/units/{z}/{x}/{y}.mvt?as_of= — the units valid at a
// past instant. Once the instant is settled (no transaction that could
// still write a version valid then is open) the tile never changes: it is
// kept in the tile cache under the fingerprint of the versions valid then
// (so instants between two edits share it, and no invalidation ever
// touches it), and answered as immutable. Before that (an instant a few
// moments ago, a write still running) it is rendered each time and
// revalidated like a current tile.
func (s *Server) tileAsOf(w http.ResponseWriter, r *http.Request, k tiles.Key, crs geo.CRS) error {
	if l, _ := s.tiles.Catalogue.Tileset(k.Layer); !l.HasHistory() {
		return &paramError{"as_of", fmt.Sprintf("as_of is not supported on %s tiles: only units keep their history (/tiles/units/{z}/{x}/{y}.mvt?as_of=)", k.Layer)}
	}
	asOf, err := s.asOfParam(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), tileRenderTimeout)
	defer cancel()
	render := func(ctx context.Context) (tiles.Rendered, error) {
		return s.tiles.RenderTileIn(ctx, k.Layer, k.Z, k.X, k.Y, asOf, crs)
	}
	fp, settled, err := s.unitsAt(ctx, *asOf, grid.BaseLayer)
	if err != nil {
		return err
	}
	if !settled {
		t, err := render(ctx)
		if err != nil {
			return err
		}
		e, err := tiles.NewEntry(t.MVT)
		if err != nil {
			return err
		}
		setXCache(w, false)
		return writeTile(w, r, e, false)
	}
	// "units@<fingerprint>" ("units+gcj02@…"): a name no tile change ever
	// names.
	pk := k
	pk.Layer = tiles.CRSLayer(k.Layer, crs) + "@" + fp.Key()
	e, hit, err := s.tileMem.cache.GetRendered(ctx, pk, render)
	if err != nil {
		return err
	}
	setXCache(w, hit)
	return writeTile(w, r, e, true)
}

// writeTile answers a tile with a content ETag (same data, same bytes, same
// tag), 304 on If-None-Match, the stored gzip when the client takes it
// (decompressed otherwise), 204 when empty. Clients revalidate on every
// use (a 304 costs a round trip and no bytes): any edit may change a tile,
// and a live wall that reloads events tiles after a change must not be
// answered from its browser's cache. Tiles that change with the clock
// (events) expire in the server's cache instead. An immutable tile (units
// as of a settled instant) is cached by clients and proxies for good.
func writeTile(w http.ResponseWriter, r *http.Request, e *tiles.Entry, immutable bool) error {
	h := w.Header()
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	}
	h.Set("Vary", "Accept-Encoding")
	if notModified(w, r, e.ETag) {
		return nil
	}
	h.Set("ETag", e.ETag)
	if e.Empty {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h.Set("Content-Type", "application/vnd.mapbox-vector-tile")
	body := e.Gzip
	if acceptsEncoding(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
	} else {
		mvt, err := e.MVT()
		if err != nil {
			return err
		}
		body = mvt
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return nil
}

// baseURL is the scheme and host the client used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = fh
	}
	return scheme + "://" + host
}

// tileJSON: GET /tiles/{layer}.json?crs= (TileJSON 3.0.0). In GCJ-02 the
// tile URLs carry crs=gcj02, and bounds and centre are GCJ-02 positions
// (the map they are laid on is drawn in GCJ-02).
func (s *Server) tileJSON(w http.ResponseWriter, r *http.Request) error {
	name := mux.Vars(r)["layer"]
	l, ok := s.tiles.Catalogue.Tileset(name)
	if !ok {
		return s.noTileset(name)
	}
	crs, err := tileCRS(r)
	if err != nil {
		return err
	}
	tj, err := tiles.Describe(r.Context(), s.store.Reader(r.Context()), l, baseURL(r)+"/tiles/"+name)
	if err != nil {
		return err
	}
	if crs != geo.WGS84 {
		for i, u := range tj.Tiles {
			tj.Tiles[i] = u + "?crs=" + string(crs)
		}
		tj.Bounds[0], tj.Bounds[1] = geo.FromWGS84(crs, tj.Bounds[0], tj.Bounds[1])
		tj.Bounds[2], tj.Bounds[3] = geo.FromWGS84(crs, tj.Bounds[2], tj.Bounds[3])
		tj.Center[0], tj.Center[1] = geo.FromWGS84(crs, tj.Center[0], tj.Center[1])
	}
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctJSON, tj)
	return nil
}

// wallStyle: GET /styles/wall.json, the dark command-centre style.
func (s *Server) wallStyle(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, ctJSON, tiles.WallStyle(baseURL(r), s.tiles.Catalogue.Zooms))
	return nil
}

// tileParams reads z/x/y from the path; a non-integer or a tile outside the
// pyramid is a 400.
func tileParams(r *http.Request) (zxy [3]int, err error) {
	v := mux.Vars(r)
	for i, k := range []string{"z", "x", "y"} {
		n, err := strconv.Atoi(v[k])
		if err != nil {
			return zxy, &paramError{k, fmt.Sprintf("%s=%q is not an integer", k, geo.Excerpt(v[k], geo.MaxExcerpt))}
		}
		zxy[i] = n
	}
	if err := tiles.CheckTile(zxy[0], zxy[1], zxy[2]); err != nil {
		return zxy, &paramError{"z/x/y", err.Error()}
	}
	return zxy, nil
}
