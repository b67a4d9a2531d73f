package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gridmap/tiles"
)

// tileRoutes registers the vector tiles, their TileJSON and the wall style.
func (s *Server) tileRoutes(r *mux.Router) {
	r.HandleFunc("/tiles/{layer}/{z}/{x}/{y}.mvt", s.tile).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/tiles/{layer}.json", s.tileJSON).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/styles/wall.json", s.wallStyle).Methods(http.MethodGet, http.MethodHead)
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
// objects: it LISTENs on the tile changes channel and, on each notice (and
// on every (re)connection, to catch up), reads the changes it has not seen
// and drops the cached tiles they touch. After a listener outage longer
// than tileListenerGrace the cache is cleared instead. It returns when ctx
// ends.
func (s *Server) FollowTiles(ctx context.Context) {
	var lost time.Time
	for ctx.Err() == nil {
		err := s.store.Listen(ctx, tiles.ChangesChannel, func() {
			if !lost.IsZero() {
				if down := time.Since(lost); down > tileListenerGrace {
					n := s.tileMem.cache.Clear()
					s.log.Warn("tile cache cleared after a long listener outage", "down_seconds", down.Seconds(), "tiles", n)
				}
				lost = time.Time{}
			}
			s.syncTiles(ctx)
		})
		if ctx.Err() != nil {
			return
		}
		if lost.IsZero() {
			lost = time.Now()
		}
		s.log.Warn("tile changes listener lost; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// tile: GET /tiles/{layer}/{z}/{x}/{y}.mvt, from the cache (X-Cache: hit)
// or rendered (X-Cache: miss). An empty tile is 204 No Content (MapLibre
// draws nothing, as for an empty 200).
func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if _, ok := s.tiles.Catalogue.Layer(v["layer"]); !ok {
		notFound(w, r, fmt.Sprintf("no tileset %q: there are %s", v["layer"], strings.Join(s.tiles.Catalogue.Names(), ", ")))
		return
	}
	zxy, ok := tileParams(w, r)
	if !ok {
		return
	}
	k := tiles.Key{Layer: v["layer"], Z: zxy[0], X: zxy[1], Y: zxy[2]}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), tileRenderTimeout)
	defer cancel()
	e, hit, err := s.tileMem.cache.GetRendered(ctx, k, func(ctx context.Context) (tiles.Rendered, error) {
		return s.tiles.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y)
	})
	if err != nil {
		fail(w, r, err)
		return
	}
	if hit {
		w.Header().Set("X-Cache", "hit")
	} else {
		w.Header().Set("X-Cache", "miss")
	}
	writeTile(w, r, e)
}

// writeTile answers a tile with a content ETag (same data, same bytes, same
// tag), 304 on If-None-Match, the stored gzip when the client takes it
// (decompressed otherwise), 204 when empty. Clients revalidate on every
// use (a 304 costs a round trip and no bytes): any edit may change a tile,
// and a live wall that reloads events tiles after a change must not be
// answered from its browser's cache. Tiles that change with the clock
// (events) expire in the server's cache instead.
func writeTile(w http.ResponseWriter, r *http.Request, e *tiles.Entry) {
	h := w.Header()
	h.Set("ETag", e.ETag)
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && (strings.Contains(inm, e.ETag) || strings.TrimSpace(inm) == "*") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if e.Empty {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "application/vnd.mapbox-vector-tile")
	body := e.Gzip
	if tileGzipOK(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
	} else {
		mvt, err := e.MVT()
		if err != nil {
			internalError(w, r, err)
			return
		}
		body = mvt
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// tileGzipOK reads an Accept-Encoding header: gzip with a non-zero
// weight, or, when gzip is not named, * with a non-zero weight.
func tileGzipOK(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "x-gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if name == "*" {
			starQ = q
		} else {
			gzipQ = max(gzipQ, q)
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
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

// tileJSON: GET /tiles/{layer}.json (TileJSON 3.0.0).
func (s *Server) tileJSON(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["layer"]
	l, ok := s.tiles.Catalogue.Layer(name)
	if !ok {
		notFound(w, r, fmt.Sprintf("no tileset %q: there are %s", name, strings.Join(s.tiles.Catalogue.Names(), ", ")))
		return
	}
	tj, err := tiles.Describe(r.Context(), s.store.Pool, l, baseURL(r)+"/tiles/"+name)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tj)
}

// wallStyle: GET /styles/wall.json, the dark command-centre style.
func (s *Server) wallStyle(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, tiles.WallStyle(baseURL(r), s.tiles.Catalogue.Zooms))
}

// tileParams reads z/x/y from the path; a non-integer or a tile outside the
// pyramid is answered with a 400 problem and ok false.
func tileParams(w http.ResponseWriter, r *http.Request) (zxy [3]int, ok bool) {
	v := mux.Vars(r)
	for i, k := range []string{"z", "x", "y"} {
		n, err := strconv.Atoi(v[k])
		if err != nil {
			badParam(w, r, k, fmt.Sprintf("%s=%q is not an integer", k, v[k]))
			return zxy, false
		}
		zxy[i] = n
	}
	if err := tiles.CheckTile(zxy[0], zxy[1], zxy[2]); err != nil {
		badParam(w, r, "z/x/y", err.Error())
		return zxy, false
	}
	return zxy, true
}
