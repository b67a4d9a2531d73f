package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/grid"
)

// benchEdits: gridmap bench edits — unit edits through the HTTP API on the
// full demo city with its objects: a grid reshape with neighbours=adjust
// (a shared edge moved and moved back), a merge of two grids, each timed
// from request to answer (validation, object re-assignment, invalidation
// and the locator refresh included), and the locator refresh after an edit
// against a full rebuild.
func benchEdits(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench edits", flag.ContinueOnError)
	runs := fs.Int("runs", 100, "edits of each kind")
	objects := fs.Int64("objects", 200000, "managed objects in the city")
	dbName := fs.String("database", "gridmap_bench", "scratch database created (and dropped) on DATABASE_URL's server")
	keep := fs.Bool("keep", false, "keep the scratch database")
	reuse := fs.Bool("reuse", false, "use the kept scratch database as it is (built by an earlier run with -keep); edits change it")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the edits (server side included) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var s *data.Store
	if *reuse {
		var err error
		if s, err = openScratch(ctx, *dbName); err != nil {
			return err
		}
	} else {
		var drop func()
		var err error
		if s, drop, err = scratchStore(ctx, *dbName, *keep); err != nil {
			return err
		}
		defer drop()
	}
	defer s.Close()
	if !*reuse {
		res, took, err := benchCity(ctx, s, demo.Defaults)
		if err != nil {
			return err
		}
		fmt.Printf("city: %d districts, %d streets, %d communities, %d grids in %.1fs\n", res.Counts[grid.District],
			res.Counts[grid.Street], res.Counts[grid.Community], res.Counts[grid.Grid], took.Seconds())
		t := time.Now()
		stream, err := demo.Objects(ctx, s, *objects, 1, false)
		if err != nil {
			return err
		}
		rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{})
		if err != nil {
			return err
		}
		fmt.Printf("objects: %d in %.1fs\n", rep.Inserted, time.Since(t).Seconds())
	}
	if _, err := s.Pool.Exec(ctx, `ANALYZE`); err != nil {
		return err
	}

	token, _, err := s.CreateToken(ctx, data.NewToken{Name: fmt.Sprintf("bench-edits-%d", time.Now().UnixNano()), Role: auth.Admin, CreatedBy: cliActor()})
	if err != nil {
		return err
	}
	srv, base, stop, err := benchServer(ctx, s)
	if err != nil {
		return err
	}
	defer stop()
	b := &editBench{s: s, base: base, client: &http.Client{Transport: bearer(token, http.DefaultTransport)}}

	// Today's full rebuild: every current unit loaded and prepared.
	var full []time.Duration
	for i := 0; i < 5; i++ {
		t := time.Now()
		units, err := s.CurrentUnits(ctx)
		if err != nil {
			return err
		}
		grid.NewLocator(units)
		full = append(full, time.Since(t))
	}
	sortDurations(full)
	fmt.Printf("locator: %d units; full rebuild (load + prepare + index) p50 %.1f ms, max %.1f ms over %d\n",
		srv.Locator().Len(), ms(pct(full, 50)), ms(full[len(full)-1]), len(full))

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	// Reshape: a grid takes a band along its edge from its neighbour, then
	// gives it back (its outline of before, neighbours=adjust): the city
	// stays valid and every run moves a shared edge.
	pairs, err := b.neighbourPairs(ctx, (*runs+1)/2, 0)
	if err != nil {
		return err
	}
	for i := 0; len(b.lat["reshape"]) < *runs; i++ {
		p := pairs[i/2%len(pairs)]
		geom := p.grown
		if i%2 == 1 {
			geom = p.outline
		}
		body := `{"type":"Feature","geometry":` + geom + `,"properties":{}}`
		if err := b.edit(ctx, "reshape", http.MethodPut, "/v1/units/"+p.a+"?neighbours=adjust&reason=bench", body, p.a); err != nil {
			return err
		}
	}
	// Merge: two neighbouring grids of a community into the lower code,
	// a fresh pair of another community each run.
	pairs, err = b.neighbourPairs(ctx, *runs, len(pairs))
	if err != nil {
		return err
	}
	for _, p := range pairs[:min(*runs, len(pairs))] {
		body := fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"bench"}`, p.a, p.b, p.a)
		if err := b.edit(ctx, "merge", http.MethodPost, "/v1/units:merge", body, p.a, p.b); err != nil {
			return err
		}
	}
	// Split: a grid no run has touched yet, cut by a north-south line
	// through a point inside it.
	rows, err := b.s.Pool.Query(ctx, `
		SELECT code, ST_X(p), ST_YMin(geom) - 0.001, ST_YMax(geom) + 0.001
		FROM (SELECT code, geom, ST_PointOnSurface(geom) AS p FROM units
		      WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' AND version = 1 ORDER BY md5(code || 'split') LIMIT $1) g`, *runs)
	if err != nil {
		return err
	}
	type cut struct {
		code      string
		x, y0, y1 float64
	}
	var cuts []cut
	for rows.Next() {
		var c cut
		if err := rows.Scan(&c.code, &c.x, &c.y0, &c.y1); err != nil {
			rows.Close()
			return err
		}
		cuts = append(cuts, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range cuts {
		body := fmt.Sprintf(`{"line":{"type":"LineString","coordinates":[[%.9f,%.9f],[%.9f,%.9f]]},"reason":"bench"}`, c.x, c.y0, c.x, c.y1)
		if err := b.edit(ctx, "split", http.MethodPost, "/v1/units/"+c.code+":split", body, c.code); err != nil {
			return err
		}
	}

	fmt.Printf("%-8s %5s %9s %9s %9s %12s %12s %13s %13s\n", "edit", "runs", "p50 ms", "p95 ms", "max ms", "store p50", "store p95", "locator p50", "locator p95")
	for _, op := range []string{"reshape", "merge", "split"} {
		l, st, loc := b.lat[op], b.store[op], b.locator[op]
		sortDurations(l)
		sortDurations(st)
		sortDurations(loc)
		fmt.Printf("%-8s %5d %9.1f %9.1f %9.1f %12.1f %12.1f %13.2f %13.2f\n", op, len(l), ms(pct(l, 50)), ms(pct(l, 95)), ms(l[len(l)-1]),
			ms(pct(st, 50)), ms(pct(st, 95)), ms(pct(loc, 50)), ms(pct(loc, 95)))
	}
	fmt.Printf("objects moved: %d; goal p95 ≤ 300 ms\n", b.moved)
	return nil
}

// openScratch opens a kept scratch database of DATABASE_URL's server.
func openScratch(ctx context.Context, name string) (*data.Store, error) {
	u := databaseURL()
	i := strings.LastIndex(u, "/")
	rest := ""
	if q := strings.Index(u[i:], "?"); q >= 0 {
		rest = u[i+q:]
	}
	return data.Open(ctx, u[:i+1]+name+rest)
}

type editBench struct {
	s      *data.Store
	base   string
	client *http.Client
	// by operation: request to answer; the store's part (the answer's
	// seconds); the locator refresh after it (the server's metric)
	lat, store, locator map[string][]time.Duration
	moved               int
}

type gridPair struct {
	a, b           string
	outline, grown string // a's outline now, and grown by a band of b
}

// neighbourPairs are n pairs of grids sharing an edge, one pair per
// community, skipping the first skip communities (in a fixed shuffled
// order), with a's outline and a's outline grown into b by a band of
// about 20 m.
func (b *editBench) neighbourPairs(ctx context.Context, n, skip int) ([]gridPair, error) {
	rows, err := b.s.Pool.Query(ctx, `
		WITH c AS (SELECT code FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'community'
		           ORDER BY md5(code) OFFSET $2 LIMIT $1 * 2),
		p AS (SELECT DISTINCT ON (x.parent_code) x.code AS a, y.code AS b, x.geom AS ag, y.geom AS bg
		      FROM units x JOIN units y ON y.valid_to IS NULL AND y.layer = 'base' AND y.parent_code = x.parent_code AND y.code > x.code
		        AND x.geom && y.geom AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Buffer(y.geom, 1e-7))) > 1e-4
		      WHERE x.valid_to IS NULL AND x.layer = 'base' AND x.level = 'grid' AND x.parent_code IN (SELECT code FROM c)
		      ORDER BY x.parent_code, x.code, y.code)
		SELECT a, b, ST_AsGeoJSON(ag, 15),
		       ST_AsGeoJSON(ST_Multi(ST_Union(ag, ST_Intersection(bg, ST_Buffer(ST_Intersection(ag, bg), 0.0002)))), 15)
		FROM p ORDER BY md5(a) LIMIT $1`, n, skip)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []gridPair
	for rows.Next() {
		var p gridPair
		if err := rows.Scan(&p.a, &p.b, &p.outline, &p.grown); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no neighbouring grids")
	}
	return out, nil
}

// edit sends one edit with the If-Match of codes (read first, not timed)
// and records its times.
func (b *editBench) edit(ctx context.Context, op, method, path, body string, codes ...string) error {
	if b.lat == nil {
		b.lat, b.store, b.locator = map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	}
	var tags []string
	for _, c := range codes {
		r, err := b.do(ctx, http.MethodGet, "/v1/units/"+c+"?geometry=none", "", "")
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", c, r.status, r.body)
		}
		tags = append(tags, r.etag)
	}
	builds := b.locatorBuilds(ctx)
	t := time.Now()
	r, err := b.do(ctx, method, path, body, strings.Join(tags, ", "))
	took := time.Since(t)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, r.status, r.body)
	}
	var ans struct {
		Seconds      float64 `json:"seconds"`
		ObjectsMoved int     `json:"objects_moved"`
	}
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil {
		return err
	}
	b.lat[op] = append(b.lat[op], took)
	b.store[op] = append(b.store[op], time.Duration(ans.Seconds*float64(time.Second)))
	b.moved += ans.ObjectsMoved
	if after := b.locatorBuilds(ctx); after.incremental == builds.incremental+1 && after.full == builds.full {
		b.locator[op] = append(b.locator[op], after.lastIncremental)
	} else {
		return fmt.Errorf("%s: locator builds went from %+v to %+v, want one incremental", op, builds, after)
	}
	return nil
}

type answer struct {
	status     int
	etag, body string
}

func (b *editBench) do(ctx context.Context, method, path, body, ifMatch string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("ETag"), string(raw)}, err
}

type locatorBuilds struct {
	full, incremental int
	lastIncremental   time.Duration
}

// locatorBuilds reads the server's locator metrics.
func (b *editBench) locatorBuilds(ctx context.Context) locatorBuilds {
	var lb locatorBuilds
	r, err := b.do(ctx, http.MethodGet, "/metrics", "", "")
	if err != nil {
		return lb
	}
	sc := bufio.NewScanner(strings.NewReader(r.body))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case `gridmap_locator_builds_total{kind="full"}`:
			lb.full = int(f)
		case `gridmap_locator_builds_total{kind="incremental"}`:
			lb.incremental = int(f)
		case `gridmap_locator_build_seconds{kind="incremental"}`:
			lb.lastIncremental = time.Duration(f * float64(time.Second))
		}
	}
	return lb
}
