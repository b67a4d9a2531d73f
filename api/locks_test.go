package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// Read-only work takes no write lock, and a body that has not arrived holds
// none: the tests below run a writer next to each of them and require it
// to finish first.

// cityCollection is every current unit of the store as the
// FeatureCollection a client would import.
func cityCollection(t *testing.T, e *apiEnv) string {
	t.Helper()
	var fc string
	if err := e.store.Pool.QueryRow(context.Background(), `
		SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object(
			'type', 'Feature', 'geometry', ST_AsGeoJSON(geom, 9)::json,
			'properties', json_build_object('code', code, 'name', name, 'level', level, 'parent_code', parent_code, 'complete', complete))))::text
		FROM units WHERE valid_to IS NULL AND layer = 'base'`).Scan(&fc); err != nil {
		t.Fatal(err)
	}
	return fc
}

// backendOf waits for the backend whose current or last query matches like
// to be inside a transaction, and returns its pid.
func backendOf(t *testing.T, e *apiEnv, like string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var pid int
		err := e.store.Pool.QueryRow(context.Background(), `
			SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND query LIKE $1
			LIMIT 1`, like).Scan(&pid)
		if err == nil {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no backend running %q within 60 s", like)
	return 0
}

// heldLocks lists the advisory locks pid holds, and its locks on units
// and objects stronger than a reader's.
func heldLocks(t *testing.T, e *apiEnv, pid int) []string {
	t.Helper()
	return sqlStrings(t, e.store, `
		SELECT locktype || ' ' || mode || ' ' || coalesce(relation::regclass::text, '')
		FROM pg_locks
		WHERE pid = $1 AND (locktype = 'advisory' OR relation IN ('units'::regclass, 'objects'::regclass) AND mode <> 'AccessShareLock')`, pid)
}

// TestChecksTakeNoWriteLock: while a validate of the whole demo city and
// the topology report of its base layer run, an object write and a unit
// import complete — before either check does, and neither check ever
// holds the units lock.
func TestChecksTakeNoWriteLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewFullDemo(t), api.Options{MaxImportBytes: 512 << 20})
	city := cityCollection(t, e)
	x, y, g := demoPoint(t, e, "")
	obj := objFeatureJSON(g[:6]+"0101000001", "0101", pointJSON(x, y), "")
	var other, otherGeom string
	if err := e.store.Pool.QueryRow(context.Background(), `
		SELECT code, ST_AsGeoJSON(geom, 9) FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' AND left(code, 6) <> $1 ORDER BY code DESC LIMIT 1`, g[:6]).Scan(&other, &otherGeom); err != nil {
		t.Fatal(err)
	}
	rename := featureCollection(unitFeat(other, "grid", otherGeom)) // a new name: a new version

	var checks sync.WaitGroup
	var mu sync.Mutex
	var done []string // what finished, in order
	finished := func(what string) {
		mu.Lock()
		done = append(done, what)
		mu.Unlock()
	}
	checks.Go(func() {
		r := e.post("/v1/units:validate", city)
		if r.Status != http.StatusOK {
			t.Errorf("validate: %s", r)
		}
		finished("validate")
	})
	validate := backendOf(t, e, "%stage%")
	checks.Go(func() {
		r := e.get("/v1/topology/issues")
		if r.Status != http.StatusOK {
			t.Errorf("topology issues: %s", r)
		}
		finished("topology")
	})

	expect(t, e.post("/v1/objects", obj), http.StatusCreated, ctGeoJSON, nil)
	finished("object write")
	var rep struct{ Updated int }
	expect(t, e.post("/v1/units:import", rename), http.StatusOK, ctJSON, &rep)
	if rep.Updated != 1 {
		t.Errorf("import of %s updated %d units, want 1", other, rep.Updated)
	}
	finished("unit import")
	if locks := heldLocks(t, e, validate); len(locks) > 0 {
		t.Errorf("the validate holds %v", locks)
	}
	checks.Wait()
	if strings.Join(done[:2], ",") != "object write,unit import" {
		t.Errorf("finished in the order %v: the writes waited for a check", done)
	}
}

// TestObjectImportKeepsReadersGoing: a large object import into a table
// that holds objects never takes an ACCESS EXCLUSIVE lock on objects, and
// object reads during it answer within a second.
func TestObjectImportKeepsReadersGoing(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, g := demoPoint(t, e, "")
	first := g[:6] + "0101000001"
	expect(t, e.post("/v1/objects", objFeatureJSON(first, "0101", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)

	// 60,000 rows, above the size from which an import into an empty
	// table drops its indexes, and over 4 MiB, so the body is spooled to a
	// file.
	const n = 60000
	var b strings.Builder
	b.WriteString("code,class,lon,lat,note\n")
	for i := 2; i < n+2; i++ {
		fmt.Fprintf(&b, "%s0101%06d,0101,%g,%g,%s\n", g[:6], i, x, y, strings.Repeat("x", 60))
	}
	body := b.String()

	imported := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/objects:import", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(e.authorize(req))
		if err != nil {
			t.Error(err)
			imported <- reply{}
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		imported <- reply{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	}()

	var polls int
	var slowest time.Duration
	for {
		select {
		case r := <-imported:
			expect(t, r, http.StatusCreated, ctJSON, nil)
			if polls < 5 {
				t.Errorf("only %d reads ran during the import", polls)
			}
			t.Logf("%d reads during the import, slowest %s", polls, slowest)
			if slowest > time.Second {
				t.Errorf("an object read took %s during the import", slowest)
			}
			if got := sqlInt(t, e.store, `SELECT count(*) FROM objects`); got != n+1 {
				t.Errorf("%d objects after the import, want %d", got, n+1)
			}
			return
		default:
		}
		if locks := sqlStrings(t, e.store, `
			SELECT mode FROM pg_locks WHERE relation = 'objects'::regclass AND mode = 'AccessExclusiveLock'
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); len(locks) > 0 {
			t.Fatalf("the import holds %v on objects", locks)
		}
		start := time.Now()
		expect(t, e.get("/v1/objects/"+first), http.StatusOK, ctGeoJSON, nil)
		slowest = max(slowest, time.Since(start))
		polls++
		time.Sleep(10 * time.Millisecond)
	}
}

// stalledImport opens a connection that sends the headers of an object
// import and half its body, then sends nothing more.
func stalledImport(t *testing.T, e *apiEnv) net.Conn {
	t.Helper()
	u, _ := url.Parse(e.url)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	half := "code,class,lon,lat\n440308010100"
	fmt.Fprintf(c, "POST /v1/objects:import HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", u.Host, e.token, 2*len(half), half)
	return c
}

// TestStalledImportBodyHoldsNoLocks: while a client has sent half an
// object import and stalls, an object write, a unit import and another
// object import complete.
func TestStalledImportBodyHoldsNoLocks(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	c := stalledImport(t, e)
	time.Sleep(300 * time.Millisecond) // the server is reading the body
	x, y, g := demoPoint(t, e, "")
	done := make(chan []int, 1)
	go func() {
		var got []int
		got = append(got, e.post("/v1/objects", objFeatureJSON(g[:6]+"0101000001", "0101", pointJSON(x, y), "")).Status)
		got = append(got, e.post("/v1/units:import", testCity).Status)
		csv := fmt.Sprintf("code,class,lon,lat\n%s0101000002,0101,%g,%g\n", g[:6], x, y)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/objects:import", strings.NewReader(csv))
		req.Header.Set("Content-Type", "text/csv")
		if resp, err := http.DefaultClient.Do(e.authorize(req)); err == nil {
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		done <- got
	}()
	select {
	case got := <-done:
		if fmt.Sprint(got) != "[201 201 201]" {
			t.Fatalf("object write, unit import, object import answered %v, want [201 201 201]", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the writes did not finish within 60 s of a stalled import body")
	}
	// The stalled client is still connected and unanswered.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
		t.Fatalf("the stalled import was answered or closed (%d bytes, %v) before the others finished", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestStalledImportBodyTimesOut: a body that sends nothing for
// BodyStallTimeout is a 408, and nothing is written.
func TestStalledImportBodyTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{BodyStallTimeout: 300 * time.Millisecond})
	before := tableState(t, e)
	c := stalledImport(t, e)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	expectProblem(t, reply{Status: resp.StatusCode, Header: resp.Header, Body: raw}, http.StatusRequestTimeout, typeBadRequest, "", "sent nothing for 300ms", "nothing was written")
	expectUnchanged(t, e, before, "a stalled import")
}
