package data_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/data"
	"gridmap/data/pgtest"
)

// dbName is the name of s's database.
func dbName(t *testing.T, s *data.Store) string {
	t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return u.Path[1:]
}

// TestReaderRouting: with a read URL (here the same database, which as a
// primary has replayed everything it wrote) reads go to the read pool once
// it has replayed what they must see, and to the primary when it has not
// within the read wait, counted by reason; a write's reads always go to
// the primary.
func TestReaderRouting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.New(t)
	s, err := data.OpenWith(ctx, base.URL(), data.PoolOptions{ReadURL: base.URL(), ReadWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.HasReplica() || s.ReadPool() == s.Pool {
		t.Fatal("no read pool")
	}
	now, err := s.WriteLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	far := now + 1<<40 // a position the "replica" will not reach
	s.NoteWrite(ctx, "token:writer")
	for _, c := range []struct {
		name    string
		ctx     context.Context
		primary bool
	}{
		{"plain read", ctx, false},
		{"a write's reads", data.OnPrimary(ctx), true},
		{"after a write it has replayed", data.ReadAfter(ctx, now), false},
		{"the writer's reads", s.ReadFor(ctx, "token:writer"), false},
		{"another credential", s.ReadFor(ctx, "token:other"), false},
		{"after a write it has not replayed", data.ReadAfter(ctx, far), true},
	} {
		if got := s.Reader(c.ctx) == s.Pool; got != c.primary {
			t.Errorf("%s: on the primary %v, want %v", c.name, got, c.primary)
		}
	}
	st, _ := s.ReplicaStats()
	if st.PrimaryReadYourWrites != 1 || st.PrimaryNotice != 0 || !st.Healthy {
		t.Errorf("stats %+v, want 1 read-your-writes read on the primary, healthy", st)
	}
	// A floor the replica has not reached sends every read to the primary.
	s.RaiseFloor(far)
	if s.Reader(ctx) != s.Pool {
		t.Error("a read under the floor went to the replica")
	}
	if st, _ := s.ReplicaStats(); st.PrimaryNotice != 1 {
		t.Errorf("notice reads on the primary: %d, want 1", st.PrimaryNotice)
	}
	// The reads work (the replica's pool speaks EWKB like the primary's).
	if _, err := s.CountObjects(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnly: a database that takes no writes is not migrated or
// seeded but opened when its schema is current, and refused with
// ErrSchemaBehind when it is not; so is NoMigrate on a writable one.
// Writes through it fail with 25006, which the API answers 503.
func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.New(t)
	name := dbName(t, base)
	if _, err := base.Pool.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	ro, err := data.Open(ctx, base.URL())
	if err != nil {
		t.Fatalf("open a read-only database: %v", err)
	}
	n, err := ro.CountObjects(ctx)
	if err != nil || n != 0 {
		t.Fatalf("read: %d, %v", n, err)
	}
	_, err = ro.Pool.Exec(ctx, `INSERT INTO departments (code, name) VALUES ('ro', 'ro')`)
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "25006" {
		t.Errorf("write to a read-only database: %v, want 25006", err)
	}
	ro.Close()

	if _, err := base.Pool.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	pending, err := data.PendingMigrations(ctx, base.Pool)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v, %v; want the one removed", pending, err)
	}
	if _, err := data.OpenWith(ctx, base.URL(), data.PoolOptions{NoMigrate: true}); !errors.Is(err, data.ErrSchemaBehind) {
		t.Errorf("NoMigrate on a schema behind: %v, want ErrSchemaBehind", err)
	}
}
