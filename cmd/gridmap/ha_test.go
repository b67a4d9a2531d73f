//go:build ha

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
)

// TestFailover runs two gridmap servers on a loopback primary and its
// synchronous streaming standby (scripts/ha.sh), one of them reading from
// the standby (--read-url). Clients report events (with Idempotency-Keys)
// and edit objects on both without pause; the primary is killed (SIGKILL)
// and the standby promoted. Then every acknowledged write must be stored
// once, the event stream resumed with Last-Event-ID must hold every
// report once, and the servers' caches (locator, tiles) must be exact.
// Run by `make test-ha` (build tag ha); it prints the failover time the
// writers saw (first failed to first successful write).
func TestFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	urls := haStart(t)
	primaryURL, readURL := urls["DATABASE_URL"], urls["GRIDMAP_READ_URL"]

	// The small demo city and an admin token, through the primary.
	st, err := data.Open(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Build(ctx, st, pgtest.DemoOptions); err != nil {
		t.Fatal(err)
	}
	token, _, err := st.CreateToken(ctx, data.NewToken{Name: "ha-test", Role: auth.Admin, Scopes: []string{auth.City}, CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	type gridPoint struct {
		code       string
		lon, lat   float64
		rev, ename string
	}
	var grids []gridPoint
	rows, err := st.Pool.Query(ctx, `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
		WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 24) g`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g gridPoint
		if err := rows.Scan(&g.code, &g.lon, &g.lat); err != nil {
			t.Fatal(err)
		}
		grids = append(grids, g)
	}
	if err := rows.Err(); err != nil || len(grids) < 8 {
		t.Fatalf("grids: %d, %v", len(grids), err)
	}
	st.Close()

	bin := gridmapBin(t)
	flags := []string{"--write-rate", "0", "--sse-heartbeat", "1s"}
	srvA := startServe(t, bin, primaryURL, append(flags, "--read-url", readURL)...)
	srvB := startServe(t, bin, primaryURL, flags...)
	servers := []*served{srvA, srvB}
	c := &haClient{token: token, http: &http.Client{Timeout: 10 * time.Second}}

	// Objects to edit, one per grid, created before the switch.
	objects := make([]string, 8)
	for i := range objects {
		objects[i] = fmt.Sprintf("%s0101%06d", grids[i].code[:6], 900001+i)
		code, status, body := c.do(ctx, srvA.base, http.MethodPost, "/v1/objects", "", objectFeature(objects[i], grids[i].lon, grids[i].lat, 0))
		if status != http.StatusCreated {
			t.Fatalf("POST object %s: %d %s", objects[i], status, body)
		}
		_ = code
	}
	// A tile over the first object, cached by both servers before the switch.
	tilePath := tileOf(grids[0].lon, grids[0].lat, 16)
	for _, s := range servers {
		if _, status, body := c.do(ctx, s.base, http.MethodGet, "/tiles/objects/"+tilePath, "", ""); status != http.StatusOK {
			t.Fatalf("tile: %d %s", status, body)
		}
	}

	// The stream, read from server B and resumed on either server after a break.
	stream := &haStream{c: c, servers: servers}
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	go func() { defer close(streamDone); stream.run(streamCtx) }()

	// Writers: each report and each object edit is retried, with the same
	// Idempotency-Key and body, until it is acknowledged.
	var (
		mu       sync.Mutex
		attempts []haAttempt
		acked    = map[string]string{} // Idempotency-Key → event code
		objLast  = map[string]int{}    // object → last acknowledged revision
		// rywMissed counts reports their writer could not read back.
		rywMissed, rywChecked int
	)
	record := func(a haAttempt) {
		mu.Lock()
		attempts = append(attempts, a)
		mu.Unlock()
	}
	writeCtx, stopWriters := context.WithCancel(ctx)
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := 0; writeCtx.Err() == nil; n++ {
				g := grids[(w*7+n)%len(grids)]
				key := fmt.Sprintf("ha-%d-%d-%s", w, n, randHex())
				body := fmt.Sprintf(`{"class":"0102","lon":%v,"lat":%v,"source":"grid_worker","description":"ha %s"}`, g.lon, g.lat, key)
				for i := 0; ; i++ {
					s := servers[(w+n+i)%2]
					start := time.Now()
					code, status, _ := c.do(ctx, s.base, http.MethodPost, "/v1/events", key, body)
					ok := status == http.StatusCreated || status == http.StatusOK
					record(haAttempt{start: start, end: time.Now(), ok: ok, status: status})
					if ok {
						mu.Lock()
						acked[key] = code
						mu.Unlock()
						// Read-your-writes: the same credential reads its
						// report back from the server that took it (A
						// reads from the standby).
						// One try: during the switch it may be a 503 (the
						// writer does not wait for the database here).
						_, st, _ := c.do(ctx, s.base, http.MethodGet, "/v1/events/"+code, "", "")
						mu.Lock()
						switch st {
						case http.StatusOK:
							rywChecked++
						case http.StatusNotFound:
							rywMissed++
						}
						mu.Unlock()
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := 1; writeCtx.Err() == nil; n++ {
				i := (w + 2*n) % len(objects)
				g := grids[i]
				body := objectFeature(objects[i], g.lon, g.lat, n)
				for try := 0; ; try++ {
					s := servers[(w+n+try)%2]
					start := time.Now()
					_, status, _ := c.do(ctx, s.base, http.MethodPut, "/v1/objects/"+objects[i], "", body)
					ok := status == http.StatusOK
					record(haAttempt{start: start, end: time.Now(), ok: ok, status: status})
					if ok {
						mu.Lock()
						objLast[objects[i]] = n
						mu.Unlock()
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}

	time.Sleep(4 * time.Second)
	// The standby is promoted promoteDelay after the kill: the time a
	// failover manager takes to decide the primary is gone. Until then
	// every write is a 503 (no host takes writes).
	promoteDelay := 2 * time.Second
	if v := os.Getenv("GRIDMAP_HA_PROMOTE_DELAY"); v != "" {
		if promoteDelay, err = time.ParseDuration(v); err != nil {
			t.Fatalf("GRIDMAP_HA_PROMOTE_DELAY: %v", err)
		}
	}
	killedAt := haTime(t, haRun(t, "kill-primary"), "killed_at")
	time.Sleep(promoteDelay)
	promoteOut := haRun(t, "promote")
	promoteAt, promotedAt := haTime(t, promoteOut, "promote_at"), haTime(t, promoteOut, "promoted_at")
	t.Logf("primary killed; standby promoted (after GRIDMAP_HA_PROMOTE_DELAY=%v, pg_ctl promote, then writable) %.3f s later", promoteDelay, promotedAt.Sub(killedAt).Seconds())

	// Writes go on until they have succeeded for a while on the new primary.
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		okAfter := 0
		for _, a := range attempts {
			if a.ok && a.start.After(promotedAt) {
				okAfter++
			}
		}
		mu.Unlock()
		if okAfter >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume within 60 s of the promotion (%d succeeded)\nA:\n%s\nB:\n%s", okAfter, srvA.logText(), srvB.logText())
		}
	}
	stopWriters()
	writers.Wait()

	// Failover time as the writers saw it.
	mu.Lock()
	sort.Slice(attempts, func(i, j int) bool { return attempts[i].end.Before(attempts[j].end) })
	var firstFail, firstOK time.Time
	failed := map[int]int{}
	for _, a := range attempts {
		if !a.ok && a.end.After(killedAt) {
			failed[a.status]++
			if firstFail.IsZero() {
				firstFail = a.end
			}
		}
	}
	for _, a := range attempts {
		if a.ok && !firstFail.IsZero() && a.start.After(firstFail) {
			firstOK = a.end
			break
		}
	}
	// The longest time no write was acknowledged, around the switch.
	var gap time.Duration
	prev := killedAt
	for _, a := range attempts {
		if a.ok && a.end.After(killedAt) {
			gap = max(gap, a.end.Sub(prev))
			prev = a.end
		}
	}
	mu.Unlock()
	t.Logf("FAILOVER: longest time without an acknowledged write from the kill on: %.3f s", gap.Seconds())
	if firstFail.IsZero() {
		t.Logf("no write failed across the switch")
	} else {
		took := firstOK.Sub(firstFail)
		t.Logf("FAILOVER: first failed write %.3f s after the kill, first successful write %.3f s after it (failover seen by clients %.3f s); failed attempts by status %v (0: no answer)",
			firstFail.Sub(killedAt).Seconds(), firstOK.Sub(killedAt).Seconds(), took.Seconds(), failed)
		t.Logf("FAILOVER: first successful write %.3f s after pg_ctl promote was run (its poll saw the node writable %.3f s after)",
			firstOK.Sub(promoteAt).Seconds(), promotedAt.Sub(promoteAt).Seconds())
		if took > 10*time.Second {
			t.Errorf("failover took %v, want < 10 s", took)
		}
		// A lost database is a 503 with Retry-After, never a 500.
		if failed[http.StatusInternalServerError] > 0 {
			for _, s := range servers {
				for _, line := range strings.Split(s.logText(), "\n") {
					if strings.Contains(line, "level=ERROR") {
						t.Log(line)
					}
				}
			}
			t.Errorf("%d writes answered 500 during the switch", failed[http.StatusInternalServerError])
		}
	}

	// Every acknowledged report is stored once, under the code it was
	// answered with; nothing else was stored.
	st, err = data.Open(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := map[string]string{} // description key → code
	rows, err = st.Pool.Query(ctx, `SELECT code, description FROM events WHERE description LIKE 'ha %'`)
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for rows.Next() {
		var code, desc string
		if err := rows.Scan(&code, &desc); err != nil {
			t.Fatal(err)
		}
		key := strings.TrimPrefix(desc, "ha ")
		if _, seen := stored[key]; seen {
			dups++
		}
		stored[key] = code
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for key, code := range acked {
		if stored[key] != code {
			lost++
			if lost < 5 {
				t.Errorf("report %s acknowledged as %s; stored as %q", key, code, stored[key])
			}
		}
	}
	t.Logf("reports acknowledged %d, stored %d, lost %d, duplicated %d", len(acked), len(stored), lost, dups)
	if lost > 0 || dups > 0 || len(stored) != len(acked) {
		t.Errorf("reports: %d acknowledged, %d stored, %d lost, %d duplicated", len(acked), len(stored), lost, dups)
	}
	for code, n := range objLast {
		var rev string
		if err := st.Pool.QueryRow(ctx, `SELECT attrs->>'rev' FROM objects WHERE code = $1`, code).Scan(&rev); err != nil {
			t.Fatal(err)
		}
		if rev != strconv.Itoa(n) {
			t.Errorf("object %s: last acknowledged edit %d, stored %s", code, n, rev)
		}
	}
	t.Logf("objects edited: %d, each holding its last acknowledged edit", len(objLast))
	// Every acknowledged write has its audit entry (written after the
	// answer; across the switch it is retried until the new primary takes
	// it).
	okWrites := 0
	for _, a := range attempts {
		if a.ok {
			okWrites++
		}
	}
	var audited int
	waitUntil(t, 10*time.Second, func() bool {
		err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE status IN (200, 201)
			AND ((method = 'POST' AND path = '/v1/events') OR (method = 'PUT' AND path LIKE '/v1/objects/%'))`).Scan(&audited)
		return err == nil && audited >= okWrites
	}, func() string {
		return fmt.Sprintf("audit log: %d entries of %d acknowledged writes", audited, okWrites)
	})
	t.Logf("audit log: an entry for each of the %d acknowledged writes", okWrites)
	t.Logf("read-your-writes: %d reports read back at once by their writer, %d not found", rywChecked, rywMissed)
	if rywMissed > 0 {
		t.Errorf("%d reports were not found by their writer right after the write (read-your-writes)", rywMissed)
	}

	// The stream: every acknowledged report once, after resuming.
	codes := map[string]bool{}
	for _, code := range acked {
		codes[code] = true
	}
	waitUntil(t, 20*time.Second, func() bool { return stream.hasAll(codes) }, func() string {
		return fmt.Sprintf("stream: %d of %d reports after %d reconnections", stream.count(codes), len(codes), stream.reconnects())
	})
	stopStream()
	<-streamDone
	if d := stream.duplicates(); d > 0 {
		t.Errorf("stream: %d messages seen twice", d)
	}
	t.Logf("stream: every report once, %d reconnections", stream.reconnects())

	// Caches after the switch. A grid renamed now reaches both locators;
	// an object moved now reaches both tile caches, which then hold what a
	// server started afterwards (with no cache) renders.
	g := grids[3]
	_, status, body := c.do(ctx, srvB.base, http.MethodGet, "/v1/units/"+g.code, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET unit: %d %s", status, body)
	}
	etag := c.lastETag
	newName := "ha renamed " + randHex()
	req := fmt.Sprintf(`{"type":"Feature","geometry":null,"properties":{"name":%q},"reason":"ha test"}`, newName)
	if _, status, body := c.doIfMatch(ctx, srvA.base, http.MethodPut, "/v1/units/"+g.code, etag, req); status != http.StatusOK {
		t.Fatalf("rename grid: %d %s", status, body)
	}
	for _, s := range servers {
		waitUntil(t, 10*time.Second, func() bool {
			_, status, body := c.do(ctx, s.base, http.MethodGet, fmt.Sprintf("/v1/locate?lon=%v&lat=%v", g.lon, g.lat), "", "")
			return status == http.StatusOK && strings.Contains(body, newName)
		}, func() string { return "locate on " + s.base + " does not show the renamed grid" })
	}
	moved := objectFeature(objects[0], grids[1].lon, grids[1].lat, 999999)
	if _, status, body := c.do(ctx, srvB.base, http.MethodPut, "/v1/objects/"+objects[0], "", moved); status != http.StatusOK {
		t.Fatalf("move object: %d %s", status, body)
	}
	fresh := startServe(t, bin, primaryURL, flags...)
	time.Sleep(2 * time.Second) // the notice reaches A and B
	want := c.tileETag(ctx, t, fresh.base, tilePath)
	for _, s := range servers {
		if got := c.tileETag(ctx, t, s.base, tilePath); got != want {
			t.Errorf("tile %s on %s: ETag %s, a fresh server renders %s", tilePath, s.base, got, want)
		}
	}
	if os.Getenv("GRIDMAP_HA_LOG") != "" {
		t.Logf("server A's log:\n%s\nserver B's log:\n%s", srvA.logText(), srvB.logText())
	}
	_, _, metrics := c.do(ctx, srvA.base, http.MethodGet, "/metrics", "", "")
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "gridmap_db_replica_") {
			t.Log(line)
		}
	}
}

type haAttempt struct {
	start, end time.Time
	ok         bool
	status     int
}

// haStart starts a fresh pair with scripts/ha.sh (stopped when the test
// ends) and returns the URLs it prints.
func haStart(t *testing.T) map[string]string {
	t.Helper()
	// Two free ports below the ephemeral range unless set: another
	// checkout's pair (make test-ha at the same time) may hold the default.
	if os.Getenv("GRIDMAP_HA_PORT1") == "" {
		p1, p2 := freePortPair(t)
		t.Setenv("GRIDMAP_HA_PORT1", strconv.Itoa(p1))
		t.Setenv("GRIDMAP_HA_PORT2", strconv.Itoa(p2))
	}
	haRun(t, "stop")
	out := haRun(t, "start")
	t.Cleanup(func() {
		if os.Getenv("GRIDMAP_HA_KEEP") == "" {
			haRun(t, "stop")
		}
	})
	urls := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			urls[k] = v
		}
	}
	if urls["DATABASE_URL"] == "" || urls["GRIDMAP_READ_URL"] == "" {
		t.Fatalf("scripts/ha.sh start printed no URLs:\n%s", out)
	}
	return urls
}

func haRun(t *testing.T, args ...string) string {
	t.Helper()
	script, err := filepath.Abs("../../scripts/ha.sh")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/ha.sh %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// freePortPair finds two consecutive ports from 25441 up that nothing
// listens on now.
func freePortPair(t *testing.T) (int, int) {
	t.Helper()
	free := func(p int) bool {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	for p := 25441; p < 32000; p += 2 {
		if free(p) && free(p+1) {
			return p, p + 1
		}
	}
	t.Fatal("no two free ports in 25441-32000")
	return 0, 0
}

// haTime reads the Unix time name=seconds.nanos that scripts/ha.sh printed.
func haTime(t *testing.T, out, name string) time.Time {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			sec, frac, _ := strings.Cut(v, ".")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			if err1 == nil && err2 == nil {
				return time.Unix(s, ns)
			}
		}
	}
	t.Fatalf("scripts/ha.sh printed no %s:\n%s", name, out)
	return time.Time{}
}

func objectFeature(code string, lon, lat float64, rev int) string {
	return fmt.Sprintf(`{"type":"Feature","geometry":{"type":"Point","coordinates":[%v,%v]},"properties":{"code":%q,"class":"0101","attrs":{"rev":"%d"}}}`,
		lon, lat, code, rev)
}

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tileOf is the z/x/y.mvt path of the tile holding lon, lat.
func tileOf(lon, lat float64, z int) string {
	n := math.Exp2(float64(z))
	x := int((lon + 180) / 360 * n)
	s := math.Sin(lat * math.Pi / 180)
	y := int((0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)) * n)
	return fmt.Sprintf("%d/%d/%d.mvt", z, x, y)
}

type haClient struct {
	token    string
	http     *http.Client
	mu       sync.Mutex
	lastETag string
}

// do sends a request and returns the answer's code property (events and
// objects), its status (0 when no answer came) and its body.
func (c *haClient) do(ctx context.Context, base, method, path, key, body string) (code string, status int, text string) {
	return c.send(ctx, base, method, path, key, "", body)
}

func (c *haClient) doIfMatch(ctx context.Context, base, method, path, etag, body string) (string, int, string) {
	return c.send(ctx, base, method, path, "", etag, body)
}

func (c *haClient) send(ctx context.Context, base, method, path, key, etag, body string) (string, int, string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return "", 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		if strings.Contains(path, "objects") || strings.Contains(path, "units") {
			req.Header.Set("Content-Type", "application/geo+json")
		}
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.mu.Lock()
	c.lastETag = resp.Header.Get("ETag")
	c.mu.Unlock()
	var f struct {
		Properties struct {
			Code string `json:"code"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(b, &f)
	return f.Properties.Code, resp.StatusCode, string(b)
}

func (c *haClient) tileETag(ctx context.Context, t *testing.T, base, path string) string {
	t.Helper()
	_, status, body := c.do(ctx, base, http.MethodGet, "/tiles/objects/"+path, "", "")
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("tile %s on %s: %d %s", path, base, status, body)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastETag
}

// haStream reads the event stream and resumes it with Last-Event-ID on
// the next server whenever it breaks.
type haStream struct {
	c       *haClient
	servers []*served

	mu      sync.Mutex
	lastID  string
	seen    map[string]int // event code of a created message → times seen
	ids     map[string]int
	reconns int
}

var sseField = regexp.MustCompile(`^(id|event|data): ?(.*)$`)

func (s *haStream) run(ctx context.Context) {
	s.seen, s.ids = map[string]int{}, map[string]int{}
	for i := 1; ctx.Err() == nil; i++ {
		base := s.servers[i%len(s.servers)].base
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+s.c.token)
		req.Header.Set("Accept", "text/event-stream")
		s.mu.Lock()
		if s.lastID != "" {
			req.Header.Set("Last-Event-ID", s.lastID)
		}
		s.mu.Unlock()
		// Each connection is dropped after 3 s and the stream resumed on
		// the other server: resumes before, across and after the switch.
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := http.DefaultClient.Do(req.WithContext(cctx))
		if err == nil && resp.StatusCode == http.StatusOK {
			s.read(resp.Body)
		}
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		s.mu.Lock()
		s.reconns++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *haStream) read(body io.Reader) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var id, event, dataLine string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if event == "created" {
				var m struct {
					Code string `json:"code"`
				}
				if json.Unmarshal([]byte(dataLine), &m) == nil {
					s.mu.Lock()
					s.seen[m.Code]++
					s.mu.Unlock()
				}
			}
			if id != "" {
				s.mu.Lock()
				s.ids[id]++
				s.lastID = id
				s.mu.Unlock()
			}
			id, event, dataLine = "", "", ""
			continue
		}
		if m := sseField.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "id":
				id = m[2]
			case "event":
				event = m[2]
			case "data":
				dataLine = m[2]
			}
		}
	}
}

func (s *haStream) hasAll(codes map[string]bool) bool { return s.count(codes) == len(codes) }

func (s *haStream) count(codes map[string]bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range codes {
		if s.seen[c] > 0 {
			n++
		}
	}
	return n
}

func (s *haStream) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.ids {
		if v > 1 {
			n++
		}
	}
	for _, v := range s.seen {
		if v > 1 {
			n++
		}
	}
	return n
}

func (s *haStream) reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconns
}

func waitUntil(t *testing.T, d time.Duration, ok func() bool, why func() string) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatal(why())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
