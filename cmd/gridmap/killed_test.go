package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// TestKilledServerFreesLocks: a server killed (SIGKILL) while its backend
// waits for a lock, holding one of its own, does not leave that backend
// and its lock behind until the wait ends: client_connection_check_interval
// makes the backend see the closed socket within seconds and end. The lock
// it waits for is still held when it has gone, so it did not just finish.
func TestKilledServerFreesLocks(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	st := pgtest.NewDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The server's sessions carry a name of their own, so that its backend
	// is told apart from this test's.
	const appName = "gridmap-killed-test"
	u, err := url.Parse(st.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	srv := startServe(t, bin, u.String())

	// An object, created through the server, that its PUT will replace.
	var grid, point string
	if err := st.Pool.QueryRow(ctx, `SELECT code, ST_AsGeoJSON(ST_PointOnSurface(geom)) FROM units
		WHERE level = 'grid' AND layer = 'base' AND valid_to IS NULL ORDER BY code LIMIT 1`).Scan(&grid, &point); err != nil {
		t.Fatal(err)
	}
	code := grid[:6] + "0101000001"
	body := fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":{"code":%q,"class":"0101"}}`, point, code)
	token, _, err := st.CreateToken(ctx, data.NewToken{Name: "killed-test", Role: auth.Editor, Scopes: []string{auth.City}, CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/v1/objects", strings.NewReader(body))
	post.Header.Set("Content-Type", "application/geo+json")
	post.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/objects: %s", resp.Status)
	}

	// This test holds the object's row; the server's PUT takes the units
	// lock (shared), then waits for the row.
	tx, err := st.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM objects WHERE code = $1 FOR UPDATE`, code); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.base+"/v1/objects/"+code, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/geo+json")
	req.Header.Set("If-Match", "*")
	req.Header.Set("Authorization", "Bearer "+token)
	answered := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %s", resp.Status)
		}
		answered <- err
	}()

	// poll runs check until it is true, for at most d; false if it never is.
	poll := func(d time.Duration, check func() (bool, error)) bool {
		t.Helper()
		for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
			ok, err := check()
			if err != nil {
				t.Fatal(err)
			}
			if ok || time.Now().After(end) {
				return ok
			}
		}
	}
	var pid int32
	waiting := poll(60*time.Second, func() (bool, error) {
		select {
		case err := <-answered:
			return false, fmt.Errorf("the PUT ended before it waited for the row: %v", err)
		default:
		}
		// The server's backend: waiting for a lock, holding the units lock.
		err := st.Pool.QueryRow(ctx, `
			SELECT a.pid FROM pg_stat_activity a
			WHERE a.datname = current_database() AND a.application_name = $1 AND a.wait_event_type = 'Lock'
			  AND EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)
			  AND EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted)`, appName).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	})
	if !waiting {
		t.Fatalf("the server's backend never waited for the row while holding the units lock:\n%s", srv.logText())
	}
	// The units lock cannot be taken exclusively while the backend lives.
	unitsFree := func() (bool, error) {
		var ok bool
		err := st.Pool.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('gridmap.units'))`).Scan(&ok)
		return ok, err
	}
	if free, err := unitsFree(); err != nil || free {
		t.Fatalf("units lock free while the server's backend %d holds it (err %v)", pid, err)
	}

	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-srv.exited
	const bound = 10 * time.Second // client_connection_check_interval is 2 s
	gone := poll(bound, func() (bool, error) {
		var alive bool
		if err := st.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive); err != nil || alive {
			return false, err
		}
		return unitsFree()
	})
	took := time.Since(killed)
	if !gone {
		var state string
		if err := st.Pool.QueryRow(ctx, `SELECT coalesce((SELECT state || ', waiting for ' || coalesce(wait_event_type, 'nothing')
			FROM pg_stat_activity WHERE pid = $1), 'gone')`, pid).Scan(&state); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("%s after SIGKILL the units lock is still held; the server's backend %d: %s", took.Round(time.Millisecond), pid, state)
	}
	t.Logf("backend %d gone and the units lock free %s after SIGKILL", pid, took.Round(time.Millisecond))

	// The row is still locked by this test: the backend ended because its
	// server went, not because its wait was over.
	_, err = st.Pool.Exec(ctx, `SELECT 1 FROM objects WHERE code = $1 FOR UPDATE NOWAIT`, code)
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Errorf("the test's row lock is not held any more: FOR UPDATE NOWAIT gave %v, want lock_not_available", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Errorf("the test's transaction: %v", err)
	}
}
