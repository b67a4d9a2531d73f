// Package pgtest gives integration tests a real PostGIS database of their
// own: a fresh database per test, cloned from a migrated template (and,
// for NewDemo, from a template holding the small demo city), on the server
// that DATABASE_URL names or on the project-local cluster (`make db`).
//
// A test that cannot reach the database fails; it never skips.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/data"
	"gridmap/data/demo"
)

// DemoOptions is the small city NewDemo starts from: 盐田区, 5 streets,
// 24 communities, 8 grids each.
var DemoOptions = demo.Options{Scale: "small", District: "440308", GridsPerCommunity: 8, Seed: 1}

var (
	seq       atomic.Int64
	templates sync.Map // name → *template
)

type template struct {
	once sync.Once
	name string
	err  error
}

// URL is the server tests run against.
func URL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return data.DefaultURL
}

// New returns a store on a new, migrated, empty database, dropped when the
// test ends.
func New(t testing.TB) *data.Store {
	t.Helper()
	return clone(t, "migrated", func(ctx context.Context, s *data.Store) error { return nil })
}

// NewDemo returns a store on a new database holding the small demo city.
func NewDemo(t testing.TB) *data.Store {
	t.Helper()
	return clone(t, "demo", func(ctx context.Context, s *data.Store) error {
		res, err := demo.Build(ctx, s, DemoOptions)
		if err != nil {
			return err
		}
		if !res.Import.OK() {
			return fmt.Errorf("demo city failed validation: %+v", res.Import.Violations)
		}
		return nil
	})
}

// NewFullDemo returns a store holding the full-scale demo city (~20,000
// grids). It takes seconds; use it where scale is the point.
func NewFullDemo(t testing.TB) *data.Store {
	t.Helper()
	return clone(t, "fulldemo", func(ctx context.Context, s *data.Store) error {
		res, err := demo.Build(ctx, s, demo.Defaults)
		if err != nil {
			return err
		}
		if !res.Import.OK() {
			return fmt.Errorf("demo city failed validation: %+v", res.Import.Violations)
		}
		return nil
	})
}

func clone(t testing.TB, kind string, fill func(context.Context, *data.Store) error) *data.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tv, _ := templates.LoadOrStore(kind, &template{})
	tmpl := tv.(*template)
	tmpl.once.Do(func() { tmpl.name, tmpl.err = buildTemplate(ctx, kind, fill) })
	if tmpl.err != nil {
		t.Fatalf("pgtest: %v", tmpl.err)
	}
	name := dbName(kind)
	if err := admin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl.name)); err != nil {
		t.Fatalf("pgtest: create test database: %v", err)
	}
	s, err := data.Open(ctx, withDB(URL(), name))
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		s.Close()
		_ = admin(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return s
}

func buildTemplate(ctx context.Context, kind string, fill func(context.Context, *data.Store) error) (string, error) {
	dropStale(ctx)
	name := dbName("tmpl_" + kind)
	if err := admin(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("cannot reach PostgreSQL at %s (run `make db`, or set DATABASE_URL): %w", redact(URL()), err)
	}
	s, err := data.Open(ctx, withDB(URL(), name))
	if err != nil {
		return "", fmt.Errorf("open template %s: %w", name, err)
	}
	err = fill(ctx, s)
	s.Close()
	if err != nil {
		return "", fmt.Errorf("fill template %s: %w", name, err)
	}
	return name, nil
}

// Database names carry the test process's pid so a later run can drop what
// a killed run left behind.
func dbName(kind string) string {
	return fmt.Sprintf("gmtest_%d_%s_%d", os.Getpid(), kind, seq.Add(1))
}

var staleOnce sync.Once

func dropStale(ctx context.Context) {
	staleOnce.Do(func() {
		conn, err := pgx.Connect(ctx, withDB(URL(), "postgres"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'gmtest\_%'`)
		if err != nil {
			return
		}
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			parts := strings.SplitN(n, "_", 3)
			pid, err := strconv.Atoi(parts[1])
			if err != nil || pid == os.Getpid() {
				continue
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue // its process is still running
			}
			_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{n}.Sanitize()))
		}
	})
}

func admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, withDB(URL(), "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDB(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	return u.Redacted()
}

// NewEmpty is the URL of a fresh database with nothing in it (not even
// migrated), dropped when the test ends: for tests of the migrations.
func NewEmpty(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dropStale(ctx)
	name := dbName("empty")
	if err := admin(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: cannot reach PostgreSQL at %s (run `make db`, or set DATABASE_URL): %v", redact(URL()), err)
	}
	t.Cleanup(func() { _ = admin(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)) })
	return withDB(URL(), name)
}
