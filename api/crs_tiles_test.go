package api_test

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
	"github.com/paulmach/orb/project"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/tiles"
)

// gcjTilePath is the GCJ-02 tile of layer at zoom z holding the GCJ-02
// position of WGS-84 point p (where p is drawn over an Amap base map).
func gcjTilePath(layer string, p orb.Point, z int) string {
	x, y := geo.WGS84ToGCJ02(p[0], p[1])
	return tilePath(layer, orb.Point{x, y}, z) + "?crs=gcj02"
}

// gcjTileUnits is GCJ-02 position q in the coordinates of the tile at zoom
// z holding it.
func gcjTileUnits(q orb.Point, z int) orb.Point {
	t := maptile.At(q, maptile.Zoom(z))
	m := project.WGS84.ToMercator(q)
	const half = 20037508.342789244
	n := float64(uint64(1) << z)
	return orb.Point{((m[0]+half)/(2*half)*n - float64(t.X)) * tiles.Extent, ((half-m[1])/(2*half)*n - float64(t.Y)) * tiles.Extent}
}

func decodeMVT(t *testing.T, b []byte) map[string]*mvt.Layer {
	t.Helper()
	ls, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatalf("decode MVT: %v", err)
	}
	out := map[string]*mvt.Layer{}
	for _, l := range ls {
		out[l.Name] = l
	}
	return out
}

// TestCRSTiles: GCJ-02 tiles are cached apart from WGS-84 ones, dropped by
// the edits under them, draw objects at their GCJ-02 positions, and are
// described by TileJSON; BD-09 tiles are refused.
func TestCRSTiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	geom, lon, lat := grabFrom(t, e, a, b, 0.0005)
	far := sqlStrings(t, e.store, `
		SELECT g.code FROM units g, units x WHERE g.valid_to IS NULL AND x.valid_to IS NULL AND g.level = 'grid' AND x.code = $1
		ORDER BY ST_Distance(g.geom, x.geom) DESC LIMIT 1`, a)[0]
	near := gcjTilePath("units", orb.Point{lon, lat}, 15)
	farUnits := gcjTilePath("units", unitPoint(t, e.store, far), 15)
	wgsNear := strings.TrimSuffix(near, "?crs=gcj02")
	etags := map[string]string{}
	for _, path := range []string{near, farUnits, wgsNear} {
		r := e.getTile(path)
		expectCache(t, r, "miss")
		etags[path] = etagOf(t, r)
		expectCache(t, e.getTile(path), "hit")
	}
	r := e.getTile(near)
	expectContentCRS(t, r, ctsGCJ02)
	if etags[near] == etags[wgsNear] {
		t.Errorf("the GCJ-02 and WGS-84 tiles %s are one", wgsNear)
	}

	// An edit drops the GCJ-02 tile over it, not the far one.
	var got editAnswer
	expect(t, e.with(http.MethodPut, "/v1/units/"+a+"?neighbours=adjust&reason=road+moved", unitFeatureJSON(geom, "边界新网格"), "If-Match", unitETag(t, e, a)),
		http.StatusOK, ctJSON, &got)
	r = e.getTile(near)
	expectCache(t, r, "miss")
	if etagOf(t, r) == etags[near] || !bytes.Contains(mvtOf(t, r), []byte("边界新网格")) {
		t.Errorf("the GCJ-02 tile over the changed area is the old one")
	}
	r = e.getTile(farUnits)
	expectCache(t, r, "hit")
	if etagOf(t, r) != etags[farUnits] {
		t.Errorf("the far GCJ-02 tile changed")
	}

	// An object created in gcj02 is drawn at the position sent, in the
	// GCJ-02 objects tile cached before it existed.
	p := unitPoint(t, e.store, far)
	objTile := gcjTilePath("objects", p, 17)
	before := e.getTile(objTile)
	if before.Status != http.StatusNoContent && before.Status != http.StatusOK {
		t.Fatalf("objects tile: %s", before)
	}
	expectCache(t, e.getTile(objTile), "hit")
	createInCRS(t, e, demoDistrict+"0101850001", geo.GCJ02, p[0], p[1])
	r = e.getTile(objTile)
	expectCache(t, r, "miss")
	objs := decodeMVT(t, mvtOf(t, r))["objects"]
	if objs == nil || len(objs.Features) != 1 {
		t.Fatalf("objects in the GCJ-02 tile: %+v", objs)
	}
	gx, gy := geo.WGS84ToGCJ02(p[0], p[1])
	want := gcjTileUnits(orb.Point{gx, gy}, 17)
	if pt := objs.Features[0].Geometry.(orb.Point); math.Abs(pt[0]-want[0]) > 1 || math.Abs(pt[1]-want[1]) > 1 {
		t.Errorf("object drawn at %v, the GCJ-02 position sent is at %v", pt, want)
	}
	if objs.Features[0].Properties["code"] != demoDistrict+"0101850001" {
		t.Errorf("object properties %v", objs.Features[0].Properties)
	}

	// Units as of an instant, in GCJ-02: the current tile's drawing.
	asOf := time.Now().UTC().Format(time.RFC3339Nano)
	cur := mvtOf(t, e.getTile(near))
	if old := mvtOf(t, e.getTile(near+"&as_of="+asOf)); !bytes.Equal(old, cur) {
		t.Errorf("units in gcj02 as of now differ from the current GCJ-02 tile")
	}

	// TileJSON in GCJ-02: its tiles carry crs=gcj02, bounds in GCJ-02.
	var wj, gj tileJSON
	expect(t, e.get("/tiles/units.json"), http.StatusOK, ctJSON, &wj)
	r = e.get("/tiles/units.json?crs=gcj02")
	expect(t, r, http.StatusOK, ctJSON, &gj)
	expectContentCRS(t, r, ctsGCJ02)
	if len(gj.Tiles) != 1 || gj.Tiles[0] != wj.Tiles[0]+"?crs=gcj02" {
		t.Errorf("GCJ-02 TileJSON tiles %v", gj.Tiles)
	}
	if x, y := geo.WGS84ToGCJ02(wj.Bounds[0], wj.Bounds[1]); gj.Bounds[0] != x || gj.Bounds[1] != y {
		t.Errorf("GCJ-02 bounds %v, WGS-84 %v", gj.Bounds, wj.Bounds)
	}

	// BD-09 and unknown systems: 400 naming crs.
	for _, path := range []string{tilePath("units", p, 14) + "?crs=bd09", "/tiles/objects.json?crs=bd09"} {
		expectProblem(t, e.get(path), http.StatusBadRequest, typeBadParam, "crs", "bd09", "Web Mercator")
	}
	for _, path := range []string{tilePath("units", p, 14) + "?crs=mars", "/tiles/units.json?crs=mars"} {
		expectProblem(t, e.get(path), http.StatusBadRequest, typeBadParam, "crs", "mars", "wgs84, gcj02, bd09")
	}
}

// TestCRSTilesReadByGDAL: GDAL's MVT driver reads a GCJ-02 tile: the
// layers and feature counts of its decoding.
func TestCRSTilesReadByGDAL(t *testing.T) {
	t.Parallel()
	ogrinfo, err := exec.LookPath("ogrinfo")
	if err != nil {
		t.Fatalf("ogrinfo (GDAL, Debian package gdal-bin) is not installed: `make test` installs it; %v", err)
	}
	e := demoEnv(t)
	community := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'community'`)[0]
	path := gcjTilePath("units", unitPoint(t, e.store, community), 14)
	want := map[string]int{}
	for name, l := range decodeMVT(t, mvtOf(t, e.getTile(path))) {
		want[name] = len(l.Features)
	}
	out, err := exec.Command(ogrinfo, "--config", "GDAL_HTTP_HEADERS", "Authorization: Bearer "+e.token, "-ro", "-al", "-so", "MVT:"+e.url+path).CombinedOutput()
	if err != nil {
		t.Fatalf("ogrinfo %s: %v\n%s", path, err, out)
	}
	got := map[string]int{}
	var layer string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Layer name: "); ok {
			layer = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Feature Count: "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got[layer] = n
		}
	}
	if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ogrinfo reads %v, the tile holds %v:\n%s", got, want, out)
	}
}
