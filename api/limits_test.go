package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/pgtest"
)

const typeBusy = "https://gridmap.dev/problems/busy"

// trickle opens a request on a raw connection whose body arrives a byte
// every 100 ms until stop is closed; it returns the connection so that the
// caller can read the answer.
func trickle(t *testing.T, base, path string, stop <-chan struct{}) net.Conn {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/geo+json\r\nContent-Length: 1000000\r\n\r\n{\"type\":\"FeatureCollection\",\"features\":[", path, u.Host, tokenOf(base))
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	return c
}

// within runs a request and checks that it answers status within d.
func within(t *testing.T, e *apiEnv, d time.Duration, path string, status int) {
	t.Helper()
	start := time.Now()
	r := e.get(path)
	if took := time.Since(start); took > d {
		t.Errorf("GET %s took %s while heavy requests ran, want under %s", path, took.Round(time.Millisecond), d)
	}
	if r.Status != status {
		t.Errorf("GET %s: %s, want %d", path, r, status)
	}
}

// TestHeavyLimit: 25 heavy requests whose bodies trickle in take every
// heavy slot; the 26th is refused with 429 and Retry-After, and cheap
// reads (readiness, locate, tiles, objects) still answer at once.
func TestHeavyLimit(t *testing.T) {
	t.Parallel()
	const heavy = 25
	e := newEnv(t, pgtest.NewDemo(t), api.Options{HeavyRequests: heavy})
	x, y, _ := demoPoint(t, e, "")
	code := demoDistrict + "0101000001"
	expect(t, e.post("/v1/objects", objFeatureJSON(code, "0101", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)
	tx, ty := lonLatTile(14, x, y)

	stop := make(chan struct{})
	defer close(stop)
	// Each reads its whole body before it takes a lock or a connection
	// (objects:import spools it), so a trickling one holds neither.
	paths := []string{"/v1/units:validate", "/v1/units:import", "/v1/objects:import"}
	for i := range heavy {
		trickle(t, e.url, paths[i%len(paths)], stop)
	}
	// The 25 hold their slots once their headers are read: a further
	// heavy request is refused from then on. A probe sent before the last
	// of them is read would take that one's slot and leave it refused, so
	// the probes wait a moment first and between tries.
	small := `{"type":"FeatureCollection","features":[]}`
	var r reply
	for deadline := time.Now().Add(20 * time.Second); ; {
		time.Sleep(time.Second)
		r = e.post("/v1/units:validate", small)
		if r.Status == http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	p := expectProblem(t, r, http.StatusTooManyRequests, typeBusy, "", "25")
	if p.Limit == nil || *p.Limit != heavy {
		t.Errorf("limit %v, want %d", p.Limit, heavy)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// A large batch locate is heavy too; a small one is not.
	many := strings.Repeat(fmt.Sprintf("[%v,%v],", x, y), 2000)
	expectProblem(t, e.post("/v1/locate", `{"points":[`+many[:len(many)-1]+`]}`), http.StatusTooManyRequests, typeBusy, "")
	expect(t, e.post("/v1/locate", fmt.Sprintf(`{"points":[[%v,%v]]}`, x, y)), http.StatusOK, ctJSON, nil)

	for range 3 {
		within(t, e, 2*time.Second, "/readyz", http.StatusOK)
		within(t, e, 2*time.Second, fmt.Sprintf("/v1/locate?lon=%v&lat=%v", x, y), http.StatusOK)
		within(t, e, 2*time.Second, fmt.Sprintf("/tiles/units/14/%d/%d.mvt", tx, ty), http.StatusOK)
		within(t, e, 2*time.Second, fmt.Sprintf("/tiles/objects/14/%d/%d.mvt", tx, ty), http.StatusOK)
		within(t, e, 2*time.Second, "/v1/objects/"+code, http.StatusOK)
		within(t, e, 2*time.Second, "/v1/units?level=street&geometry=none", http.StatusOK)
	}
}

// TestHeavyBodyDeadline: a heavy body that does not arrive within
// HeavyTimeout is answered 408 and its slot freed.
func TestHeavyBodyDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{HeavyRequests: 1, HeavyTimeout: time.Second})
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	c := trickle(t, e.url, "/v1/units:validate", stop)
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer to a trickling body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive within 1s") {
		t.Errorf("status %d, want 408 naming the limit: %s", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("answered after %s, want about 1 s", took)
	}
	// The slot is free again.
	if r := e.post("/v1/units:validate", `{"type":"FeatureCollection","features":[]}`); r.Status == http.StatusTooManyRequests {
		t.Errorf("after the trickling body failed: %s", r)
	}
}

// lockObjects holds an ACCESS EXCLUSIVE lock on the objects table until
// the test ends or release is called: every object read waits for it.
func lockObjects(t *testing.T, s *data.Store) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `LOCK TABLE objects IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// waitingBackends counts the backends of s's database waiting for a lock.
func waitingBackends(t *testing.T, s *data.Store) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'active' AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRequestTimeout: an ordinary request past RequestTimeout answers 503
// with Retry-After and nothing of its SQL, and its statement is cancelled
// on the server.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	e := newEnv(t, s, api.Options{RequestTimeout: 500 * time.Millisecond})
	lockObjects(t, s)
	start := time.Now()
	r := e.get("/v1/objects/" + demoDistrict + "0101000001")
	expectUnavailable(t, "a read past its deadline", r, dbSecrets(t, s.URL(), "from objects", "57014", "canceling"))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %s, want about 0.5 s", took)
	}
	waitFor(t, 3*time.Second, "the timed-out statement ends on the server", func() bool { return waitingBackends(t, s) == 0 })
}

// TestStatementTimeout: the pool's statement_timeout ends a statement
// the request itself would have let run: 503 with Retry-After.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	short, err := data.OpenWith(context.Background(), s.URL(), data.PoolOptions{StatementTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(short.Close)
	e := newEnv(t, short, api.Options{})
	var st string
	if err := short.Pool.QueryRow(context.Background(), `SELECT current_setting('statement_timeout')`).Scan(&st); err != nil || st != "300ms" {
		t.Fatalf("statement_timeout %q (%v), want 300ms", st, err)
	}
	lockObjects(t, s)
	r := e.get("/v1/objects/" + demoDistrict + "0101000001")
	expectUnavailable(t, "a statement past statement_timeout", r, dbSecrets(t, s.URL(), "from objects", "57014", "statement timeout"))
}

// TestPoolSessionSettings: every pooled connection carries the timeouts
// and keepalives that bound what a lost client or server leaves behind.
func TestPoolSessionSettings(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	want := map[string]string{
		"statement_timeout":                   "5min",
		"idle_in_transaction_session_timeout": "1min",
		"tcp_keepalives_idle":                 "30",
		"tcp_keepalives_interval":             "10",
		"tcp_keepalives_count":                "3",
		"client_connection_check_interval":    "2s",
	}
	for k, v := range want {
		var got string
		if err := s.Pool.QueryRow(context.Background(), `SELECT current_setting($1)`, k).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestClientGoneCancelsStatement: a client that hangs up while its read
// waits in the database gets its statement cancelled there within
// seconds, not when the lock it waits for is released.
func TestClientGoneCancelsStatement(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	e := newEnv(t, s, api.Options{})
	release := lockObjects(t, s)
	ctx, hangUp := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/objects/"+demoDistrict+"0101000001", nil)
		resp, err := http.DefaultClient.Do(e.authorize(req))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, 10*time.Second, "the read waits for the lock", func() bool { return waitingBackends(t, s) == 1 })
	hangUp()
	<-done
	start := time.Now()
	waitFor(t, 3*time.Second, "the statement of the client that left is cancelled", func() bool { return waitingBackends(t, s) == 0 })
	t.Logf("cancelled %s after the client left", time.Since(start).Round(time.Millisecond))
	release()
	// The pool's connections are still good.
	expect(t, e.get("/v1/units?level=district&geometry=none"), http.StatusOK, ctGeoJSON, nil)
}

// TestStreamOutlivesConnectionTimeouts: the connection's read and write
// timeouts (here 1 s) bound ordinary requests, not an event stream, which
// keeps its heartbeats flowing past them.
func TestStreamOutlivesConnectionTimeouts(t *testing.T) {
	t.Parallel()
	srv, err := api.New(context.Background(), pgtest.New(t), api.Options{PublicRead: true, ReadTimeout: time.Second, WriteTimeout: time.Second,
		SSEHeartbeat: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.FollowEvents(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); cancel(); srv.Close() })

	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	start := time.Now()
	beats := 0
	for time.Since(start) < 3*time.Second && sc.Scan() {
		if strings.HasPrefix(sc.Text(), ": heartbeat") {
			beats++
		}
	}
	if elapsed := time.Since(start); elapsed < 3*time.Second {
		t.Fatalf("the stream ended after %s (%d heartbeats): %v", elapsed, beats, sc.Err())
	}
	if beats < 5 {
		t.Errorf("%d heartbeats in 3 s, want about 15", beats)
	}
}
