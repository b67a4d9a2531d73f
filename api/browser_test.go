package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/web"
)

// TestWallMapInBrowser serves the small demo city (with a few hundred
// objects and a month of events) and runs web/test/wall.test.mjs: the wall
// map at 3840×2160 in headless Chromium (Debian's, driven by
// playwright-core), which checks that tiles render at the district zoom and
// at z14, that a click drills down, that events show as counts and points,
// that an event reported and moved on while the page is open shows at once
// (the live stream), and saves screenshots in out/screenshots/. Missing
// Node.js, playwright-core (`make web`) or Chromium (`make browser-deps`)
// fail it.
// screenshotDir is where the browser tests save their screenshots.
func screenshotDir(t *testing.T) string {
	t.Helper()
	shots, err := filepath.Abs("../out/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	return shots
}

func TestWallMapInBrowser(t *testing.T) {
	t.Parallel()
	node, webDir := browserTools(t)
	shots := screenshotDir(t)
	ctx := context.Background()
	store := withDemoObjectsSeed(t, pgtest.NewDemo(t), 600, 7)
	// A month of events, worked through the workflow up to now: counts by
	// status at low zoom, points from z13, some of them overdue.
	evs, err := demo.Events(ctx, store, 300, 7, time.Now())
	if err != nil || evs.Events != 300 {
		t.Fatalf("demo events: %+v, %v", evs, err)
	}
	t.Logf("demo events: %d (%v), %d overdue", evs.Events, evs.ByStatus, evs.Overdue)
	// The wall as `make run` serves it: public reads; the test's own
	// writes (a report, a move) with an admin token.
	hs := serveForBrowser(t, store, api.Options{PublicRead: true})
	runNodeTest(t, node, webDir, "test/wall.test.mjs",
		"GRIDMAP_URL="+hs.URL, "GRIDMAP_TOKEN="+adminToken(t, store), "GRIDMAP_SCREENSHOTS="+shots)
	t.Logf("screenshots in %s", shots)
}

// browserTools finds Node.js and web/ with playwright-core and MapLibre
// built in, and fails the test without them (as the browser tests never
// skip): `make web`, `make browser-deps`.
func browserTools(t *testing.T) (node, webDir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("Node.js is needed for the wall map's browser tests: %v", err)
	}
	webDir, err = filepath.Abs("../web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(webDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("web/node_modules/playwright-core is missing: run `make web` (%v)", err)
	}
	if missing := web.Missing(); len(missing) > 0 {
		t.Fatalf("built without MapLibre GL JS (%v missing from web/dist): run `make web` before `go test`", missing)
	}
	return node, webDir
}

// serveForBrowser serves store on 127.0.0.1 as `gridmap serve` does: the
// live feed reaches the page's stream, the tile cache drops the events
// tiles a report or a move changes, and the token cache follows
// revocations. Stopped when the test ends.
func serveForBrowser(t *testing.T, store *data.Store, opts api.Options) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := api.New(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	followCtx, stopFollowing := context.WithCancel(ctx)
	var following sync.WaitGroup
	for _, follow := range []func(context.Context){srv.FollowEvents, srv.FollowTiles, srv.FollowTokens} {
		following.Add(1)
		go func() { defer following.Done(); follow(followCtx) }()
	}
	hs := httptest.NewServer(srv.Handler()) // on 127.0.0.1
	t.Cleanup(func() {
		// Node has closed the browser (and with it the page's event
		// stream) by now; a connection still open is cut, so that Close,
		// which waits for every request, cannot hang on a stream.
		hs.CloseClientConnections()
		hs.Close()
		stopFollowing()
		following.Wait()
		srv.Close()
	})
	return hs
}

// runNodeTest runs `node --test file` in web/ with env added, and fails
// the test with its output when it fails.
func runNodeTest(t *testing.T, node, webDir, file string, env ...string) {
	t.Helper()
	runCtx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, node, "--test", "--test-reporter=spec", file)
	cmd.Dir = webDir
	cmd.Env = append(append(os.Environ(), env...), "FORCE_COLOR=0", "NO_COLOR=1")
	// Node and the Chromium it starts share a process group, ended together
	// on timeout so no browser outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test web/%s (%.1fs): %v\n%s", file, time.Since(start).Seconds(), err, out)
	}
	t.Logf("node --test web/%s passed in %.1fs\n%s", file, time.Since(start).Seconds(), out)
}

// TestFieldOnWallInBrowser: the loop of one case on the wall (issue 16,
// Tested): reported by a grid's worker in their grid (the verifier is
// that worker), dispatched to a handler of the department, more time asked
// and approved by the community's supervisor, handled, verified by the
// worker, closed; meanwhile the worker's fixes reach the wall's stream,
// their grid's coverage shows, their card lists the case while it waits
// for them, and the figures count it (web/test/field.test.mjs).
func TestFieldOnWallInBrowser(t *testing.T) {
	t.Parallel()
	node, webDir := browserTools(t)
	shots := screenshotDir(t)
	ctx := context.Background()
	store := pgtest.NewDemo(t)
	if _, err := demo.People(ctx, store); err != nil {
		t.Fatal(err)
	}
	var worker, handler, super int64
	var code, class string
	var lon, lat float64
	if err := store.Pool.QueryRow(ctx, `SELECT g.person_id, u.code, ST_X(ST_PointOnSurface(u.geom)), ST_Y(ST_PointOnSurface(u.geom))
		FROM grid_workers g JOIN units u ON u.code = g.grid_code AND u.layer = 'base' AND u.valid_to IS NULL
		WHERE g.rank = 0 ORDER BY u.code LIMIT 1`).Scan(&worker, &code, &lon, &lat); err != nil {
		t.Fatal(err)
	}
	if err := store.Pool.QueryRow(ctx, `SELECT c.code, min(p.id) FROM event_classes c JOIN people p ON p.role = 'handler' AND p.department = c.department_code
		GROUP BY c.code ORDER BY c.code LIMIT 1`).Scan(&class, &handler); err != nil {
		t.Fatal(err)
	}
	if err := store.Pool.QueryRow(ctx, `SELECT min(id) FROM people WHERE role = 'supervisor' AND $1 LIKE unit_code || '%'`, code).Scan(&super); err != nil {
		t.Fatal(err)
	}
	token := func(name string, person int64) string {
		tok, _, err := store.CreateToken(ctx, data.NewToken{Name: name, Role: auth.Reporter, Scopes: []string{code[:12]}, CreatedBy: "test", Person: person})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hs := serveForBrowser(t, store, api.Options{PublicRead: true, PositionInterval: 500 * time.Millisecond})
	runNodeTest(t, node, webDir, "test/field.test.mjs",
		"GRIDMAP_URL="+hs.URL, "GRIDMAP_TOKEN="+adminToken(t, store), "GRIDMAP_SCREENSHOTS="+shots,
		fmt.Sprintf("GRIDMAP_WORKER=%d", worker), "GRIDMAP_GRID="+code, fmt.Sprintf("GRIDMAP_LON=%.7f", lon), fmt.Sprintf("GRIDMAP_LAT=%.7f", lat),
		"GRIDMAP_CLASS="+class, fmt.Sprintf("GRIDMAP_HANDLER=%d", handler),
		"GRIDMAP_WORKER_TOKEN="+token("w", worker), "GRIDMAP_HANDLER_TOKEN="+token("h", handler), "GRIDMAP_SUPERVISOR_TOKEN="+token("s", super))
}
