package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/grid"
)

// benchEvents: gridmap bench events — the reporting rate over HTTP (locate,
// code, route, deadline, log, feed) and the delivery latency of the live
// stream to many subscribers while reports arrive, against a server and a
// database on this machine (the load generator shares it too).
func benchEvents(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench events", flag.ContinueOnError)
	duration := fs.Duration("duration", 15*time.Second, "length of each measured phase")
	clients := fs.Int("clients", 64, "concurrent reporting clients (HTTP keep-alive connections)")
	subscribers := fs.Int("subscribers", 200, "SSE subscribers in the delivery phase")
	rate := fs.Int("rate", 0, "reports per second in the delivery phase; 0 = as fast as the clients go")
	dbName := fs.String("database", "gridmap_bench", "scratch database created (and dropped) on DATABASE_URL's server")
	keep := fs.Bool("keep", false, "keep the scratch database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// With GRIDMAP_READ_URL (a streaming replica of DATABASE_URL's
	// primary, e.g. scripts/ha.sh's) the server reads from the replica's
	// copy of the scratch database, and the replica's lag is sampled.
	var po data.PoolOptions
	if ru := os.Getenv("GRIDMAP_READ_URL"); ru != "" {
		u, err := url.Parse(ru)
		if err != nil {
			return fmt.Errorf("GRIDMAP_READ_URL: %w", err)
		}
		u.Path = "/" + *dbName
		po.ReadURL = u.String()
	}
	s, drop, err := scratchStore(ctx, *dbName, *keep, po)
	if err != nil {
		return err
	}
	defer drop()
	defer s.Close()
	var lag *lagSampler
	if s.HasReplica() {
		lag = &lagSampler{}
	}
	res, took, err := benchCity(ctx, s, demo.Defaults)
	if err != nil {
		return err
	}
	fmt.Printf("city: %d districts, %d grids in %.1fs\n", res.Counts[grid.District], res.Counts[grid.Grid], took.Seconds())

	token, _, err := s.CreateToken(ctx, data.NewToken{Name: "bench-events", Role: auth.Admin, CreatedBy: cliActor()})
	if err != nil {
		return err
	}
	srv, base, stop, err := benchServer(ctx, s)
	if err != nil {
		return err
	}
	defer stop()
	r := &benchReporter{
		base:    base,
		pts:     gridPoints(srv.Locator(), 20000),
		classes: []string{"0102", "0505", "0503", "0201", "0104", "0404", "0301", "0510"},
		clients: *clients,
		client:  &http.Client{Transport: bearer(token, &http.Transport{MaxIdleConnsPerHost: *clients + *subscribers, MaxConnsPerHost: 0})},
	}

	// 1. Reporting rate.
	stopLag := lag.start(ctx, s)
	n, lats, err := r.run(*duration, 0)
	stopLag()
	if err != nil {
		return err
	}
	lag.print("reporting")
	sortDurations(lats)
	fmt.Printf("reporting: %d clients, %d events in %s: %.0f events/s; POST latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		*clients, n, *duration, float64(n)/duration.Seconds(), ms(pct(lats, 50)), ms(pct(lats, 99)), ms(lats[len(lats)-1]))

	// 2. Delivery to subscribers while reports arrive.
	subs := subscribe(ctx, r.client, base, *subscribers)
	defer subs.stop()
	stopLag = lag.start(ctx, s)
	n, _, err = r.run(*duration, *rate)
	stopLag()
	if err != nil {
		return err
	}
	lag.print("delivery")
	delays := subs.collect(int64(*subscribers) * int64(n))
	if len(delays) == 0 {
		return fmt.Errorf("no messages reached the subscribers")
	}
	fmt.Printf("delivery: %d subscribers, %d events reported in %s (%.0f/s), %d messages received; latency from the report's transaction start to a subscriber's read: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		*subscribers, n, *duration, float64(n)/duration.Seconds(), len(delays), ms(pct(delays, 50)), ms(pct(delays, 99)), ms(delays[len(delays)-1]))
	return nil
}

// benchServer serves the store on a free local port until stop is
// called, following its events and tiles as `gridmap serve` does.
func benchServer(ctx context.Context, s *data.Store) (srv *api.Server, base string, stop func(), err error) {
	// No write limit: the bench's one credential stands for many clients.
	srv, err = api.New(ctx, s, api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WriteRate: -1})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, "", nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	go srv.FollowEvents(runCtx)
	go srv.FollowTiles(runCtx)
	go srv.FollowTokens(runCtx)
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	stop = func() {
		hs.Close()
		cancel()
		srv.Close()
	}
	return srv, "http://" + ln.Addr().String(), stop, nil
}

// benchReporter reports events to the server from concurrent clients.
type benchReporter struct {
	base    string
	client  *http.Client
	pts     [][2]float64 // inside grids
	classes []string
	clients int
	seq     atomic.Int64
}

// report sends one report: a random point and class, with an
// Idempotency-Key, as a careful client sends it.
func (r *benchReporter) report(rng *rand.Rand) (time.Duration, error) {
	p := r.pts[rng.IntN(len(r.pts))]
	body := fmt.Sprintf(`{"class":%q,"lon":%.7f,"lat":%.7f,"source":"grid_worker","reporter":"bench","description":"bench event"}`,
		r.classes[rng.IntN(len(r.classes))], p[0], p[1])
	req, _ := http.NewRequest(http.MethodPost, r.base+"/v1/events", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(r.seq.Add(1), 10))
	t := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("POST /v1/events: %d", resp.StatusCode)
	}
	return time.Since(t), nil
}

// run reports from the clients for d (after a warm-up), at most perSec
// per second when perSec > 0, and returns the count and latencies.
func (r *benchReporter) run(d time.Duration, perSec int) (int, []time.Duration, error) {
	var (
		mu   sync.Mutex
		lats []time.Duration
		n    int
		ferr error
		wg   sync.WaitGroup
	)
	var tick <-chan time.Time
	if perSec > 0 {
		tk := time.NewTicker(time.Second / time.Duration(perSec))
		defer tk.Stop()
		tick = tk.C
	}
	warm := time.Now().Add(2 * time.Second)
	end := warm.Add(d)
	for i := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(end) {
				if tick != nil {
					<-tick
				}
				lat, err := r.report(rng)
				mu.Lock()
				if err != nil && ferr == nil {
					ferr = err
				}
				if err == nil && time.Now().After(warm) && time.Now().Before(end) {
					n++
					lats = append(lats, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return n, lats, ferr
}

// subscribers read the live stream and keep, per message, the delay from
// the report's transaction start to their read.
type subscribers struct {
	stop     context.CancelFunc
	mu       sync.Mutex
	delays   []time.Duration
	received atomic.Int64
	done     sync.WaitGroup
}

// subscribe connects n subscribers to the stream and returns when each
// has its first line.
func subscribe(ctx context.Context, client *http.Client, base string, n int) *subscribers {
	ctx, stop := context.WithCancel(ctx)
	subs := &subscribers{stop: stop}
	var ready sync.WaitGroup
	for range n {
		ready.Add(1)
		subs.done.Add(1)
		go func() {
			defer subs.done.Done()
			var mine []time.Duration
			defer func() {
				subs.mu.Lock()
				subs.delays = append(subs.delays, mine...)
				subs.mu.Unlock()
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events/stream", nil)
			resp, err := client.Do(req)
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			first := true
			for sc.Scan() {
				if first {
					first = false
					ready.Done()
				}
				line := sc.Bytes()
				if !bytes.HasPrefix(line, []byte("data: ")) {
					continue
				}
				now := time.Now()
				if at, ok := feedTime(line[6:]); ok {
					mine = append(mine, now.Sub(at))
					subs.received.Add(1)
				}
			}
		}()
	}
	ready.Wait()
	return subs
}

// collect lets the last of want messages arrive (5 s at most), hangs up
// and returns the delays, sorted.
func (subs *subscribers) collect(want int64) []time.Duration {
	deadline := time.Now().Add(5 * time.Second)
	for subs.received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	subs.stop()
	subs.done.Wait()
	sortDurations(subs.delays)
	return subs.delays
}

// feedTime reads "at" from a feed message: jsonb writes keys shortest
// first, so it leads; parsing only it keeps 200 readers cheap.
func feedTime(b []byte) (time.Time, bool) {
	i := bytes.Index(b, []byte(`"at": "`))
	if i < 0 {
		var m struct{ At time.Time }
		if json.Unmarshal(b, &m) != nil {
			return time.Time{}, false
		}
		return m.At, true
	}
	b = b[i+7:]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:j]))
	return t, err == nil
}

// gridPoints draws n points that fall in a grid, from the locator's
// units' extent.
func gridPoints(l *grid.Locator, n int) [][2]float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	// Shenzhen's extent; points outside every grid are drawn again.
	minLon, minLat, maxLon, maxLat := 113.75, 22.45, 114.62, 22.86
	var out [][2]float64
	for tries := 0; len(out) < n && tries < 100*n; tries++ {
		lon := minLon + rng.Float64()*(maxLon-minLon)
		lat := minLat + rng.Float64()*(maxLat-minLat)
		if l.Locate(lon, lat).Grid != nil {
			out = append(out, [2]float64{lon, lat})
		}
	}
	return out
}

func sortDurations(ds []time.Duration) { sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] }) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// bearerTransport sends a credential with every request.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func bearer(token string, next http.RoundTripper) http.RoundTripper {
	return &bearerTransport{token, next}
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// lagSampler samples the streaming replica's lag behind the primary every
// 100 ms, from the primary's pg_stat_replication: replay_lag (the time
// from the primary's flush of a WAL record to the replica's report of
// having replayed it) and the bytes of WAL written but not yet replayed.
// A nil sampler (no replica) does nothing.
type lagSampler struct {
	mu      sync.Mutex
	seconds []time.Duration
	bytes   []int64
}

func (l *lagSampler) start(ctx context.Context, s *data.Store) (stop func()) {
	if l == nil {
		return func() {}
	}
	l.mu.Lock()
	l.seconds, l.bytes = nil, nil
	l.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var secs float64
			var b int64
			err := s.Pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM replay_lag), 0)::float8,
				(pg_current_wal_lsn() - replay_lsn)::bigint FROM pg_stat_replication ORDER BY replay_lsn LIMIT 1`).Scan(&secs, &b)
			if err == nil {
				l.mu.Lock()
				l.seconds = append(l.seconds, time.Duration(secs*float64(time.Second)))
				l.bytes = append(l.bytes, b)
				l.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (l *lagSampler) print(phase string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seconds) == 0 {
		fmt.Printf("replica lag (%s): no samples (is the replica streaming from this primary?)\n", phase)
		return
	}
	sortDurations(l.seconds)
	slices.Sort(l.bytes)
	fmt.Printf("replica lag (%s, %d samples every 100 ms, pg_stat_replication): replay_lag p50 %.1f ms, p99 %.1f ms, max %.1f ms; WAL not yet replayed p50 %d B, p99 %d B, max %d B\n",
		phase, len(l.seconds), ms(pct(l.seconds, 50)), ms(pct(l.seconds, 99)), ms(l.seconds[len(l.seconds)-1]),
		l.bytes[len(l.bytes)/2], l.bytes[len(l.bytes)*99/100], l.bytes[len(l.bytes)-1])
}
