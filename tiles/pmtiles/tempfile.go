package pmtiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// An export's temporary files are named for its output and its process:
// ".NAME.tmp-PID-…" (the archive, beside NAME, renamed to it when
// complete) and ".NAME.data-PID-…" (the tile data, in Options.TempDir). A
// process killed outright (SIGKILL, a crash, a power cut) cannot remove
// them; the next export to NAME does, once their process is gone.
const (
	kindArchive = "tmp"
	kindData    = "data"
)

// inUse holds this process's temporaries that exports are writing, so
// that a leftover of an earlier process with the same PID is told from
// them.
var inUse sync.Map

func createTemp(dir, base, kind string) (*os.File, error) {
	f, err := os.CreateTemp(dir, fmt.Sprintf(".%s.%s-%d-*", base, kind, os.Getpid()))
	if err != nil {
		return nil, err
	}
	inUse.Store(f.Name(), true)
	return f, nil
}

// removeTemp closes and removes a temporary (again is harmless).
func removeTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
	inUse.Delete(f.Name())
}

// removeLeftovers removes the temporaries of exports to base in dir whose
// process has ended, and returns their names.
func removeLeftovers(dir, base string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs error
	for _, e := range ents {
		pid, ok := leftoverPID(e.Name(), base)
		if !ok {
			continue
		}
		name := filepath.Join(dir, e.Name())
		if pid == os.Getpid() {
			if _, busy := inUse.Load(name); busy {
				continue
			}
		} else if processAlive(pid) {
			continue
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = errors.Join(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errs
}

// leftoverPID is the process of an export's temporary to base.
func leftoverPID(name, base string) (int, bool) {
	for _, kind := range []string{kindArchive, kindData} {
		rest, ok := strings.CutPrefix(name, "."+base+"."+kind+"-")
		if !ok {
			continue
		}
		p, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(p)
		return pid, ok && err == nil && pid > 0
	}
	return 0, false
}

// processAlive: signal 0 checks a process exists without touching it
// (EPERM: it exists, owned by another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
