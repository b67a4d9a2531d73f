package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

// An export killed outright (SIGKILL) leaves its temporaries; the next
// export to the same file removes them (not those of a process still
// running), and an interrupted one (SIGINT) removes its own.
func TestExportPMTilesLeftovers(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	s := pgtest.NewDemo(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "yantian.pmtiles")
	temps := func() []string {
		m, err := filepath.Glob(filepath.Join(dir, ".yantian.pmtiles.*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// start runs a long export and waits until both its temporaries exist.
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "export", "pmtiles", "--layers", "units,objects", "--maxzoom", "18",
			"--bbox", "114.18,22.54,114.37,22.65", "--quiet", "--out", out)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+s.URL())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); len(temps()) < 2; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the export's temporaries did not appear: %v", temps())
			}
		}
		return cmd
	}

	killed := start()
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	left := temps()
	if len(left) != 2 {
		t.Fatalf("a killed export left %v, want its 2 temporaries", left)
	}
	for _, name := range left {
		if !strings.Contains(filepath.Base(name), "-"+strconv.Itoa(killed.Process.Pid)+"-") {
			t.Errorf("temporary %s does not name its process %d", name, killed.Process.Pid)
		}
	}
	// One of a process that is still running (init) is left alone.
	running := filepath.Join(dir, ".yantian.pmtiles.tmp-1-123")
	if err := os.WriteFile(running, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	text, code := runBin(t, bin, s.URL(), "export", "pmtiles", "--layers", "units", "--maxzoom", "10",
		"--bbox", "114.18,22.54,114.37,22.65", "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("export after a killed one: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	if got := temps(); len(got) != 1 || got[0] != running {
		t.Errorf("after the next export: temporaries %v, want only %s", got, running)
	}
	os.Remove(running)

	interrupted := start()
	if err := interrupted.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	interrupted.Wait()
	if got := temps(); len(got) != 0 {
		t.Errorf("an interrupted export left %v", got)
	}
}
