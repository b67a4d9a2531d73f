package api_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// requestLog records the requests a client sends.
type requestLog struct {
	mu   sync.Mutex
	uris []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.uris = append(l.uris, r.URL.RequestURI())
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.uris
	l.uris = nil
	return out
}

// TestOGCGDAL: GDAL's OAPIF driver (GDAL 3.6, make gdal installs it), a
// real client over real TCP, on the full demo city: it lists every
// collection, ogr2ogr copies every grid with its attributes into a
// GeoPackage, and a -where it turns into a server-side filter returns
// what SQL returns. The credential goes in GDAL_HTTP_HEADERS, as an
// analyst's would.
func TestOGCGDAL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ogr2ogr"); err != nil {
		t.Fatalf("GDAL's command-line tools are needed (make gdal installs gdal-bin): %v", err)
	}
	e := newEnv(t, pgtest.NewFullDemo(t), api.Options{})
	var log requestLog
	hs := httptest.NewServer(log.wrap(e.srv.Handler()))
	t.Cleanup(hs.Close)
	src := "OAPIF:" + hs.URL + "/ogc"
	gdal := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "GDAL_HTTP_HEADERS=Authorization: Bearer "+e.token)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// Every collection, by id and title.
	out := gdal("ogrinfo", "-ro", "-so", src)
	var cols struct{ Collections []struct{ ID, Title string } }
	expect(t, e.get("/ogc/collections"), http.StatusOK, ctJSON, &cols)
	if len(cols.Collections) != 6 {
		t.Fatalf("collections %+v", cols)
	}
	for i, c := range cols.Collections {
		if want := fmt.Sprintf("%d: %s (title: %s)", i+1, c.ID, c.Title); !strings.Contains(out, want) {
			t.Errorf("ogrinfo does not list %q:\n%s", want, out)
		}
	}

	// ogr2ogr copies all grids; read back from the GeoPackage, they are
	// SQL's, attribute for attribute.
	gpkg := filepath.Join(t.TempDir(), "grids.gpkg")
	log.take()
	gdal("ogr2ogr", "-f", "GPKG", gpkg, src, "grids", "-oo", "PAGE_SIZE=5000")
	pages := 0
	for _, u := range log.take() {
		if strings.HasPrefix(u, "/ogc/collections/grids/items?") {
			pages++
		}
	}
	csvOut := gdal("ogr2ogr", "-f", "CSV", "/vsistdout/", gpkg, "-sql",
		"SELECT code, name, parent_code, version, area_m2, valid_from, ST_NPoints(geom) AS n FROM grids ORDER BY code")
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatalf("read the copy back: %v", err)
	}
	want := sqlStrings(t, e.store, `SELECT code || '|' || name || '|' || parent_code || '|' || version || '|' || round(area_m2::numeric, 2) || '|' || ST_NPoints(geom)
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY code`)
	if len(want) < 19000 || len(rows) != len(want)+1 {
		t.Fatalf("the GeoPackage has %d grids, SQL %d", len(rows)-1, len(want))
	}
	for i, r := range rows[1:] {
		area, _ := strconv.ParseFloat(r[4], 64)
		got := fmt.Sprintf("%s|%s|%s|%s|%.2f|%s", r[0], r[1], r[2], r[3], area, r[6])
		if got != want[i] {
			t.Fatalf("grid %d in the GeoPackage: %s, SQL %s", i, got, want[i])
		}
		if i == 0 && !strings.HasPrefix(r[5], "20") {
			t.Errorf("valid_from %q", r[5])
		}
	}
	t.Logf("ogr2ogr copied %d grids in %d pages", len(want), pages)

	// A -where GDAL sends to the server as a filter (it reads the
	// filterable properties and filter-lang from /ogc/api).
	parent := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'street'`)[0]
	median := sqlStrings(t, e.store, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY area_m2) FROM units WHERE valid_to IS NULL AND level = 'grid'`)[0]
	where := fmt.Sprintf("parent_code LIKE '%s%%' AND area_m2 > %s", parent, median)
	log.take()
	out = gdal("ogrinfo", "-ro", "-oo", "PAGE_SIZE=5000", src, "grids", "-where", where)
	got := len(regexp.MustCompile(`(?m)^OGRFeature\(grids\):`).FindAllString(out, -1))
	wantN, _ := strconv.Atoi(sqlStrings(t, e.store, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid' AND parent_code LIKE $1 AND area_m2 > $2`, parent+"%", median)[0])
	if got != wantN || wantN == 0 {
		t.Errorf("-where %q: GDAL shows %d grids, SQL %d", where, got, wantN)
	}
	sent := false
	for _, u := range log.take() {
		if strings.HasPrefix(u, "/ogc/collections/grids/items?") && strings.Contains(u, "filter=") && strings.Contains(u, "filter-lang=cql-text") {
			sent = true
			t.Logf("GDAL sent %s", u)
		}
	}
	if !sent {
		t.Errorf("GDAL filtered on its side, not sending the filter")
	}
}
