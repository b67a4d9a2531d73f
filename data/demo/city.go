// Package demo generates a demo city for gridmap: Shenzhen's real divisions
// with synthetic boundaries (Build), managed objects over its grids
// (Objects), and events, either as a month of history (Events) or one by
// one for a live simulation (Reports). It writes through the store's
// import and report APIs; the same seed gives the same city, objects and
// events.
package demo

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

//go:embed shenzhen-divisions.csv shenzhen-outline.geojson district-seeds.csv
var inputs embed.FS

// Options shape the demo city.
type Options struct {
	// Scale "full" builds all of Shenzhen; "small" one district.
	Scale string
	// District is the district a small city keeps (default 440308 盐田区).
	District string
	// GridsPerCommunity is the number of grids cut from each community.
	GridsPerCommunity int
	// Density multiplies GridsPerCommunity (0 counts as 1): the same
	// streets and communities cut into Density times as many grids, for
	// measuring a province's count of grids (10 gives 197,000 over
	// Shenzhen's 788 communities) without a province's divisions.
	Density int
	// Seed makes the generated boundaries reproducible.
	Seed int
	// Progress, when set, is told of each step.
	Progress func(format string, args ...any)
}

// Defaults: about 20,000 grids over Shenzhen's 788 communities.
var Defaults = Options{Scale: "full", District: "440308", GridsPerCommunity: 25, Seed: 1}

// Result says what Build built and how long each part took.
type Result struct {
	Counts          map[grid.Level]int
	GenerateSeconds float64
	Import          *data.UnitImportReport
}

// Build generates the demo city in PostGIS and loads it through the
// same import validation as any file (declared complete, so a gap would
// fail it). Boundaries: Shenzhen's outline is cut into districts around
// approximate real centres, then every unit is cut into its children by
// the Voronoi cells of k-means centres of random points inside it, clipped
// to the unit: each level is a seamless partition of the one above.
func Build(ctx context.Context, s *data.Store, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	start := time.Now()
	drafts, err := generate(ctx, s, o, say)
	if err != nil {
		return nil, err
	}
	res := &Result{Counts: map[grid.Level]int{}, GenerateSeconds: time.Since(start).Seconds()}
	for _, d := range drafts {
		res.Counts[d.Level]++
	}
	say("generated %d districts, %d streets, %d communities, %d grids in %.1fs; validating and loading",
		res.Counts[grid.District], res.Counts[grid.Street], res.Counts[grid.Community], res.Counts[grid.Grid], res.GenerateSeconds)
	res.Import, err = s.ImportUnits(ctx, drafts, nil, data.UnitImportOptions{Complete: true, Actor: "gridmap demo", Reason: "demo city"})
	return res, err
}

// withDefaults fills the options left zero from Defaults and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Scale == "" {
		o.Scale = Defaults.Scale
	}
	if o.Scale != "full" && o.Scale != "small" {
		return o, fmt.Errorf("scale %q: use full or small", o.Scale)
	}
	if o.District == "" {
		o.District = Defaults.District
	}
	if o.GridsPerCommunity <= 0 {
		o.GridsPerCommunity = Defaults.GridsPerCommunity
	}
	if o.Density < 0 {
		return o, fmt.Errorf("density %d: use 1 or more", o.Density)
	}
	if o.grids() > 999 {
		return o, fmt.Errorf("grids per community (%d × density %d): at most 999 fit the 3-digit sequence", o.GridsPerCommunity, max(o.Density, 1))
	}
	if o.Seed <= 0 {
		o.Seed = Defaults.Seed
	}
	return o, nil
}

// grids is the number of grids cut from each community.
func (o Options) grids() int { return o.GridsPerCommunity * max(o.Density, 1) }

func generate(ctx context.Context, s *data.Store, o Options, say func(string, ...any)) ([]grid.Draft, error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// Everything lives in temporary tables of this transaction.
	defer tx.Rollback(context.Background())

	if err := loadInputs(ctx, tx, o); err != nil {
		return nil, err
	}
	steps := []struct {
		level grid.Level
		sql   string
	}{
		{grid.District, districtsSQL},
		{grid.Street, splitSQL},
		{grid.Community, splitSQL},
	}
	if o.Density > 1 {
		steps = append(steps, struct {
			level grid.Level
			sql   string
		}{block, splitSQL})
	}
	steps = append(steps, struct {
		level grid.Level
		sql   string
	}{grid.Grid, splitSQL})
	for _, st := range steps {
		t := time.Now()
		if _, err := tx.Exec(ctx, st.sql, string(st.level), o.Seed); err != nil {
			return nil, fmt.Errorf("demo %s: %w", st.level, err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM demo_unit WHERE level = $1`, string(st.level)).Scan(&n); err != nil {
			return nil, err
		}
		say("%d × %s in %.1fs", n, st.level, time.Since(t).Seconds())
	}
	if _, err := tx.Exec(ctx, `UPDATE demo_unit g SET parent = b.parent FROM demo_unit b WHERE b.level = $1 AND g.parent = b.code`, string(block)); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM demo_unit WHERE level = $1`, string(block)); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT code, name, level, coalesce(parent, ''), geom FROM demo_unit ORDER BY code`)
	if err != nil {
		return nil, err
	}
	var drafts []grid.Draft
	var d grid.Draft
	var level string
	var wkb []byte
	_, err = pgx.ForEachRow(rows, []any{&d.Code, &d.Name, &level, &d.ParentCode, &wkb}, func() error {
		mp, err := geo.MultiPolygonFromEWKB(wkb)
		if err != nil {
			return fmt.Errorf("demo unit %s: %w", d.Code, err)
		}
		d.Layer, d.Level, d.Geometry, d.Feature = grid.BaseLayer, grid.Level(level), mp, len(drafts)
		drafts = append(drafts, d)
		return nil
	})
	return drafts, err
}

// loadInputs loads the outline, the seeds and the wanted units (divisions
// from the CSV, grids numbered per community) into temporary tables.
func loadInputs(ctx context.Context, tx pgx.Tx, o Options) error {
	raw, err := inputs.ReadFile("shenzhen-outline.geojson")
	if err != nil {
		return err
	}
	fs, err := geo.DecodeFeatureCollection(bytes.NewReader(raw))
	if err != nil || len(fs) != 1 || fs[0].Err != nil {
		return fmt.Errorf("demo outline: %v", err)
	}
	outline, err := geo.EWKB(fs[0].Geometry)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE demo_outline ON COMMIT DROP AS
		SELECT ST_Multi(ST_Union(d.geom)) AS g
		FROM ST_Dump(ST_CollectionExtract(ST_MakeValid(ST_RemoveRepeatedPoints(ST_GeomFromEWKB($1))), 3)) d
		WHERE ST_Area(d.geom::geography) > 500000`, outline); err != nil {
		return fmt.Errorf("demo outline: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE demo_seed (code text, geom geometry) ON COMMIT DROP;
		CREATE TEMP TABLE demo_want (code text PRIMARY KEY, name text, level text, parent text) ON COMMIT DROP;
		CREATE TEMP TABLE demo_unit (code text PRIMARY KEY, name text, level text, parent text, geom geometry) ON COMMIT DROP`); err != nil {
		return err
	}
	seeds, err := readCSV("district-seeds.csv")
	if err != nil {
		return err
	}
	var seedRows [][]any
	for _, r := range seeds {
		lon, err1 := strconv.ParseFloat(r[1], 64)
		lat, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("district-seeds.csv: bad position %v", r)
		}
		seedRows = append(seedRows, []any{r[0], lon, lat})
	}
	for _, r := range seedRows {
		if _, err := tx.Exec(ctx, `INSERT INTO demo_seed VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326))`, r...); err != nil {
			return err
		}
	}
	divs, err := readCSV("shenzhen-divisions.csv")
	if err != nil {
		return err
	}
	var want [][]any
	for _, r := range divs {
		code, name, level, parent := r[0], r[1], r[2], r[3]
		if level == "district" {
			parent = ""
		}
		if o.Scale == "small" && code[:6] != o.District {
			continue
		}
		var p any
		if parent != "" {
			p = parent
		}
		want = append(want, []any{code, name, level, p})
	}
	if len(want) == 0 {
		return fmt.Errorf("district %s is not in the demo divisions", o.District)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"demo_want"}, []string{"code", "name", "level", "parent"}, pgx.CopyFromRows(want)); err != nil {
		return err
	}
	if o.Density <= 1 {
		_, err = tx.Exec(ctx, `
			INSERT INTO demo_want
			SELECT c.code || lpad(i::text, 3, '0'), c.name || '第' || lpad(i::text, 3, '0') || '网格', 'grid', c.code
			FROM demo_want c, generate_series(1, $1::int) i
			WHERE c.level = 'community'`, o.GridsPerCommunity)
		return err
	}
	// Denser: the grids of density 1 become blocks, each cut into Density
	// grids numbered on from the block before. k-means over a community
	// costs its points × its clusters, so 250 clusters of 3,000 points in
	// one go took minutes per hundred communities; ten of 120 in each of
	// 25 blocks take seconds, and every grid of density 1 is exactly the
	// union of Density grids here.
	if _, err := tx.Exec(ctx, `
		INSERT INTO demo_want
		SELECT c.code || 'b' || lpad(i::text, 3, '0'), '', $2, c.code
		FROM demo_want c, generate_series(1, $1::int) i
		WHERE c.level = 'community'`, o.GridsPerCommunity, string(block)); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO demo_want
		SELECT c.code || lpad(k::text, 3, '0'), c.name || '第' || lpad(k::text, 3, '0') || '网格', 'grid', c.code || 'b' || lpad(i::text, 3, '0')
		FROM demo_want c, generate_series(1, $1::int) i, generate_series(1, $2::int) j, LATERAL (SELECT (i - 1) * $2::int + j AS k) n
		WHERE c.level = 'community'`, o.GridsPerCommunity, o.Density)
	return err
}

// block is the level of the density-1 grids a denser city cuts its grids
// from; blocks never leave generate.
const block grid.Level = "block"

func readCSV(name string) ([][]string, error) {
	f, err := inputs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	if _, err := r.Read(); err != nil { // header
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, rec)
	}
}

// districtsSQL cuts the outline by the Voronoi cells of the district seeds
// (a district with two seeds gets the union of both cells).
const districtsSQL = `
WITH v AS (
    SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(geom), 0, (SELECT ST_Expand(g, 1) FROM demo_outline)))).geom AS cell
    FROM demo_seed
), d AS (
    SELECT s.code, ST_Union(ST_CollectionExtract(ST_Intersection(v.cell, o.g), 3)) AS geom
    FROM v JOIN demo_seed s ON ST_Intersects(v.cell, s.geom) CROSS JOIN demo_outline o
    GROUP BY s.code
)
INSERT INTO demo_unit
SELECT w.code, w.name, w.level, NULL, ST_Multi(d.geom)
FROM d JOIN demo_want w ON w.code = d.code AND w.level = $1 AND $2::int > 0`

// splitSQL cuts every unit of the level above $1 into as many children as
// demo_want lists for it. Seeds are k-means centres of random points in the
// parent (ST_GeneratePoints with a seed, so runs repeat), which gives cells
// of similar size; cells are numbered west→east in north→south bands.
const splitSQL = `
WITH want AS (
    SELECT parent, count(*)::int AS n FROM demo_want WHERE level = $1 GROUP BY parent
), parents AS (
    SELECT p.code, p.geom, w.n, row_number() OVER (ORDER BY p.code) AS i
    FROM demo_unit p JOIN want w ON w.parent = p.code
), pts AS (
    SELECT p.code AS parent, p.n, (ST_Dump(ST_GeneratePoints(p.geom, p.n * 12, $2::int * 100000 + p.i::int))).geom AS geom
    FROM parents p WHERE p.n > 1
), clusters AS (
    SELECT parent, geom, ST_ClusterKMeans(geom, n) OVER (PARTITION BY parent) AS cid FROM pts
), seeds AS (
    SELECT parent, cid, ST_Centroid(ST_Collect(geom)) AS geom FROM clusters GROUP BY parent, cid
), voronoi AS (
    SELECT s.parent, (ST_Dump(ST_VoronoiPolygons(ST_Collect(s.geom), 0, ST_Expand(p.geom, 0.05)))).geom AS cell
    FROM seeds s JOIN parents p ON p.code = s.parent
    GROUP BY s.parent, p.geom
), cells AS (
    SELECT v.parent, ST_Multi(ST_CollectionExtract(ST_Intersection(v.cell, p.geom), 3)) AS geom
    FROM voronoi v JOIN parents p ON p.code = v.parent
    UNION ALL
    SELECT code, geom FROM parents WHERE n = 1
), numbered AS (
    SELECT c.parent, c.geom,
           row_number() OVER (PARTITION BY c.parent ORDER BY
               floor((ST_YMax(p.geom) - ST_Y(ST_PointOnSurface(c.geom))) / sqrt(ST_Area(p.geom) / p.n)),
               ST_X(ST_PointOnSurface(c.geom))) AS k
    FROM cells c JOIN parents p ON p.code = c.parent
    WHERE NOT ST_IsEmpty(c.geom)
), kids AS (
    SELECT w.code, w.name, w.level, w.parent, row_number() OVER (PARTITION BY w.parent ORDER BY w.code) AS k
    FROM demo_want w WHERE w.level = $1
)
INSERT INTO demo_unit
SELECT k.code, k.name, k.level, k.parent, n.geom
FROM kids k JOIN numbered n ON n.parent = k.parent AND n.k = k.k`
