// Package api is gridmap's HTTP interface. Handlers (handle_*.go, one file
// per resource) return errors, and problem.go turns every error into an
// application/problem+json answer in one place. request_body.go and
// request_params.go read bodies and query parameters strictly, etag.go
// holds the ETag preconditions, response.go the JSON and GeoJSON writers,
// middleware_*.go what wraps every request. The live event hub is package
// live; api serves it as Server-Sent Events.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/grid"
	"gridmap/live"
	"gridmap/media"
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
	// BodyStallTimeout is how long an object import body may send nothing
	// (default 30 s; then 408).
	BodyStallTimeout time.Duration
	// TileCacheBytes bounds the in-memory tile cache (default 256 MiB;
	// negative: no cache).
	TileCacheBytes int64
	// TileZooms are the zoom ranges of the unit levels (default tiles.DefaultZooms).
	TileZooms *tiles.Zooms
	// TileRenderer draws the unit tiles: "memory" (the default: from an
	// in-memory copy of the units that follows the locator, its GCJ-02
	// conversion, and copies of settled past instants; tiles_memory.go)
	// or "postgis" (ST_AsMVT, as objects and events tiles always are).
	TileRenderer string
	// SSEHeartbeat is the comment interval of event streams (default 15 s),
	// which keeps proxies from closing an idle stream.
	SSEHeartbeat time.Duration
	// EventFeedRetention is how far back a stream can resume with
	// Last-Event-ID (default 24 h); IdempotencyRetention how long an
	// Idempotency-Key is remembered (default 24 h).
	EventFeedRetention   time.Duration
	IdempotencyRetention time.Duration
	// MaxSubscribers caps the event streams this server holds at once
	// (default live.DefaultMaxSubscribers); beyond it a stream is a 503.
	MaxSubscribers int
	// ReportWriters is the number of concurrent reporting transactions
	// (default 4); reports arriving meanwhile share the next one.
	ReportWriters int
	Logger        *slog.Logger

	// Timeouts of the connection (HTTPServer): reading a request's
	// headers (default 10 s), reading a whole request with its body
	// (default 1 min), writing a response (default 2 min), and a
	// keep-alive connection's wait for its next request (default 2 min).
	// Heavy routes read and write within HeavyTimeout instead, streams
	// without a bound (each write of theirs has its own).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RequestTimeout bounds the database work of an ordinary request
	// (default 30 s); HeavyTimeout a heavy one, body included (default
	// 10 min). Past it the request answers 503 with Retry-After.
	RequestTimeout, HeavyTimeout time.Duration
	// HeavyRequests is how many heavy requests (imports, validate,
	// topology issues, large batch locates) run at once (default 4);
	// beyond it they are refused with 429 and Retry-After. Keep it at
	// most half the pool's connections so cheap reads always find one.
	HeavyRequests int

	// PublicRead lets requests without a credential read (never write).
	PublicRead bool
	// OIDC, when set, verifies JWT bearer tokens from the city's identity
	// provider; without it only API tokens are taken.
	OIDC *auth.OIDC
	// WriteRate is how many writes a second one credential may make on
	// average, WriteBurst how many at once (defaults 50 and 100; a negative
	// WriteRate: no limit).
	WriteRate  float64
	WriteBurst int
	// CORSOrigins, when set, are the origins of other web apps allowed to
	// call the API from a browser (api/cors.go): "*" for any, else
	// serialized origins such as https://ops.city.example.
	CORSOrigins []string

	// Attachments stores the files of events (default: the filesystem
	// under AttachmentDir, itself by default DefaultAttachmentDir).
	Attachments   media.Storage
	AttachmentDir string
	// MaxAttachmentBytes caps one upload (default 32 MiB);
	// PhotoFarMeters is the distance between a photo's EXIF position
	// and its event's past which it is flagged (default 200 m).
	MaxAttachmentBytes int64
	PhotoFarMeters     float64
	// PositionInterval is how often workers' live positions go out on
	// the streams that ask for them (default 5 s).
	PositionInterval time.Duration
}

// Defaults for Options.
const (
	DefaultMaxImportBytes  = 64 << 20
	DefaultMaxLocatePoints = 10000
	DefaultTileCacheBytes  = tiles.DefaultCacheBytes

	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultRequestTimeout    = 30 * time.Second
	DefaultWriteRate         = 50
	DefaultWriteBurst        = 100
	DefaultHeavyTimeout      = 10 * time.Minute
	DefaultHeavyRequests     = 4
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
	history history // as_of: settled instants, past locators (handle_history.go)
	// memHistory: in-memory units of past instants for tiles (tiles_memory.go)
	memHistory memHistory
	reload     sync.Mutex
	metrics    *metrics

	hub      *live.Hub // the live event feed of this server's streams
	reporter *data.Reporter

	heavy chan struct{} // a slot per heavy request running (middleware_limit.go)
	// auditRetries: a slot per audit entry retried after its answer
	// (auth_write.go).
	auditRetries chan struct{}
	// stopping is closed when the HTTP server shuts down: streams end
	// then, since http.Server.Shutdown waits for them but does not end
	// them.
	stopping chan struct{}
	stopOnce sync.Once

	tokens        *tokenCache // API tokens (auth.go)
	jwts          jwtCache
	writeRates    writeRates
	unknownTokens writeRates // lookups of tokens not in the cache, by address

	attachments media.Storage
	positions   positionHub

	contract *contract // the OpenAPI document: /openapi.json and the query parameters of each route
}

type locatorState struct {
	*grid.Locator
	built time.Time
	// ids maps the row id of every unit version in the locator to its
	// unit: what a refresh compares the current versions with.
	ids map[int64]grid.UnitKey
	// mem is the units as tiles draw them (nil: tiles come from PostGIS),
	// swapped with the locator so the two never disagree; gcj the same
	// units in GCJ-02, built on the first GCJ-02 tile (tiles_memory.go).
	mem *tiles.MemUnits
	gcj *lazyMem
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
	defaultDuration(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defaultDuration(&opts.ReadTimeout, DefaultReadTimeout)
	defaultDuration(&opts.WriteTimeout, DefaultWriteTimeout)
	defaultDuration(&opts.IdleTimeout, DefaultIdleTimeout)
	defaultDuration(&opts.RequestTimeout, DefaultRequestTimeout)
	defaultDuration(&opts.HeavyTimeout, DefaultHeavyTimeout)
	if opts.HeavyRequests <= 0 {
		opts.HeavyRequests = DefaultHeavyRequests
	}
	if opts.WriteRate == 0 {
		opts.WriteRate = DefaultWriteRate
	}
	if opts.WriteBurst <= 0 {
		opts.WriteBurst = DefaultWriteBurst
	}
	if opts.MaxAttachmentBytes <= 0 {
		opts.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	if opts.PhotoFarMeters <= 0 {
		opts.PhotoFarMeters = DefaultPhotoFarMeters
	}
	defaultDuration(&opts.PositionInterval, DefaultPositionInterval)
	if opts.AttachmentDir == "" {
		opts.AttachmentDir = DefaultAttachmentDir
	}
	if err := CheckCORSOrigins(opts.CORSOrigins); err != nil {
		return nil, err
	}
	switch opts.TileRenderer {
	case "":
		opts.TileRenderer = TileRendererMemory
	case TileRendererMemory, TileRendererPostGIS:
	default:
		return nil, fmt.Errorf("tile renderer %q: want %s or %s", opts.TileRenderer, TileRendererMemory, TileRendererPostGIS)
	}
	if pool := int(store.Pool.Config().MaxConns); opts.HeavyRequests > pool/2 {
		opts.Logger.Warn("heavy requests may take more than half the database connections; cheap reads may wait for one",
			"heavy_requests", opts.HeavyRequests, "pool_max_conns", pool)
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
	contract, err := theContract()
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, opts: opts, log: opts.Logger, tiles: &tiles.Renderer{Pool: store.Pool, Read: store.Reader, Catalogue: cat}, glyphs: glyphs, metrics: newMetrics(store),
		heavy: make(chan struct{}, opts.HeavyRequests), auditRetries: make(chan struct{}, auditRetryLimit), stopping: make(chan struct{}), tokens: &tokenCache{store: store}, contract: contract}
	if opts.TileRenderer == TileRendererMemory {
		s.tiles.Units = func() *tiles.MemUnits {
			if st := s.locator.Load(); st != nil {
				return st.mem
			}
			return nil // not built yet: PostGIS draws
		}
		s.tiles.UnitsIn = s.unitsIn
	}
	// The folder is made on the first upload, not here: a server that
	// never takes one leaves nothing behind.
	s.attachments = opts.Attachments
	if s.attachments == nil {
		s.attachments = &media.FS{Dir: opts.AttachmentDir}
	}
	if err := s.RefreshLocator(ctx); err != nil {
		return nil, err
	}
	// The tokens as they are now, so that known credentials are checked
	// from memory should the database go before the listener is up.
	if err := s.tokens.reload(ctx); err != nil {
		return nil, err
	}
	if err := s.initTileCache(ctx); err != nil {
		return nil, err
	}
	if s.hub, err = live.NewHub(ctx, store, s.log, live.Metrics{Subscribers: s.metrics.sseSubscribers, Dropped: s.metrics.sseDropped}, opts.MaxSubscribers); err != nil {
		return nil, err
	}
	s.reporter = data.NewReporter(store, opts.ReportWriters, 0, func() { s.syncTiles(context.Background()) })
	return s, nil
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Close ends the streams, stops taking reports and answers those queued.
func (s *Server) Close() {
	s.endStreams()
	s.reporter.Close()
}

// endStreams ends every event stream (their clients resume elsewhere
// with Last-Event-ID).
func (s *Server) endStreams() { s.stopOnce.Do(func() { close(s.stopping) }) }

// HTTPServer is the http.Server of the handler with the connection
// timeouts of the options; its Shutdown ends the event streams. Every
// command that serves uses it.
func (s *Server) HTTPServer() *http.Server {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.endStreams)
	return hs
}

// Locator is the current in-memory locator.
func (s *Server) Locator() *grid.Locator { return s.locator.Load().Locator }

// RefreshLocator brings the locator up to the store's current units when
// they changed since it was built, and swaps the new one in; readers never
// wait. The first build loads every unit; later ones compare the row ids of
// the current versions with those the locator holds and load and prepare
// only the versions it lacks (grid.Locator.Apply): a version's content
// never changes once written, so the result is the locator a full build
// would make, whichever writes committed in whatever order and whichever
// notices were missed. Should the result ever not hold as many units as
// the store, a full build replaces it.
func (s *Server) RefreshLocator(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	if cur := s.locator.Load(); cur != nil {
		done, err := s.refreshIncremental(ctx, cur)
		if done || err != nil {
			return err
		}
	}
	return s.rebuildLocator(ctx)
}

// rebuildLocator builds the locator from every current unit.
func (s *Server) rebuildLocator(ctx context.Context) error {
	start := time.Now()
	ids, units, err := s.store.CurrentUnitVersions(ctx, nil)
	if err != nil {
		return fmt.Errorf("load units: %w", err)
	}
	byID := make(map[int64]grid.UnitKey, len(ids))
	plain := make([]grid.Unit, len(units))
	for i, u := range units {
		byID[u.ID] = grid.UnitKey{Layer: u.Layer, Code: u.Code}
		plain[i] = u.Unit
	}
	st := &locatorState{Locator: grid.NewLocator(plain), built: time.Now(), ids: byID}
	if s.opts.TileRenderer == TileRendererMemory {
		st.mem = tiles.NewMemUnits(plain)
		st.gcj = &lazyMem{from: st.mem}
	}
	first := s.locator.Load() == nil
	s.locator.Store(st)
	if !first && st.mem != nil {
		s.dropUnitTiles(nil) // every unit tile may have changed
	}
	took := time.Since(start)
	s.metrics.locatorBuilt("full", len(units), took)
	s.log.Info("locator built", "kind", "full", "units", len(units), "seconds", took.Seconds())
	return nil
}

// refreshIncremental derives the locator from cur and the versions that
// changed; false when the result does not match the store (then a full
// build follows).
func (s *Server) refreshIncremental(ctx context.Context, cur *locatorState) (bool, error) {
	start := time.Now()
	ids, fresh, err := s.store.CurrentUnitVersions(ctx, func(id int64) bool { _, ok := cur.ids[id]; return ok })
	if err != nil {
		return false, fmt.Errorf("load changed units: %w", err)
	}
	if len(fresh) == 0 && len(ids) == len(cur.ids) {
		return true, nil // every current version is one the locator holds: no change
	}
	byID := make(map[int64]grid.UnitKey, len(ids))
	current := make(map[int64]bool, len(ids))
	for _, id := range ids {
		current[id] = true
		if k, ok := cur.ids[id]; ok {
			byID[id] = k
		}
	}
	upsert := make([]grid.Unit, len(fresh))
	for i, u := range fresh {
		byID[u.ID] = grid.UnitKey{Layer: u.Layer, Code: u.Code}
		upsert[i] = u.Unit
	}
	var remove []grid.UnitKey
	for id, k := range cur.ids {
		if !current[id] {
			remove = append(remove, k) // replaced (then also in upsert) or retired
		}
	}
	loc := cur.Locator.Apply(upsert, remove)
	if loc.Len() != len(ids) || len(byID) != len(ids) {
		s.log.Warn("incremental locator refresh does not match the store; building it in full", "units", loc.Len(), "current", len(ids))
		return false, nil
	}
	st := &locatorState{Locator: loc, built: time.Now(), ids: byID}
	var changed, gcjChanged []tiles.Change
	if cur.mem != nil {
		st.mem = cur.mem.Apply(upsert, remove)
		changed = unitTileChanges(s.tiles.Catalogue, cur.mem, st.mem)
		st.gcj, gcjChanged = s.nextGCJ(cur, st.mem, upsert, remove)
	}
	s.locator.Store(st)
	if len(changed) > 0 {
		// After the swap: a render that starts from now on reads the new
		// copy, and one still reading the old is not kept.
		s.dropUnitTiles(changed)
	}
	s.dropGCJUnitTiles(gcjChanged)
	took := time.Since(start)
	s.metrics.locatorBuilt("incremental", len(ids), took)
	s.log.Info("locator built", "kind", "incremental", "units", len(ids), "versions_loaded", len(fresh), "versions_ended", len(remove),
		"seconds", took.Seconds())
	return true, nil
}

// FollowUnits keeps the locator current when other processes change units:
// it follows the units channel and refreshes on every notice, and after a
// lost connection (when notices may have been missed). It returns when ctx
// ends.
func (s *Server) FollowUnits(ctx context.Context) {
	s.store.Follow(ctx, data.UnitsChannel, s.log, func(time.Duration) {
		if err := s.RefreshLocator(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("refresh locator", "err", err)
		}
	})
}

// Handler is the HTTP interface.
func (s *Server) Handler() http.Handler {
	return s.metrics.instrument(securityHeaders(withCORS(s.opts.CORSOrigins, s.recoverer(s.checkText(s.router())))))
}

func (s *Server) router() *mux.Router {
	r := mux.NewRouter()
	r.StrictSlash(false)
	// Tiles first: gorilla/mux tries routes in order, and tiles are most of
	// what a wall map asks for (no other route's pattern meets /tiles/).
	s.tileRoutes(r)
	s.webRoutes(r) // the wall map at /, /static/…, /districts
	s.handle(r, "/healthz", s.healthz, http.MethodGet, http.MethodHead)
	s.handle(r, "/readyz", s.readyz, http.MethodGet, http.MethodHead)
	metrics := s.metrics.handler()
	s.handle(r, "/metrics", func(w http.ResponseWriter, r *http.Request) error { metrics.ServeHTTP(w, r); return nil }, http.MethodGet, http.MethodHead)
	s.handle(r, "/openapi.json", s.openapiJSON, http.MethodGet, http.MethodHead)
	s.handle(r, "/openapi.yaml", s.openapiYAML, http.MethodGet, http.MethodHead)
	// Full paths on the root router: with a /v1 subrouter, gorilla/mux
	// v1.8.1 lets a later route's prefix match erase an earlier route's
	// method mismatch, and a wrong method answers 404 instead of 405.
	s.unitRoutes(r)
	s.editRoutes(r)
	s.locateRoutes(r)
	s.objectRoutes(r)
	s.eventRoutes(r)
	s.pmtilesRoutes(r)
	s.fontRoutes(r)
	s.accessRoutes(r)
	s.peopleRoutes(r)
	s.searchRoutes(r)
	s.ogcRoutes(r)
	s.exportRoutes(r)
	s.fieldRoutes(r)
	r.Use(routeLabel, s.authenticate, s.limit, s.replicaReads)
	r.NotFoundHandler = s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no resource at %s", r.URL.Path)
	})
	r.MethodNotAllowedHandler = s.serve(func(w http.ResponseWriter, req *http.Request) error {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return &Problem{Type: probNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail:     fmt.Sprintf("%s is not allowed on %s; use %s", req.Method, req.URL.Path, strings.Join(allowed, " or ")),
			Extensions: map[string]any{"allow": allowed}}
	})
	return r
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

// The tile renderers of Options.TileRenderer.
const (
	TileRendererMemory  = "memory"
	TileRendererPostGIS = "postgis"
)

// unitTileChanges are the unit tiles that a swap of the in-memory units
// from old to cur may change (tiles.Changed), at the zooms of each level.
func unitTileChanges(cat *tiles.Catalogue, old, cur *tiles.MemUnits) []tiles.Change {
	var out []tiles.Change
	for _, c := range tiles.Changed(old, cur) {
		lo, hi := cat.ChangeZooms("units", string(c.Level))
		out = append(out, tiles.Change{Geom: c.Geom, MinZoom: lo, MaxZoom: hi})
	}
	return out
}

// dropUnitTiles drops the cached unit tiles the changes touch (nil: all of
// them); tiles as of an instant are cached under other names and stay.
func (s *Server) dropUnitTiles(changes []tiles.Change) {
	if s.tileMem == nil {
		return
	}
	if changes == nil {
		changes = []tiles.Change{{MinZoom: 0, MaxZoom: tiles.MaxZoom}}
	}
	s.tileMem.cache.Invalidate("units", changes)
}
