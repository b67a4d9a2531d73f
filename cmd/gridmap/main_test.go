package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gridmap/data/pgtest"
)

// gridmapBin builds the binary once per test run.
func gridmapBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gridmap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin, url string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func TestImportUnitsCommand(t *testing.T) {
	bin := gridmapBin(t)
	s := pgtest.New(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.geojson", `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"code":"440399","name":"测试区","level":"district"},
		 "geometry":{"type":"Polygon","coordinates":[[[114,22.5],[114.1,22.5],[114.1,22.6],[114,22.6],[114,22.5]]]}},
		{"type":"Feature","properties":{"code":"440399001","name":"西街道","level":"street"},
		 "geometry":{"type":"Polygon","coordinates":[[[114,22.5],[114.06,22.5],[114.06,22.6],[114,22.6],[114,22.5]]]}},
		{"type":"Feature","properties":{"code":"440399002","name":"东街道","level":"street"},
		 "geometry":{"type":"Polygon","coordinates":[[[114.05,22.5],[114.1,22.5],[114.1,22.6],[114.05,22.6],[114.05,22.5]]]}}]}`)

	out, code := runBin(t, bin, s.URL(), "import", "units", good)
	if code == 0 || !strings.Contains(out, "ERROR   overlap") || !strings.Contains(out, "440399001,440399002") || !strings.Contains(out, "nothing written") {
		t.Fatalf("overlapping import: exit %d, output:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "import", "units", "--tolerance", "20000000", good)
	if code != 0 || !strings.Contains(out, "3 inserted") {
		t.Fatalf("import with a large tolerance: exit %d, output:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "import", "units", write("bad.json", `{"type":"FeatureCollection","features":[{"type":"Feature",}]}`))
	if code == 0 || !strings.Contains(out, "line 1, column") {
		t.Fatalf("malformed file: exit %d, output:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "import", "units", filepath.Join(dir, "missing.geojson"))
	if code == 0 || !strings.Contains(out, "no such file") {
		t.Fatalf("missing file: exit %d, output:\n%s", code, out)
	}
	if out, code = runBin(t, bin, s.URL(), "nonsense"); code != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("unknown command: exit %d, output:\n%s", code, out)
	}
}

func TestDemoCommandIfEmpty(t *testing.T) {
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	out, code := runBin(t, bin, s.URL(), "demo", "--if-empty")
	if code != 0 || !strings.Contains(out, "already holds") {
		t.Fatalf("demo --if-empty on a full store: exit %d, output:\n%s", code, out)
	}
}
