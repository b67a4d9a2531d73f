package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

func TestExportPMTilesCommand(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "yantian.pmtiles")

	text, code := runBin(t, bin, s.URL(), "export", "pmtiles", "--layers", "units,objects", "--minzoom", "0", "--maxzoom", "14",
		"--bbox", "114.18,22.54,114.37,22.65", "--out", out)
	if code != 0 || !strings.Contains(text, "wrote "+out) || !strings.Contains(text, "z14 ") || !strings.Contains(text, "with features written") {
		t.Fatalf("export: exit %d, output:\n%s", code, text)
	}
	// The pmtiles CLI (go.mod's tool directive) checks the archive.
	vout, err := exec.Command("go", "tool", "go-pmtiles", "verify", out).CombinedOutput()
	if err != nil || strings.Contains(string(vout), "Invalid") || !strings.Contains(string(vout), "Completed verify") {
		t.Fatalf("pmtiles verify: %v\n%s", err, vout)
	}
	show, err := exec.Command("go", "tool", "go-pmtiles", "show", out).CombinedOutput()
	if err != nil || !strings.Contains(string(show), "tile type: mvt") || !strings.Contains(string(show), "max zoom: 14") || !strings.Contains(string(show), "clustered: true") {
		t.Fatalf("pmtiles show: %v\n%s", err, show)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "pmtiles", "--layers", "roads", "--out", out + "2"}, `no tileset "roads"`},
		{[]string{"export", "pmtiles", "--bbox", "1,2,3", "--out", out + "2"}, "--bbox"},
		{[]string{"export", "pmtiles"}, "usage"},
		{[]string{"export", "mbtiles", "--out", out + "2"}, "usage"},
	} {
		if text, code := runBin(t, bin, s.URL(), c.args...); code == 0 || !strings.Contains(text, c.want) {
			t.Errorf("%v: exit %d, output:\n%s", c.args, code, text)
		}
	}
	if _, err := os.Stat(out + "2"); err == nil {
		t.Error("a failed export left an archive")
	}

	// gridmap serve --pmtiles-dir serves it.
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:"+port, "--pmtiles-dir", dir, "--public-read")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.URL())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	logged := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "serving PMTiles") {
				logged <- sc.Text()
			}
		}
	}()
	base := "http://127.0.0.1:" + port
	var resp *http.Response
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/pmtiles/yantian.pmtiles", nil)
		req.Header.Set("Range", "bytes=0-126")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("server did not answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(string(b), "PMTiles") || len(b) != 127 {
		t.Errorf("Range request: %d %q", resp.StatusCode, b)
	}
	select {
	case line := <-logged:
		if !strings.Contains(line, dir) {
			t.Errorf("log line %q does not name %s", line, dir)
		}
	case <-time.After(5 * time.Second):
		t.Error("serve did not log the PMTiles directory")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
