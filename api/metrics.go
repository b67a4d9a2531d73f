package api

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gridmap/data"
	"gridmap/tiles"
)

// routeUnmatched is the route label of a request no route matched (404,
// 405): the raw path would make the label set unbounded.
const routeUnmatched = "unmatched"

// metrics are one server's Prometheus metrics, in a registry of its own so
// that several servers in one process (tests) do not collide.
type metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // route, method, code
	duration *prometheus.HistogramVec // route, method

	locatorUnits  prometheus.Gauge
	locatorBuilds *prometheus.CounterVec // by kind: full, incremental
	locatorBuild  *prometheus.GaugeVec   // seconds of the last build of each kind

	locateSingle prometheus.Counter
	locateBatch  prometheus.Counter

	imports    *prometheus.CounterVec // kind, outcome
	importRows *prometheus.CounterVec // kind, result

	eventsNew      prometheus.Counter
	eventsReplayed prometheus.Counter
	sseSubscribers prometheus.Gauge
	sseMessages    prometheus.Counter
	sseDropped     prometheus.Counter

	authFailures  *prometheus.CounterVec // reason
	auditFailures prometheus.Counter
}

// Import outcomes and object row results, the label values of
// gridmap_imports_total and gridmap_import_rows_total.
var (
	importKinds     = []string{"units", "objects"}
	importOutcomes  = []string{"ok", "rejected", "failed"}
	importRowResult = []string{"inserted", "updated", "unchanged", "unassigned", "rejected"}
)

func newMetrics(store *data.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridmap_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gridmap_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		locatorUnits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gridmap_locator_units",
			Help: "Units in the in-memory locator.",
		}),
		locatorBuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridmap_locator_builds_total",
			Help: "Locator builds swapped in, by kind: full (at start, loading every unit) or incremental (after a change of the units, loading and preparing only the changed ones).",
		}, []string{"kind"}),
		locatorBuild: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gridmap_locator_build_seconds",
			Help: "Time the last locator build of each kind took, loading the units included.",
		}, []string{"kind"}),
		imports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridmap_imports_total",
			Help: "Import requests by kind and outcome: ok (2xx), rejected (4xx: parameters or document refused; nothing written), failed (5xx, or a client that left; nothing written).",
		}, []string{"kind", "outcome"}),
		importRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridmap_import_rows_total",
			Help: "Rows of object imports by result: inserted, updated, unchanged, rejected; unassigned (stored outside every grid) is a subset of the first three.",
		}, []string{"kind", "result"}),
	}
	points := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmap_locate_points_total",
		Help: "Points located, by mode: single (GET /v1/locate) or batch (POST /v1/locate).",
	}, []string{"mode"})
	reported := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmap_events_reported_total",
		Help: "Event reports answered: new (201) or replayed (the same Idempotency-Key and body again: 200).",
	}, []string{"result"})
	m.eventsNew, m.eventsReplayed = reported.WithLabelValues("new"), reported.WithLabelValues("replayed")
	m.sseSubscribers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gridmap_event_stream_subscribers",
		Help: "Open /v1/events/stream connections.",
	})
	m.sseMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gridmap_event_stream_messages_total",
		Help: "Feed entries written to stream subscribers (each subscriber counts).",
	})
	m.sseDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gridmap_event_stream_dropped_total",
		Help: "Subscribers disconnected because they read too slowly (they resume with Last-Event-ID).",
	})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmap_auth_refused_total",
		Help: "Requests refused for their credential (401, by reason) or their permission (403, reason forbidden).",
	}, []string{"reason"})
	m.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gridmap_audit_write_failures_total",
		Help: "Write requests whose audit log entry could not be stored (each is logged at error level).",
	})
	for _, k := range []string{"full", "incremental"} {
		m.locatorBuilds.WithLabelValues(k)
	}
	m.locateSingle = points.WithLabelValues("single")
	m.locateBatch = points.WithLabelValues("batch")
	// Every known label combination starts at 0, so rates work from the
	// first scrape.
	for _, k := range importKinds {
		for _, o := range importOutcomes {
			m.imports.WithLabelValues(k, o)
		}
	}
	for _, r := range importRowResult {
		m.importRows.WithLabelValues("objects", r)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration,
		m.locatorUnits, m.locatorBuilds, m.locatorBuild,
		points, m.imports, m.importRows,
		reported, m.sseSubscribers, m.sseMessages, m.sseDropped,
		m.authFailures, m.auditFailures,
		newPoolCollector(store.Pool),
	)
	if store.HasReplica() {
		m.reg.MustRegister(newReplicaCollector(store))
	}
	return m
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// eventReported counts an answered report.
func (m *metrics) eventReported(replayed bool) {
	if replayed {
		m.eventsReplayed.Inc()
	} else {
		m.eventsNew.Inc()
	}
}

// locatorBuilt records a locator swapped in, built in full or
// incrementally.
func (m *metrics) locatorBuilt(kind string, units int, took time.Duration) {
	m.locatorUnits.Set(float64(units))
	m.locatorBuilds.WithLabelValues(kind).Inc()
	m.locatorBuild.WithLabelValues(kind).Set(took.Seconds())
}

// imported counts an import request by its answer, reading the status
// written: 2xx ok, 4xx rejected, anything else (5xx, or nothing written
// because the client left) failed.
func (m *metrics) imported(w http.ResponseWriter, kind string) {
	outcome := "failed"
	if rec := recorderOf(w); rec != nil && rec.wrote {
		switch {
		case rec.status >= 200 && rec.status < 300:
			outcome = "ok"
		case rec.status >= 400 && rec.status < 500:
			outcome = "rejected"
		}
	}
	m.imports.WithLabelValues(kind, outcome).Inc()
}

// objectRows counts the rows of an object import by result.
func (m *metrics) objectRows(rep *data.ObjectImportReport) {
	for _, c := range []struct {
		result string
		n      int64
	}{{"inserted", rep.Inserted}, {"updated", rep.Updated}, {"unchanged", rep.Unchanged}, {"unassigned", rep.Unassigned}, {"rejected", rep.Rejected}} {
		if c.n > 0 {
			m.importRows.WithLabelValues("objects", c.result).Add(float64(c.n))
		}
	}
}

// poolCollector reads the pool's statistics at scrape time.
type poolCollector struct {
	pool        *pgxpool.Pool
	connections *prometheus.Desc
	acquireWait *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	return &poolCollector{
		pool: pool,
		connections: prometheus.NewDesc("gridmap_db_connections",
			"Database pool connections: acquired (in use), idle, total (including those being opened).", []string{"state"}, nil),
		acquireWait: prometheus.NewDesc("gridmap_db_acquire_wait_seconds_total",
			"Time requests waited for a database connection because the pool had none idle.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connections
	ch <- c.acquireWait
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	if c.pool == nil {
		return
	}
	st := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.TotalConns()), "total")
	ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, st.EmptyAcquireWaitTime().Seconds())
}

// replicaCollector reads the read replica's lag and routing at scrape
// time (registered only with GRIDMAP_READ_URL).
type replicaCollector struct {
	store                                 *data.Store
	lagSeconds, lagBytes, up, primaryRead *prometheus.Desc
	replicaConns                          *prometheus.Desc
}

func newReplicaCollector(store *data.Store) *replicaCollector {
	return &replicaCollector{
		store: store,
		lagSeconds: prometheus.NewDesc("gridmap_db_replica_lag_seconds",
			"Age of the last transaction the read replica replayed while it has more WAL to replay (0 when it has replayed all it received), sampled every second.", nil, nil),
		lagBytes: prometheus.NewDesc("gridmap_db_replica_lag_bytes",
			"Bytes of WAL the primary has written that the read replica has not replayed, sampled every second.", nil, nil),
		up: prometheus.NewDesc("gridmap_db_replica_up",
			"1 when the read replica answered its last sample; 0 sends every read to the primary.", nil, nil),
		primaryRead: prometheus.NewDesc("gridmap_db_replica_primary_reads_total",
			"Reads that could go to the replica but went to the primary: read_your_writes (the replica had not replayed the client's own write within the read wait), notice (it had not replayed a change this server was told of), down (it failed its last sample).", []string{"reason"}, nil),
		replicaConns: prometheus.NewDesc("gridmap_db_replica_connections",
			"Read replica pool connections: acquired (in use), idle, total.", []string{"state"}, nil),
	}
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lagSeconds, c.lagBytes, c.up, c.primaryRead, c.replicaConns} {
		ch <- d
	}
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.store.ReplicaStats()
	if !ok {
		return
	}
	up := 0.0
	if st.Healthy {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, st.LagSeconds)
	ch <- prometheus.MustNewConstMetric(c.lagBytes, prometheus.GaugeValue, float64(st.LagBytes))
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.primaryRead, prometheus.CounterValue, float64(st.PrimaryReadYourWrites), "read_your_writes")
	ch <- prometheus.MustNewConstMetric(c.primaryRead, prometheus.CounterValue, float64(st.PrimaryNotice), "notice")
	ch <- prometheus.MustNewConstMetric(c.primaryRead, prometheus.CounterValue, float64(st.PrimaryDown), "down")
	ps := c.store.ReadPool().Stat()
	ch <- prometheus.MustNewConstMetric(c.replicaConns, prometheus.GaugeValue, float64(ps.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.replicaConns, prometheus.GaugeValue, float64(ps.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.replicaConns, prometheus.GaugeValue, float64(ps.TotalConns()), "total")
}

// tileCacheCollector reads the tile cache's counters at scrape time.
type tileCacheCollector struct {
	cache                                         *tiles.Cache
	hits, misses, evictions, invalidated, renders *prometheus.Desc
	bytes, maxBytes, entries                      *prometheus.Desc
}

func newTileCacheCollector(c *tiles.Cache) *tileCacheCollector {
	return &tileCacheCollector{
		cache:       c,
		hits:        prometheus.NewDesc("gridmap_tile_cache_hits_total", "Tile requests answered from the in-memory cache.", nil, nil),
		misses:      prometheus.NewDesc("gridmap_tile_cache_misses_total", "Tile requests not in the cache (rendered, or waiting for a render of the same tile).", nil, nil),
		evictions:   prometheus.NewDesc("gridmap_tile_cache_evictions_total", "Tiles pushed out of the cache by its byte bound.", nil, nil),
		invalidated: prometheus.NewDesc("gridmap_tile_cache_invalidated_total", "Tiles dropped from the cache because data under them changed.", nil, nil),
		renders:     prometheus.NewDesc("gridmap_tile_renders_total", "Tiles rendered in PostGIS (concurrent misses of one tile share a render).", nil, nil),
		bytes:       prometheus.NewDesc("gridmap_tile_cache_bytes", "Bytes the tile cache holds (gzipped tiles and per-entry overhead).", nil, nil),
		maxBytes:    prometheus.NewDesc("gridmap_tile_cache_max_bytes", "The tile cache's byte bound.", nil, nil),
		entries:     prometheus.NewDesc("gridmap_tile_cache_entries", "Tiles in the cache.", nil, nil),
	}
}

func (c *tileCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evictions, c.invalidated, c.renders, c.bytes, c.maxBytes, c.entries} {
		ch <- d
	}
}

func (c *tileCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.cache.Stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(c.invalidated, prometheus.CounterValue, float64(st.Invalidated))
	ch <- prometheus.MustNewConstMetric(c.renders, prometheus.CounterValue, float64(st.Renders))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(c.maxBytes, prometheus.GaugeValue, float64(st.MaxBytes))
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries))
}
