// Package data is gridmap's PostGIS store: the schema and its migrations,
// the unit hierarchy with its versions and topology checks, the managed
// objects with their classes and grid assignment, and the events with
// their workflow, configuration and live feed.
//
// Files are named by domain: unit_* (queries, imports, topology), object_*
// (classes, writes, imports, queries, stats, reassignment), event_*
// (reports, transitions, queries, configuration, feed, stats). sql.go holds
// the SQL helpers they share (querier, forEach, transactions, the WHERE
// and keyset builder of the lists and their cursors); errors.go every error
// the store returns, each with the HTTP status the API answers it with.
package data

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the project-local cluster that scripts/db.sh starts.
const DefaultURL = "postgres://postgres@127.0.0.1:55432/gridmap?sslmode=disable"

// Store is the PostGIS-backed store.
type Store struct {
	// Pool is the primary's: writes, LISTEN, and reads that must be
	// current. Its URL may list several hosts with
	// target_session_attrs=read-write: a new connection goes to whichever
	// takes writes, so after a failover the pool refills from the
	// promoted standby (replica.go).
	Pool *pgxpool.Pool
	url  string
	// session is PoolOptions.SessionURL's parsed config; nil: LISTEN and
	// migrations use url like everything else.
	session  *pgx.ConnConfig
	eventCfg atomic.Pointer[EventConfig]
	replica  *replica // nil: every read goes to Pool
	// eventMonths are the months whose event partitions this store made
	// or found (first of the month, UTC) → true.
	eventMonths sync.Map
}

// PoolOptions bound what one connection of the pool may hold on the
// server; a zero field takes its default.
type PoolOptions struct {
	// StatementTimeout ends any statement that runs longer (default 5
	// min): a backstop above the API's per-request deadlines that also
	// holds when this process is gone.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout ends a session that sits in an open
	// transaction doing nothing (default 1 min), so its locks go.
	IdleInTransactionTimeout time.Duration
	// ReadURL, when set, is a streaming replica (hot standby) for the
	// reads Reader routes to it; it is never migrated or seeded, and may
	// be read-only. ReadWait bounds how long a read waits for the replica
	// to replay what it must see before it goes to the primary (default
	// DefaultReadWait).
	ReadURL  string
	ReadWait time.Duration
	// NoMigrate opens the store without migrating or seeding (the schema
	// must be current): for deployments that migrate as a separate step.
	NoMigrate bool
	// SessionURL, when set, reaches the primary without a transaction
	// pooler, for what needs a session of its own: LISTEN and the
	// migrations' advisory lock. The main URL may then go through
	// PgBouncer in transaction mode (docs/design-notes.md, Failover and
	// read replicas).
	SessionURL string
}

// Defaults of PoolOptions.
const (
	DefaultStatementTimeout         = 5 * time.Minute
	DefaultIdleInTransactionTimeout = time.Minute
)

// Open migrates the database and connects a pool whose connections exchange
// PostGIS geometry as EWKB bytes, with the default PoolOptions.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, PoolOptions{})
}

// OpenWith is Open with pool options. It migrates and seeds only a
// database that takes writes, and not at all with NoMigrate: a server
// started while DATABASE_URL reaches only a hot standby serves reads (its
// writes answer 503 until a primary is back), and one whose operators
// migrate by hand (`gridmap migrate`) does not race them. Either way the
// schema must be current.
func OpenWith(ctx context.Context, url string, po PoolOptions) (*Store, error) {
	sessionURL := url
	var session *pgx.ConnConfig
	if po.SessionURL != "" {
		sessionURL = po.SessionURL
		cc, err := pgx.ParseConfig(sessionURL)
		if err != nil {
			return nil, fmt.Errorf("session URL: %w", err)
		}
		configureConn(cc, po)
		session = cc
	}
	if !po.NoMigrate {
		if _, err := migrateIfWritable(ctx, sessionURL); err != nil {
			return nil, err
		}
	}
	pool, err := openPool(ctx, url, po)
	if err != nil {
		return nil, err
	}
	s := &Store{Pool: pool, url: url, session: session}
	var writable bool
	err = pool.QueryRow(ctx, writableSQL).Scan(&writable)
	if err == nil && (po.NoMigrate || !writable) {
		err = checkSchema(ctx, pool)
	}
	if err == nil && writable && !po.NoMigrate {
		if err = s.seedClasses(ctx); err != nil {
			err = fmt.Errorf("seed object classes: %w", err)
		} else if err = s.seedEvents(ctx); err != nil {
			err = fmt.Errorf("seed event classes and calendar: %w", err)
		}
	}
	if err == nil && po.ReadURL != "" {
		if err = s.openReplica(ctx, po); err != nil {
			err = fmt.Errorf("read URL: %w", err)
		}
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// openReplica connects the read pool. Nothing is written there: a hot
// standby refuses writes, and the primary's migrations reach it by
// replication.
func (s *Store) openReplica(ctx context.Context, po PoolOptions) error {
	pool, err := openPool(ctx, po.ReadURL, po)
	if err != nil {
		return err
	}
	wait := po.ReadWait
	if wait <= 0 {
		wait = DefaultReadWait
	}
	r := &replica{pool: pool, wait: wait, done: make(chan struct{})}
	s.replica = r
	// Whatever was committed before the store opened (the migrations just
	// applied, the data this server loads first) is the first floor.
	if err := s.raiseFloor(ctx, s.Pool); err != nil {
		pool.Close()
		s.replica = nil
		return err
	}
	// The first sample before any read: a replica still far behind (or
	// down) is known as such at once.
	s.sampleReplica(ctx)
	var bg context.Context
	bg, r.stop = context.WithCancel(context.Background())
	go s.sampleLoop(bg)
	return nil
}

// openPool connects a pool whose connections exchange geometry as EWKB and
// carry configureConn's settings.
func openPool(ctx context.Context, url string, po PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.AfterConnect = registerGeometry
	configureConn(cfg.ConnConfig, po)
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default (the CPU count, at least 4) is too few for a
		// server whose reporting writers, tile renders and reads run at
		// once; PostgreSQL's own default allows 100.
		cfg.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// configureConn makes the pool's connections safe against clients and
// servers that go away. Settings the URL names itself are left alone.
func configureConn(cc *pgx.ConnConfig, po PoolOptions) {
	if po.StatementTimeout <= 0 {
		po.StatementTimeout = DefaultStatementTimeout
	}
	if po.IdleInTransactionTimeout <= 0 {
		po.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	params := map[string]string{
		"statement_timeout":                   ms(po.StatementTimeout),
		"idle_in_transaction_session_timeout": ms(po.IdleInTransactionTimeout),
		// The server probes an idle client socket after 30 s, every 10 s,
		// 3 times: a machine that vanished without closing its sockets
		// frees its backends (and their locks) within a minute, not after
		// the kernel's two hours.
		"tcp_keepalives_idle":     "30",
		"tcp_keepalives_interval": "10",
		"tcp_keepalives_count":    "3",
		// A backend busy in a statement (or waiting for a lock) does not
		// read its socket; this makes it look every 2 s, so the statement
		// of a killed server ends then rather than when it finishes.
		"client_connection_check_interval": "2000",
	}
	for k, v := range params {
		if _, set := cc.RuntimeParams[k]; !set {
			cc.RuntimeParams[k] = v
		}
	}
	if cc.ConnectTimeout == 0 {
		// An unreachable database answers requests with 503 within this,
		// rather than when each request's deadline ends.
		cc.ConnectTimeout = 5 * time.Second
	}
	// The same keepalives from this side: a database host that vanished
	// fails the connections to it in under a minute.
	d := &net.Dialer{Timeout: cc.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}}
	cc.DialFunc = d.DialContext
	// pgx's default answers a cancelled context by closing the socket,
	// which leaves the backend running the statement; a cancel request
	// stops it at once (a client that went away, a request past its
	// deadline), and the connection stays usable. The socket is still
	// closed after a second: a session that runs nothing (LISTEN waiting
	// for a notice) has no statement to cancel, and its wait must end.
	cc.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: time.Second}
	}
}

// URL is the connection string the store was opened with.
func (s *Store) URL() string { return s.url }

// Close closes the pools.
func (s *Store) Close() {
	if r := s.replica; r != nil {
		r.stop()
		<-r.done
		r.pool.Close()
	}
	s.Pool.Close()
}

// registerGeometry makes pgx send and receive geometry in binary, which for
// PostGIS is EWKB; without it geometry arrives as hex text.
func registerGeometry(ctx context.Context, conn *pgx.Conn) error {
	var oid uint32
	err := conn.QueryRow(ctx, `SELECT oid FROM pg_type WHERE typname = 'geometry'`).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("PostGIS is not installed in this database")
	}
	if err != nil {
		return err
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "geometry", OID: oid, Codec: pgtype.ByteaCodec{}})
	return nil
}

// Ready checks that the database answers.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	return s.Pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

//go:embed seed/*.csv
var seedFiles embed.FS

// readSeed reads the seed file name (seed/….csv) with read.
func readSeed[T any](name string, read func(io.Reader) ([]T, error)) ([]T, error) {
	raw, err := seedFiles.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return read(bytes.NewReader(raw))
}

// readCatalogue reads a catalogue in CSV (a header line, then rows of
// fields columns), each row made an entry by parse; an error names what
// is read and the line.
func readCatalogue[T any](in io.Reader, what string, fields int, parse func(rec []string) (T, error)) ([]T, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = fields
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("%s CSV header: %w", what, err)
	}
	var out []T
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s CSV: %w", what, err)
		}
		v, err := parse(rec)
		if err != nil {
			return nil, fmt.Errorf("%s CSV line %d: %w", what, line, err)
		}
		out = append(out, v)
	}
}
