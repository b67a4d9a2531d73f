package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
)

// benchMemory: gridmap bench memory — the resident memory of a server
// process (gridmap serve, started afresh for each case) under inputs sent
// to exhaust it: 64 MiB unit validations and imports, a 50 MB CSV header
// and idle event-stream subscribers while events flow. It prints the
// process's RSS before and its peak (VmHWM) during each case.
func benchMemory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench memory", flag.ContinueOnError)
	server := fs.String("server", "", "the gridmap binary to measure (default: this one)")
	importBytes := fs.Int("import-bytes", api.DefaultMaxImportBytes-(1<<20), "size of the unit collection validated and imported")
	headerBytes := fs.Int("csv-header-bytes", 50_000_000, "size of the CSV header")
	subscribers := fs.Int("subscribers", 1000, "idle event-stream subscribers")
	events := fs.Int("events", 20000, "events reported while they idle")
	dbName := fs.String("database", "gridmap_bench_memory", "scratch database created (and dropped) on DATABASE_URL's server")
	keep := fs.Bool("keep", false, "keep the scratch database (the idle-subscriber case needs the units the import case stores)")
	only := fs.String("only", "", "run only the cases whose name contains this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin := *server
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	s, drop, err := scratchStore(ctx, *dbName, *keep)
	if err != nil {
		return err
	}
	defer drop()
	// Reads are public; the writes carry an admin token, unlimited.
	token, _, err := s.CreateToken(ctx, data.NewToken{Name: "bench-memory", Role: auth.Admin, CreatedBy: cliActor()})
	s.Close()
	if err != nil {
		return err
	}
	writer := &http.Client{Transport: bearer(token, http.DefaultTransport)}
	u, err := url.Parse(databaseURL())
	if err != nil {
		return err
	}
	u.Path = "/" + *dbName
	dbURL := u.String()

	units, centres := synthUnits(*importBytes)
	orphans := synthOrphans(*importBytes)
	fmt.Printf("server %s; unit collection %s (%d grids), orphan grids %s\n", bin, mib(int64(len(units))), len(centres), mib(int64(len(orphans))))
	fmt.Printf("%-44s %10s %10s %8s %12s\n", "case", "RSS start", "RSS peak", "status", "answer")
	measure := func(name string, attack func(base string) (int, int64, error)) error {
		p, err := startServer(ctx, bin, dbURL)
		if err != nil {
			return err
		}
		defer p.stop()
		start, _ := p.memory()
		status, n, err := attack(p.base)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, peak := p.memory()
		fmt.Printf("%-44s %7.0f MB %7.0f MB %8d %9.1f KB\n", name, float64(start)/1e6, float64(peak)/1e6, status, float64(n)/1e3)
		return nil
	}
	post := func(path, ctype string, body []byte) func(string) (int, int64, error) {
		return func(base string) (int, int64, error) {
			resp, err := writer.Post(base+path, ctype, bytes.NewReader(body))
			if err != nil {
				return 0, 0, err
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, n, err
		}
	}
	header := append(append([]byte("code,class,"), bytes.Repeat([]byte("x"), *headerBytes)...), "\n1,2,3\n"...)
	for _, c := range []struct {
		name   string
		attack func(string) (int, int64, error)
	}{
		{"validate 64 MiB (valid units)", post("/v1/units:validate", "application/geo+json", units)},
		{"validate 64 MiB (every grid's parent unknown)", post("/v1/units:validate", "application/geo+json", orphans)},
		{"import 64 MiB (valid units)", post("/v1/units:import", "application/geo+json", units)},
		{"objects import with a 50 MB CSV header", post("/v1/objects:import", "text/csv", header)},
		{fmt.Sprintf("%d idle subscribers, %d events", *subscribers, *events), func(base string) (int, int64, error) {
			return idleSubscribers(ctx, base, token, *subscribers, *events, centres)
		}},
	} {
		if !strings.Contains(c.name, *only) {
			continue
		}
		if err := measure(c.name, c.attack); err != nil {
			return err
		}
	}
	return nil
}

// serverProcess is a gridmap serve started for one case.
type serverProcess struct {
	cmd  *exec.Cmd
	base string
}

func startServer(ctx context.Context, bin, dbURL string) (*serverProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--public-read", "--write-rate", "0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProcess{cmd: cmd, base: "http://" + addr}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the server did not start: %v", err)
		}
	}
}

// memory is the process's resident set now and its peak, in bytes.
func (p *serverProcess) memory() (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

func (p *serverProcess) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// synthUnits is a district (44 03 99, far from the demo city) with one
// street, communities in columns and grids stacked in them, every edge
// cut into many vertices so the collection reaches size bytes; and the
// centres of its grids.
func synthUnits(size int) ([]byte, [][2]float64) {
	const (
		perEdge   = 200
		cell      = 0.01
		lon0      = 110.0
		lat0      = 20.0
		gridsPerC = 500
	)
	gridBytes := 4 * perEdge * 30
	grids := max(1, size/gridBytes)
	communities := (grids + gridsPerC - 1) / gridsPerC
	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	box := func(x0, y0, x1, y1 float64, n int) {
		b.WriteString(`{"type":"Polygon","coordinates":[[`)
		pts := [][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}
		for e := range 4 {
			a, c := pts[e], pts[(e+1)%4]
			for i := range n {
				t := float64(i) / float64(n)
				fmt.Fprintf(&b, "[%.9f,%.9f],", a[0]+(c[0]-a[0])*t, a[1]+(c[1]-a[1])*t)
			}
		}
		fmt.Fprintf(&b, "[%.9f,%.9f]]]}", x0, y0)
	}
	feature := func(code, level, name string, x0, y0, x1, y1 float64, n int) {
		fmt.Fprintf(&b, `{"type":"Feature","properties":{"code":"%s","level":"%s","name":"%s"},"geometry":`, code, level, name)
		box(x0, y0, x1, y1, n)
		b.WriteString("},")
	}
	rows := min(grids, gridsPerC)
	x1, y1 := lon0+float64(communities)*cell, lat0+float64(rows)*cell
	feature("440399", "district", "测试区", lon0, lat0, x1, y1, 1)
	feature("440399001", "street", "测试街道", lon0, lat0, x1, y1, 1)
	var centres [][2]float64
	for c := range communities {
		cx := lon0 + float64(c)*cell
		n := min(gridsPerC, grids-c*gridsPerC)
		feature(fmt.Sprintf("440399001%03d", c+1), "community", fmt.Sprintf("社区%d", c+1), cx, lat0, cx+cell, lat0+float64(n)*cell, 1)
		for g := range n {
			gy := lat0 + float64(g)*cell
			feature(fmt.Sprintf("440399001%03d%03d", c+1, g+1), "grid", fmt.Sprintf("网格%d-%d", c+1, g+1), cx, gy, cx+cell, gy+cell, perEdge)
			centres = append(centres, [2]float64{cx + cell/2, gy + cell/2})
		}
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte(","))
	return append(out, "]}"...), centres
}

// synthOrphans is a collection of grids whose community is in neither the
// import nor the store: every one is a violation (unknown_parent).
func synthOrphans(size int) []byte {
	units, _ := synthUnits(size)
	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	first := true
	for _, f := range bytes.Split(units[len(`{"type":"FeatureCollection","features":[`):len(units)-2], []byte(`]]]}},`)) {
		if !bytes.Contains(f, []byte(`"level":"grid"`)) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(bytes.TrimSuffix(f, []byte(`]]]}}`)))
		b.WriteString(`]]]}}`)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// idleSubscribers opens n event streams that never read, reports events
// into the grids around centres (stored by the import case before), and
// answers the status of the last stream opened.
func idleSubscribers(ctx context.Context, base, token string, n, events int, centres [][2]float64) (int, int64, error) {
	host := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	status := 0
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return 0, 0, err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /v1/events/stream HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", host)
	}
	// The last one's status line (the rest stay unread).
	if line, err := bufio.NewReader(conns[len(conns)-1]).ReadString('\n'); err == nil {
		if f := strings.Fields(line); len(f) > 1 {
			status, _ = strconv.Atoi(f[1])
		}
	}
	client := &http.Client{Transport: bearer(token, &http.Transport{MaxIdleConnsPerHost: 16})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				p := centres[i%len(centres)]
				body := fmt.Sprintf(`{"class":"0102","lon":%f,"lat":%f,"source":"grid_worker","description":"bench memory %d: %s"}`, p[0], p[1], i, strings.Repeat("路边垃圾堆积", 20))
				resp, err := client.Post(base+"/v1/events", "application/json", strings.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("report: status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					failed = errors.Join(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range events {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if failed != nil {
		return 0, 0, failed
	}
	time.Sleep(2 * time.Second) // the hub's fan-out of the last ones
	return status, 0, nil
}
