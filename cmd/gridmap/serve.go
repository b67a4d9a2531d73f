package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/live"
	"gridmap/tiles"
)

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", envOr("ADDR", ":8080"), "listen address (ADDR)")
	maxImport := fs.Int64("max-import-bytes", envInt("GRIDMAP_MAX_IMPORT_BYTES", int64(api.DefaultMaxImportBytes)), "largest import body (GRIDMAP_MAX_IMPORT_BYTES)")
	maxPoints := fs.Int("max-locate-points", envInt("GRIDMAP_MAX_LOCATE_POINTS", api.DefaultMaxLocatePoints), "most points in one batch locate (GRIDMAP_MAX_LOCATE_POINTS)")
	tileZooms := fs.String("tile-zooms", os.Getenv("GRIDMAP_TILE_ZOOMS"), "zoom ranges of the unit levels in tiles, e.g. district=0-10,street=9-12,community=11-14,grid=13-22 (GRIDMAP_TILE_ZOOMS)")
	tileCache := fs.Int64("tile-cache-bytes", envInt("GRIDMAP_TILE_CACHE_BYTES", int64(api.DefaultTileCacheBytes)), "bytes of gzipped tiles kept in memory; 0 keeps none (GRIDMAP_TILE_CACHE_BYTES)")
	tileRenderer := fs.String("tile-renderer", envOr("GRIDMAP_TILE_RENDERER", api.TileRendererMemory), "what draws unit tiles (current, as of a settled instant, GCJ-02): memory (from in-memory copies of the units) or postgis (ST_AsMVT) (GRIDMAP_TILE_RENDERER)")
	pmtilesDir := fs.String("pmtiles-dir", envOr("GRIDMAP_PMTILES_DIR", ""), "directory of PMTiles archives served on /pmtiles/ (GRIDMAP_PMTILES_DIR; default "+defaultPMTilesDir+" when it exists)")
	heartbeat := fs.Duration("sse-heartbeat", envDuration("GRIDMAP_SSE_HEARTBEAT", api.DefaultSSEHeartbeat), "comment interval of event streams (GRIDMAP_SSE_HEARTBEAT)")
	retention := fs.Duration("event-feed-retention", envDuration("GRIDMAP_EVENT_FEED_RETENTION", api.DefaultEventFeedRetain), "how far back an event stream can resume with Last-Event-ID (GRIDMAP_EVENT_FEED_RETENTION)")
	maxSubs := fs.Int("max-subscribers", envInt("GRIDMAP_MAX_SUBSCRIBERS", live.DefaultMaxSubscribers), "most event streams held at once; beyond it a stream is a 503 with Retry-After (GRIDMAP_MAX_SUBSCRIBERS)")
	writers := fs.Int("report-writers", envInt("GRIDMAP_REPORT_WRITERS", 4), "concurrent event reporting transactions; reports arriving meanwhile share the next one (GRIDMAP_REPORT_WRITERS)")
	readHeader := fs.Duration("read-header-timeout", envDuration("GRIDMAP_READ_HEADER_TIMEOUT", api.DefaultReadHeaderTimeout), "time to read a request's headers (GRIDMAP_READ_HEADER_TIMEOUT)")
	readTimeout := fs.Duration("read-timeout", envDuration("GRIDMAP_READ_TIMEOUT", api.DefaultReadTimeout), "time to read a request with its body; heavy routes have --heavy-timeout (GRIDMAP_READ_TIMEOUT)")
	writeTimeout := fs.Duration("write-timeout", envDuration("GRIDMAP_WRITE_TIMEOUT", api.DefaultWriteTimeout), "time to answer a request; heavy routes have --heavy-timeout, streams none (GRIDMAP_WRITE_TIMEOUT)")
	idleTimeout := fs.Duration("idle-timeout", envDuration("GRIDMAP_IDLE_TIMEOUT", api.DefaultIdleTimeout), "how long a keep-alive connection waits for its next request (GRIDMAP_IDLE_TIMEOUT)")
	requestTimeout := fs.Duration("request-timeout", envDuration("GRIDMAP_REQUEST_TIMEOUT", api.DefaultRequestTimeout), "database work of an ordinary request; past it 503 (GRIDMAP_REQUEST_TIMEOUT)")
	heavyTimeout := fs.Duration("heavy-timeout", envDuration("GRIDMAP_HEAVY_TIMEOUT", api.DefaultHeavyTimeout), "a heavy request (import, validate, topology issues, large batch locate) end to end, body included (GRIDMAP_HEAVY_TIMEOUT)")
	heavyRequests := fs.Int("heavy-requests", envInt("GRIDMAP_HEAVY_REQUESTS", api.DefaultHeavyRequests), "heavy requests at once; beyond, 429 with Retry-After (GRIDMAP_HEAVY_REQUESTS)")
	attachmentDir := fs.String("attachment-dir", envOr("GRIDMAP_ATTACHMENT_DIR", api.DefaultAttachmentDir), "directory of the events' attachments, stored by SHA-256 (GRIDMAP_ATTACHMENT_DIR)")
	maxAttachment := fs.Int64("max-attachment-bytes", envInt("GRIDMAP_MAX_ATTACHMENT_BYTES", int64(api.DefaultMaxAttachmentBytes)), "largest attachment upload (GRIDMAP_MAX_ATTACHMENT_BYTES)")
	photoFar := fs.Float64("photo-far-meters", float64(api.DefaultPhotoFarMeters), "a photo whose EXIF position is farther than this from its event's is flagged far")
	positionInterval := fs.Duration("position-interval", envDuration("GRIDMAP_POSITION_INTERVAL", api.DefaultPositionInterval), "how often workers' live positions go out on the streams that ask for them (GRIDMAP_POSITION_INTERVAL)")
	statementTimeout := fs.Duration("statement-timeout", envDuration("GRIDMAP_STATEMENT_TIMEOUT", data.DefaultStatementTimeout), "PostgreSQL statement_timeout of every connection (GRIDMAP_STATEMENT_TIMEOUT)")
	idleInTx := fs.Duration("idle-in-transaction-timeout", envDuration("GRIDMAP_IDLE_IN_TRANSACTION_TIMEOUT", data.DefaultIdleInTransactionTimeout), "PostgreSQL idle_in_transaction_session_timeout of every connection (GRIDMAP_IDLE_IN_TRANSACTION_TIMEOUT)")
	readURL := fs.String("read-url", os.Getenv("GRIDMAP_READ_URL"), "a streaming replica (hot standby) for tiles, lists, statistics, locator builds and OGC reads; writes and LISTEN stay on DATABASE_URL (GRIDMAP_READ_URL)")
	sessionURL := fs.String("session-url", os.Getenv("GRIDMAP_SESSION_URL"), "the primary without a transaction pooler, for LISTEN and migrations, when DATABASE_URL goes through PgBouncer in transaction mode (GRIDMAP_SESSION_URL)")
	readWait := fs.Duration("read-wait", envDuration("GRIDMAP_READ_WAIT", data.DefaultReadWait), "how long a read waits for the replica to replay what it must show (the client's own write, a change announced) before it goes to the primary (GRIDMAP_READ_WAIT)")
	// Access (docs/api.md, Access control). A bad value of these
	// variables stops the start rather than being ignored.
	var env strictEnv
	publicRead := fs.Bool("public-read", env.bool("GRIDMAP_PUBLIC_READ", false), "let requests without a credential read (writes always need one) (GRIDMAP_PUBLIC_READ)")
	oidcIssuer := fs.String("oidc-issuer", os.Getenv("GRIDMAP_OIDC_ISSUER"), "OpenID Connect issuer whose JWT bearer tokens are taken, e.g. https://sso.city.example/realms/grid (GRIDMAP_OIDC_ISSUER); needs --oidc-audience")
	oidcAudience := fs.String("oidc-audience", os.Getenv("GRIDMAP_OIDC_AUDIENCE"), "the audience (client ID) a JWT must carry (GRIDMAP_OIDC_AUDIENCE)")
	oidcJWKS := fs.String("oidc-jwks-url", os.Getenv("GRIDMAP_OIDC_JWKS_URL"), "the provider's keys (GRIDMAP_OIDC_JWKS_URL; default: the jwks_uri of the issuer's discovery document)")
	oidcUser := fs.String("oidc-user-claim", os.Getenv("GRIDMAP_OIDC_USER_CLAIM"), "claim naming the user (GRIDMAP_OIDC_USER_CLAIM; default "+auth.DefaultUserClaim+", else sub)")
	oidcRoles := fs.String("oidc-roles-claim", os.Getenv("GRIDMAP_OIDC_ROLES_CLAIM"), "dot path of the roles claim, e.g. realm_access.roles (GRIDMAP_OIDC_ROLES_CLAIM; default "+auth.DefaultRolesClaim+")")
	oidcUnits := fs.String("oidc-units-claim", os.Getenv("GRIDMAP_OIDC_UNITS_CLAIM"), "dot path of the unit codes claim (GRIDMAP_OIDC_UNITS_CLAIM; default "+auth.DefaultUnitsClaim+")")
	oidcRoleMap := fs.String("oidc-role-map", os.Getenv("GRIDMAP_OIDC_ROLE_MAP"), "provider role=gridmap role, comma-separated, e.g. grid-worker=reporter,ops=dispatcher (GRIDMAP_OIDC_ROLE_MAP; default: the gridmap role names)")
	noMigrate := fs.Bool("no-migrate", env.bool("GRIDMAP_NO_MIGRATE", false), "do not migrate or seed the database at start (run `gridmap migrate` as its own step); the schema must be current (GRIDMAP_NO_MIGRATE)")
	writeRate := fs.Float64("write-rate", env.float("GRIDMAP_WRITE_RATE", api.DefaultWriteRate), "writes a second one credential may make on average; 0 or negative: no limit (GRIDMAP_WRITE_RATE)")
	writeBurst := fs.Int("write-burst", env.int("GRIDMAP_WRITE_BURST", api.DefaultWriteBurst), "writes one credential may make at once (GRIDMAP_WRITE_BURST)")
	corsOrigins := fs.String("cors-origins", os.Getenv("GRIDMAP_CORS_ORIGINS"), `origins of other web apps allowed to call the API from a browser, comma-separated, e.g. https://ops.city.example; "*" for any (GRIDMAP_CORS_ORIGINS)`)
	tlsCert := fs.String("tls-cert", os.Getenv("GRIDMAP_TLS_CERT"), "PEM certificate (chain) to serve HTTPS with; needs --tls-key (GRIDMAP_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("GRIDMAP_TLS_KEY"), "PEM private key of --tls-cert (GRIDMAP_TLS_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := errors.Join(env.errs...); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	oidcProvider, err := newOIDC(*oidcIssuer, *oidcAudience, *oidcJWKS, *oidcUser, *oidcRoles, *oidcUnits, *oidcRoleMap)
	if err != nil {
		return err
	}
	if *writeRate <= 0 {
		*writeRate = -1 // api.Options: negative is no limit, 0 the default
	}
	if *writeBurst <= 0 {
		return fmt.Errorf("--write-burst %d: want at least 1", *writeBurst)
	}
	origins := splitList(*corsOrigins)
	if err := api.CheckCORSOrigins(origins); err != nil {
		return err
	}
	tlsConfig, err := loadTLS(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, err := openStore(ctx, data.PoolOptions{StatementTimeout: *statementTimeout, IdleInTransactionTimeout: *idleInTx,
		ReadURL: *readURL, ReadWait: *readWait, NoMigrate: *noMigrate, SessionURL: *sessionURL})
	if err != nil {
		return err
	}
	defer store.Close()
	if *tileCache <= 0 {
		*tileCache = -1 // api.Options: negative is no cache, 0 the default
	}
	zooms, err := tiles.ParseZooms(*tileZooms)
	if err != nil {
		return err
	}
	srv, err := api.New(ctx, store, api.Options{MaxImportBytes: *maxImport, MaxLocatePoints: int(*maxPoints), TileCacheBytes: *tileCache, TileZooms: &zooms, TileRenderer: *tileRenderer,
		SSEHeartbeat: *heartbeat, EventFeedRetention: *retention, ReportWriters: *writers, MaxSubscribers: *maxSubs, Logger: log,
		ReadHeaderTimeout: *readHeader, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		RequestTimeout: *requestTimeout, HeavyTimeout: *heavyTimeout, HeavyRequests: *heavyRequests,
		PublicRead: *publicRead, OIDC: oidcProvider, WriteRate: *writeRate, WriteBurst: *writeBurst, CORSOrigins: origins,
		AttachmentDir: *attachmentDir, MaxAttachmentBytes: *maxAttachment, PhotoFarMeters: *photoFar, PositionInterval: *positionInterval})
	if err != nil {
		return err
	}
	if err := servePMTiles(srv, *pmtilesDir, log); err != nil {
		return err
	}
	defer srv.Close()
	go srv.FollowUnits(ctx)
	go srv.FollowTiles(ctx)
	go srv.FollowEvents(ctx)
	go srv.FollowTokens(ctx)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer()
	access := []any{"public_read", *publicRead, "oidc_issuer", *oidcIssuer, "cors_origins", strings.Join(origins, ",")}
	if *publicRead {
		log.Warn("reads need no credential (--public-read); writes still do")
	}
	errc := make(chan error, 1)
	if tlsConfig != nil {
		hs.TLSConfig = tlsConfig
		log.Info("serving", append([]any{"url", "https://" + displayAddr(ln.Addr())}, access...)...)
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		log.Info("serving", append([]any{"url", "http://" + displayAddr(ln.Addr())}, access...)...)
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Streams end at once (RegisterOnShutdown); requests in flight get
	// 10 s to finish, then their connections are closed.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		hs.Close()
		return err
	}
	return nil
}

// strictEnv reads serve's access settings from the environment: a value
// that does not parse is an error at start (envInt and envDuration warn
// and ignore it; a mistyped GRIDMAP_PUBLIC_READ or write limit must not
// pass unnoticed).
type strictEnv struct{ errs []error }

func (e *strictEnv) bool(k string, def bool) bool {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false (1, 0, t, f)", k, v))
		return def
	}
	return b
}

func (e *strictEnv) float(k string, def float64) float64 {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a number such as 20 or 0.5", k, v))
		return def
	}
	return f
}

func (e *strictEnv) int(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want an integer", k, v))
		return def
	}
	return n
}

// splitList splits a comma-separated flag, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newOIDC is the identity provider of the --oidc-* flags: nil without an
// issuer (then no other --oidc-* flag may be given).
func newOIDC(issuer, audience, jwks, userClaim, rolesClaim, unitsClaim, roleMap string) (*auth.OIDC, error) {
	if issuer == "" {
		if audience+jwks+userClaim+rolesClaim+unitsClaim+roleMap != "" {
			return nil, errors.New("--oidc-* settings are given without --oidc-issuer (GRIDMAP_OIDC_ISSUER)")
		}
		return nil, nil
	}
	if strings.TrimSpace(audience) == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-audience (GRIDMAP_OIDC_AUDIENCE): the client ID the tokens are issued for")
	}
	var m map[string]auth.Role
	if roleMap != "" {
		m = map[string]auth.Role{}
		for _, pair := range splitList(roleMap) {
			from, to, ok := strings.Cut(pair, "=")
			from, to = strings.TrimSpace(from), strings.TrimSpace(to)
			if !ok || from == "" {
				return nil, fmt.Errorf("--oidc-role-map %q: want provider-role=gridmap-role pairs, comma-separated", pair)
			}
			r, err := auth.ParseRole(to)
			if err != nil {
				return nil, fmt.Errorf("--oidc-role-map %q: %v", pair, err)
			}
			if _, dup := m[from]; dup {
				return nil, fmt.Errorf("--oidc-role-map: %q is mapped twice", from)
			}
			m[from] = r
		}
	}
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: issuer, Audience: audience, JWKSURL: jwks,
		UserClaim: userClaim, RolesClaim: rolesClaim, UnitsClaim: unitsClaim, RoleMap: m})
	if err != nil {
		return nil, fmt.Errorf("--oidc-*: %w", err)
	}
	return o, nil
}

// loadTLS reads the certificate and key of --tls-cert and --tls-key (nil
// without them), at start, so that a bad file stops the start.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key (GRIDMAP_TLS_CERT, GRIDMAP_TLS_KEY) go together: give both or neither")
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "gridmap: ignoring %s=%q: not a duration such as 15s or 24h\n", k, v)
	}
	return def
}

func envInt[T int | int64](k string, def T) T {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return T(n)
		}
		fmt.Fprintf(os.Stderr, "gridmap: ignoring %s=%q: not an integer\n", k, v)
	}
	return def
}
