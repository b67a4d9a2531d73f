package api_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb/encoding/mvt"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// reportAt stores one event of class at the point of unit code.
func reportAt(t *testing.T, store *data.Store, code, class string, at time.Time) *data.Event {
	t.Helper()
	ctx := context.Background()
	units, err := store.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := unitPoint(t, store, code)
	res, err := store.ReportEventsAt(ctx, []data.NewEvent{{Class: class, Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1],
		Location: grid.NewLocator(units).Locate(p[0], p[1]), Source: grid.SourceGridWorker}}, at)
	if err != nil || res[0].Err != nil {
		t.Fatalf("report: %v %v", err, res)
	}
	return res[0].Event
}

// GET /tiles/events.json describes both source layers with their fields.
func TestEventTileJSON(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	var tj tileJSON
	expect(t, e.get("/tiles/events.json"), http.StatusOK, ctJSON, &tj)
	if tj.TileJSON != "3.0.0" || tj.Name != "events" || tj.MinZoom != 0 || tj.MaxZoom != tiles.MaxZoom ||
		len(tj.Tiles) != 1 || tj.Tiles[0] != e.url+"/tiles/events/{z}/{x}/{y}.mvt" {
		t.Errorf("events TileJSON %+v", tj)
	}
	if len(tj.VectorLayers) != 2 {
		t.Fatalf("vector_layers %+v, want event_counts and events", tj.VectorLayers)
	}
	counts, events := tj.VectorLayers[0], tj.VectorLayers[1]
	fieldNames := func(s tileSource) string {
		var out []string
		for k, v := range s.Fields {
			out = append(out, k+":"+v)
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	if counts.ID != "event_counts" || counts.MinZoom != 0 || counts.MaxZoom != tiles.MaxZoom ||
		fieldNames(counts) != "closed:Number code:String dispatched:Number handled:Number handling:Number level:String name:String "+
			"open:Number overdue:Number registered:Number rejected:Number reported:Number returned:Number suspended:Number total:Number verified:Number" {
		t.Errorf("event_counts: %+v", counts)
	}
	if events.ID != "events" || events.MinZoom != tiles.EventsMinZoom || events.MaxZoom != tiles.MaxZoom ||
		fieldNames(events) != "age_h:Number class:String class_name:String code:String deadline:Number grid_code:String overdue:Boolean reported_at:Number status:String" {
		t.Errorf("events: %+v", events)
	}
	// The tilesets are listed where one is missing.
	expectProblem(t, e.get("/tiles/roads.json"), http.StatusNotFound, typeNotFound, "", "events, objects, units")
}

// Events tiles, like the others, are revalidated by clients on every use
// (a live wall reloads them after a change), with ETag and 304.
func TestEventTileCacheControl(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	e := newEnv(t, store, api.Options{})
	ctx := context.Background()
	g := sqlStrings(t, store, `SELECT code FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY code LIMIT 1`)[0]
	ev := reportAt(t, store, g, "0101", time.Now())
	if _, err := store.Pool.Exec(ctx, `UPDATE events SET deadline = now() + interval '30 seconds' WHERE code = $1`, ev.Code); err != nil {
		t.Fatal(err)
	}
	revalidate := "public, max-age=0, must-revalidate"
	path := tilePath("events", unitPoint(t, store, g), 15)
	r := e.getTile(path)
	expectCache(t, r, "miss")
	if cc := r.Header.Get("Cache-Control"); cc != revalidate {
		t.Fatalf("Cache-Control %q", cc)
	}
	layers, err := mvt.Unmarshal(mvtOf(t, r))
	if err != nil || len(layers) != 1 || layers[0].Name != "events" || len(layers[0].Features) != 1 {
		t.Fatalf("events tile: %v %v", layers, err)
	}
	if f := layers[0].Features[0].Properties; f["code"] != ev.Code || f["overdue"] != false || f["status"] != "reported" {
		t.Errorf("event feature %v", f)
	}
	tag := etagOf(t, r)
	r = e.getTile(path)
	expectCache(t, r, "hit")
	if etagOf(t, r) != tag {
		t.Errorf("second answer: %v", r.Header)
	}
	expectNotModified(t, e.getTile(path, "If-None-Match", tag), tag)

	// Units keep revalidating on every use.
	r = e.getTile(tilePath("units", unitPoint(t, store, g), 15))
	if cc := r.Header.Get("Cache-Control"); cc != revalidate {
		t.Errorf("units Cache-Control %q", cc)
	}
}
