package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

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

// served is a `gridmap serve` process started by startServe.
type served struct {
	cmd    *exec.Cmd
	base   string     // http://host:port it serves on
	exited chan error // cmd.Wait's result, once it exits

	logMu sync.Mutex
	log   strings.Builder
}

// logText is what the server logged so far, for a failure's message.
func (s *served) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// startServe runs `gridmap serve` on a free port of 127.0.0.1 against the
// database at url, with flags added, and returns once it serves. It is
// killed when the test ends.
func startServe(t *testing.T, bin, url string, flags ...string) *served {
	t.Helper()
	s := &served{cmd: exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, flags...)...), exited: make(chan error, 1)}
	s.cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })

	// The log names the URL once it serves.
	urlc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`url=(https?://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logMu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case s.base = <-urlc:
	case err := <-s.exited:
		t.Fatalf("serve exited: %v\n%s", err, s.logText())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", s.logText())
	}
	return s
}

func TestImportUnitsCommand(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	out, code := runBin(t, bin, s.URL(), "demo", "--if-empty")
	if code != 0 || !strings.Contains(out, "already holds") {
		t.Fatalf("demo --if-empty on a full store: exit %d, output:\n%s", code, out)
	}
}

func TestImportObjectsAndClassesCommands(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	dir := t.TempDir()
	var lon, lat float64
	var g string
	if err := s.Pool.QueryRow(t.Context(), `SELECT ST_X(p), ST_Y(p), code FROM (SELECT code, ST_PointOnSurface(geom) p FROM units WHERE level = 'grid' ORDER BY code LIMIT 1) x`).Scan(&lon, &lat, &g); err != nil {
		t.Fatal(err)
	}
	classes := filepath.Join(dir, "classes.csv")
	_ = os.WriteFile(classes, []byte("code,kind,major,major_name,minor,name,geometry_types\n0199,component,01,公用设施,99,智能井盖,Point\n0101,component,01,公用设施,01,上水井盖,Point\n"), 0o644)
	out, code := runBin(t, bin, s.URL(), "import", "classes", classes)
	if code != 0 || !strings.Contains(out, "1 added, 1 already") {
		t.Fatalf("import classes: exit %d:\n%s", code, out)
	}
	objects := filepath.Join(dir, "objects.csv")
	body := fmt.Sprintf("code,class,lon,lat\n%[1]s0199000001,0199,%[2]f,%[3]f\n%[1]s0199000002,0199,%[2]f,%[3]f\n%[1]s0101000001,0101,%[2]f,%[3]f\n", g[:6], lon, lat)
	_ = os.WriteFile(objects, []byte(body), 0o644)
	out, code = runBin(t, bin, s.URL(), "import", "objects", objects)
	if code != 0 || !strings.Contains(out, "3 rows: 3 inserted, 0 updated, 0 unchanged, 0 unassigned, 0 rejected") || !strings.Contains(out, "rows/s") {
		t.Fatalf("import objects: exit %d:\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	_ = os.WriteFile(bad, []byte(body+"4403080199000009,0199,abc,22\n"), 0o644)
	out, code = runBin(t, bin, s.URL(), "import", "objects", bad)
	if code == 0 || !strings.Contains(out, "REJECTED line 5") || !strings.Contains(out, "nothing was written") {
		t.Fatalf("import with a bad row: exit %d:\n%s", code, out)
	}
	out, code = runBin(t, bin, s.URL(), "import", "objects", "--on-error=skip", bad)
	if code != 0 || !strings.Contains(out, "3 unchanged") || !strings.Contains(out, "1 rejected") {
		t.Fatalf("import --on-error=skip: exit %d:\n%s", code, out)
	}
}
