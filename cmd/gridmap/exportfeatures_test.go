package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gridmap/data/pgtest"
)

// TestExportFeaturesCommand: gridmap export features writes what the
// route writes, with the format from the file name and filters; a failed
// export leaves no file.
func TestExportFeaturesCommand(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	dir := t.TempDir()

	var community string
	if err := s.Pool.QueryRow(context.Background(), `SELECT min(code) FROM units WHERE level = 'community' AND valid_to IS NULL`).Scan(&community); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "grids.gpkg")
	text, code := runBin(t, bin, s.URL(), "export", "features", "grids", "--out", out, "--where", "parent_code="+community, "--crs", "gcj02")
	if code != 0 || !strings.Contains(text, "wrote "+out+": 8 features of grids as gpkg") {
		t.Fatalf("export: exit %d, output:\n%s", code, text)
	}
	info, err := exec.Command("ogrinfo", "-ro", "-so", "-al", out).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "Feature Count: 8") || !strings.Contains(string(info), `GEOGCRS["GCJ-02"`) || strings.Contains(string(info), "Warning") {
		t.Errorf("ogrinfo: %v\n%s", err, info)
	}

	out = filepath.Join(dir, "districts.csv")
	if text, code := runBin(t, bin, s.URL(), "export", "features", "--geometry", "lonlat", "--out", out, "districts"); code != 0 {
		t.Fatalf("csv: exit %d\n%s", code, text)
	}
	b, _ := os.ReadFile(out)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\r\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], ",lon,lat") || !strings.Contains(lines[1], "盐田区") {
		t.Errorf("districts CSV:\n%s", b)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "features", "nothing", "--out", filepath.Join(dir, "x.geojson")}, "no collection"},
		{[]string{"export", "features", "grids", "--out", filepath.Join(dir, "x.geojson"), "--where", "version=two"}, "not an integer"},
		{[]string{"export", "features", "grids", "--out", filepath.Join(dir, "x.xlsx")}, "--format"},
		{[]string{"export", "features", "grids"}, "usage"},
	} {
		if text, code := runBin(t, bin, s.URL(), c.args...); code == 0 || !strings.Contains(text, c.want) {
			t.Errorf("%v: exit %d, output:\n%s", c.args, code, text)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*x*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left)+len(hidden) > 0 {
		t.Errorf("failed exports left %v %v", left, hidden)
	}
}
