package data_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

// TestFollowReconnects: Follow calls fn when it starts listening, on every
// notice, and again after its connection is lost, telling how long it was
// down; it returns when its context ends.
func TestFollowReconnects(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan time.Duration, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Follow(ctx, "gridmap_test", slog.New(slog.NewTextHandler(io.Discard, nil)), func(down time.Duration) { calls <- down })
	}()
	next := func(what string) time.Duration {
		t.Helper()
		select {
		case d := <-calls:
			return d
		case <-time.After(10 * time.Second):
			t.Fatalf("no call of fn %s", what)
			return 0
		}
	}
	if d := next("at the start"); d != 0 {
		t.Errorf("first call: down %v, want 0", d)
	}
	if _, err := s.Pool.Exec(ctx, `SELECT pg_notify('gridmap_test', '')`); err != nil {
		t.Fatal(err)
	}
	if d := next("on a notice"); d != 0 {
		t.Errorf("notice: down %v, want 0", d)
	}
	var killed bool
	if err := s.Pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate the listener: %v %v", killed, err)
	}
	if d := next("after the connection was lost"); d <= 0 {
		t.Errorf("after a reconnection: down %v, want more than 0", d)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}
}
