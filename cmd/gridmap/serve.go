package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"gridmap/api"
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
	statementTimeout := fs.Duration("statement-timeout", envDuration("GRIDMAP_STATEMENT_TIMEOUT", data.DefaultStatementTimeout), "PostgreSQL statement_timeout of every connection (GRIDMAP_STATEMENT_TIMEOUT)")
	idleInTx := fs.Duration("idle-in-transaction-timeout", envDuration("GRIDMAP_IDLE_IN_TRANSACTION_TIMEOUT", data.DefaultIdleInTransactionTimeout), "PostgreSQL idle_in_transaction_session_timeout of every connection (GRIDMAP_IDLE_IN_TRANSACTION_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, err := openStore(ctx, data.PoolOptions{StatementTimeout: *statementTimeout, IdleInTransactionTimeout: *idleInTx})
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
	srv, err := api.New(ctx, store, api.Options{MaxImportBytes: *maxImport, MaxLocatePoints: int(*maxPoints), TileCacheBytes: *tileCache, TileZooms: &zooms,
		SSEHeartbeat: *heartbeat, EventFeedRetention: *retention, ReportWriters: *writers, MaxSubscribers: *maxSubs, Logger: log,
		ReadHeaderTimeout: *readHeader, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		RequestTimeout: *requestTimeout, HeavyTimeout: *heavyTimeout, HeavyRequests: *heavyRequests})
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer()
	log.Info("serving", "url", "http://"+displayAddr(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
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
