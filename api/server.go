// Package api is gridmap's HTTP interface: JSON and GeoJSON resources,
// problem+json errors, and the web pages.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/grid"
	"gridmap/tiles"
)

// Options are the server's limits.
type Options struct {
	// MaxImportBytes caps an import body (default 64 MiB).
	MaxImportBytes int64
	// MaxLocatePoints caps a batch locate (default 10,000).
	MaxLocatePoints int
	// MaxObjectImportBytes caps a streamed object import (default 2 GiB).
	MaxObjectImportBytes int64
	// TileCacheBytes bounds the in-memory tile cache (default 256 MiB;
	// negative: no cache).
	TileCacheBytes int64
	// TileZooms are the zoom ranges of the unit levels (default tiles.DefaultZooms).
	TileZooms *tiles.Zooms
	// SSEHeartbeat is the comment interval of event streams (default 15 s),
	// which keeps proxies from closing an idle stream.
	SSEHeartbeat time.Duration
	// EventFeedRetention is how far back a stream can resume with
	// Last-Event-ID (default 24 h); IdempotencyRetention how long an
	// Idempotency-Key is remembered (default 24 h).
	EventFeedRetention   time.Duration
	IdempotencyRetention time.Duration
	// ReportWriters is the number of concurrent reporting transactions
	// (default 4); reports arriving meanwhile share the next one.
	ReportWriters int
	Logger        *slog.Logger
}

// Defaults for Options.
const (
	DefaultMaxImportBytes  = 64 << 20
	DefaultMaxLocatePoints = 10000
	DefaultTileCacheBytes  = tiles.DefaultCacheBytes
)

// Server serves the API from a store and an in-memory locator that follows
// the store's units.
type Server struct {
	store   *data.Store
	opts    Options
	log     *slog.Logger
	locator atomic.Pointer[locatorState]
	tiles   *tiles.Renderer
	glyphs  *tiles.Glyphs
	tileMem *tileCache
	reload  sync.Mutex
	metrics *metrics

	events   *eventHub
	reporter *data.Reporter
}

type locatorState struct {
	*grid.Locator
	fingerprint string
	built       time.Time
}

// New builds a server and its locator from the store's current units.
func New(ctx context.Context, store *data.Store, opts Options) (*Server, error) {
	if opts.MaxImportBytes <= 0 {
		opts.MaxImportBytes = DefaultMaxImportBytes
	}
	if opts.MaxLocatePoints <= 0 {
		opts.MaxLocatePoints = DefaultMaxLocatePoints
	}
	if opts.MaxObjectImportBytes <= 0 {
		opts.MaxObjectImportBytes = DefaultMaxObjectImportBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SSEHeartbeat <= 0 {
		opts.SSEHeartbeat = DefaultSSEHeartbeat
	}
	if opts.EventFeedRetention <= 0 {
		opts.EventFeedRetention = DefaultEventFeedRetain
	}
	if opts.IdempotencyRetention <= 0 {
		opts.IdempotencyRetention = DefaultIdempotencyRetain
	}
	zooms := tiles.DefaultZooms
	if opts.TileZooms != nil {
		zooms = *opts.TileZooms
	}
	cat, err := tiles.NewCatalogue(zooms)
	if err != nil {
		return nil, err
	}
	glyphs, err := tiles.NewGlyphs()
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, opts: opts, log: opts.Logger, tiles: &tiles.Renderer{Pool: store.Pool, Catalogue: cat}, glyphs: glyphs, metrics: newMetrics(store)}
	if err := s.RefreshLocator(ctx); err != nil {
		return nil, err
	}
	if err := s.initTileCache(ctx); err != nil {
		return nil, err
	}
	if s.events, err = newEventHub(ctx, store, s.log, s.metrics); err != nil {
		return nil, err
	}
	s.reporter = data.NewReporter(store, opts.ReportWriters, 0, func() { s.syncTiles(context.Background()) })
	return s, nil
}

// Close stops taking reports and answers those queued.
func (s *Server) Close() { s.reporter.Close() }

// Locator is the current in-memory locator.
func (s *Server) Locator() *grid.Locator { return s.locator.Load().Locator }

// RefreshLocator rebuilds the locator when the units changed since it was
// built, and swaps it in; readers never wait.
func (s *Server) RefreshLocator(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	fp, err := s.store.UnitsFingerprint(ctx)
	if err != nil {
		return fmt.Errorf("units fingerprint: %w", err)
	}
	if cur := s.locator.Load(); cur != nil && cur.fingerprint == fp {
		return nil
	}
	start := time.Now()
	units, err := s.store.CurrentUnits(ctx)
	if err != nil {
		return fmt.Errorf("load units: %w", err)
	}
	s.locator.Store(&locatorState{Locator: grid.NewLocator(units), fingerprint: fp, built: time.Now()})
	took := time.Since(start)
	s.metrics.locatorBuilt(len(units), took)
	s.log.Info("locator built", "units", len(units), "seconds", took.Seconds())
	return nil
}

// FollowUnits keeps the locator current when other processes change units:
// it LISTENs on the units channel and refreshes on every notice, and after a
// lost connection (when notices may have been missed). It returns when ctx ends.
func (s *Server) FollowUnits(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.store.Listen(ctx, data.UnitsChannel, func() {
			if err := s.RefreshLocator(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("refresh locator", "err", err)
			}
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("units listener lost; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Handler is the HTTP interface.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.StrictSlash(false)
	s.webRoutes(r) // the wall map at /, /static/…, /districts
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metrics.handler()).Methods(http.MethodGet, http.MethodHead)
	// Full paths on the root router: with a /v1 subrouter, gorilla/mux
	// v1.8.1 lets a later route's prefix match erase an earlier route's
	// method mismatch, and a wrong method answers 404 instead of 405.
	r.HandleFunc("/v1/units", s.listUnits).Methods(http.MethodGet)
	r.HandleFunc("/v1/units:import", s.importUnits).Methods(http.MethodPost)
	r.HandleFunc("/v1/units:validate", s.validateUnits).Methods(http.MethodPost)
	r.HandleFunc("/v1/units/{code}", s.getUnit).Methods(http.MethodGet)
	r.HandleFunc("/v1/units/{code}/children", s.unitChildren).Methods(http.MethodGet)
	r.HandleFunc("/v1/topology/issues", s.topologyIssues).Methods(http.MethodGet)
	r.HandleFunc("/v1/locate", s.locateOne).Methods(http.MethodGet)
	r.HandleFunc("/v1/locate", s.locateMany).Methods(http.MethodPost)
	s.objectRoutes(r)
	s.eventRoutes(r)
	s.tileRoutes(r)
	s.pmtilesRoutes(r)
	s.fontRoutes(r)
	r.Use(routeLabel)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notFound(w, r, fmt.Sprintf("no resource at %s", r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeProblem(w, req, Problem{Type: probNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail:     fmt.Sprintf("%s is not allowed on %s; use %s", req.Method, req.URL.Path, strings.Join(allowed, " or ")),
			Extensions: map[string]any{"allow": allowed}})
	})
	return s.metrics.instrument(s.recoverer(r))
}

// allowedMethods lists the methods the router would accept for req's path
// (RFC 9110: a 405 carries Allow).
func allowedMethods(router *mux.Router, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "path", r.URL.Path, "value", v, "stack", string(debug.Stack()))
				internalError(w, r, fmt.Errorf("unexpected error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		writeProblem(w, r, Problem{Type: probUnavailable, Title: "Database unavailable", Status: http.StatusServiceUnavailable, Detail: err.Error()})
		return
	}
	st := s.locator.Load()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "database": "ok",
		"locator": map[string]any{"units": st.Len(), "built": st.built.UTC().Format(time.RFC3339)}})
}

// isClientGone tells a cancelled request from a failure worth a 500.
func isClientGone(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Canceled)
}
