package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// sseMsg is one Server-Sent Events message, or a comment.
type sseMsg struct {
	ID      string
	Event   string
	Data    string
	Comment string
}

// sseConn is a subscriber: a reader goroutine parses the stream into msgs.
type sseConn struct {
	t      *testing.T
	url    string
	resp   *http.Response
	msgs   chan sseMsg
	done   chan struct{} // the reader has ended
	cancel context.CancelFunc
	once   sync.Once

	mu    sync.Mutex
	retry string
	err   error
}

// openSSE subscribes to path on base with extra headers (name, value
// pairs). The stream is closed when the test ends, before the servers.
func openSSE(t *testing.T, base, path string, header ...string) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	authorizeFor(req, base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	c := &sseConn{t: t, url: base + path, resp: resp, msgs: make(chan sseMsg, 8192), done: make(chan struct{}), cancel: cancel}
	t.Cleanup(c.close)
	if resp.StatusCode != http.StatusOK {
		c.close()
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		c.close()
		t.Fatalf("GET %s: Content-Type %q", path, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET %s: Cache-Control %q", path, cc)
	}
	go c.read()
	return c
}

func (c *sseConn) read() {
	defer close(c.done)
	br := bufio.NewReader(c.resp.Body)
	var m sseMsg
	var data []string
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData {
				m.Data = strings.Join(data, "\n")
				c.msgs <- m
			}
			m, data, hasData = sseMsg{}, nil, false
			continue
		}
		if rest, ok := strings.CutPrefix(line, ":"); ok {
			c.msgs <- sseMsg{Comment: strings.TrimPrefix(rest, " ")}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			data, hasData = append(data, value), true
		case "retry":
			c.mu.Lock()
			c.retry = value
			c.mu.Unlock()
		}
	}
}

// close ends the subscription and waits for the reader.
func (c *sseConn) close() {
	c.once.Do(func() {
		c.cancel()
		c.resp.Body.Close()
		<-c.done
	})
}

// next returns the next message (comments included) within d.
func (c *sseConn) next(d time.Duration) (sseMsg, bool) {
	select {
	case m := <-c.msgs:
		return m, true
	case <-time.After(d):
		return sseMsg{}, false
	}
}

// nextData returns the next message that is not a comment, failing the
// test after d.
func (c *sseConn) nextData(d time.Duration) sseMsg {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, ok := c.next(time.Until(deadline))
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			c.t.Fatalf("%s: no message within %s (stream: %v)", c.url, d, err)
		}
		if m.Comment == "" {
			return m
		}
	}
}

// feedMsg is the data of a created or transition message.
type feedMsg struct {
	Type       string    `json:"type"`
	Seq        int64     `json:"seq"`
	At         time.Time `json:"at"`
	Code       string    `json:"code"`
	Class      string    `json:"class"`
	ClassName  string    `json:"class_name"`
	Status     string    `json:"status"`
	From       string    `json:"from"`
	Lon        float64   `json:"lon"`
	Lat        float64   `json:"lat"`
	GridCode   string    `json:"grid_code"`
	Department string    `json:"department"`
	ReportedAt time.Time `json:"reported_at"`
	Deadline   time.Time `json:"deadline"`
	Actor      string    `json:"actor"`
	Note       string    `json:"note"`
	Version    int       `json:"version"`
}

func decodeFeedMsg(t *testing.T, m sseMsg) feedMsg {
	t.Helper()
	var f feedMsg
	if err := json.Unmarshal([]byte(m.Data), &f); err != nil {
		t.Fatalf("message %+v: %v", m, err)
	}
	if id, err := strconv.ParseInt(m.ID, 10, 64); err != nil || id != f.Seq || m.Event != f.Type {
		t.Errorf("message id %q event %q, data seq %d type %s", m.ID, m.Event, f.Seq, f.Type)
	}
	return f
}

// feedAfter is every feed entry after seq, in order.
func feedAfter(t *testing.T, s *data.Store, seq int64) []data.FeedEntry {
	t.Helper()
	var out []data.FeedEntry
	for {
		b, err := s.ReadFeed(context.Background(), seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
		if len(b) < 1000 {
			return out
		}
		seq = b[len(b)-1].Seq
	}
}

func newestFeedSeq(t *testing.T, s *data.Store) int64 {
	t.Helper()
	_, n, err := s.FeedBounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expectEntries reads len(want) data messages and checks they are the
// entries, in order, byte for byte.
func (c *sseConn) expectEntries(what string, want []data.FeedEntry, d time.Duration) {
	c.t.Helper()
	for i, w := range want {
		m := c.nextData(d)
		if m.ID != strconv.FormatInt(w.Seq, 10) || m.Event != w.Kind || m.Data != string(w.Body) {
			c.t.Fatalf("%s: message %d of %d is id %s %s %s, want id %d %s %s", what, i+1, len(want), m.ID, m.Event, m.Data, w.Seq, w.Kind, w.Body)
		}
	}
}

// TestEventStreamDelivers: created and transition messages with the feed
// seq as id, to every subscriber whose filter matches: unit, bbox, status
// (entering or leaving it) and class.
func TestEventStreamDelivers(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g1 := grids[0]
	var g3 evGrid // another grid of g1's street
	for _, g := range grids[1:] {
		if g.code[:9] == g1.code[:9] && g.code[:12] != g1.code[:12] {
			g3 = g
			break
		}
	}
	g2 := grids[len(grids)-1] // another street
	if g3.code == "" || g2.code[:9] == g1.code[:9] {
		t.Fatalf("grids %v %v %v", g1, g2, g3)
	}
	street := g1.code[:9]
	bboxS := bboxOf(t, e.store, g1.code)
	var bb [4]float64
	for i, v := range strings.Split(bboxS, ",") {
		bb[i], _ = strconv.ParseFloat(v, 64)
	}
	type sub struct {
		name  string
		query string
		match func(f data.FeedEntry) bool
		c     *sseConn
	}
	subs := []*sub{
		{name: "all", query: "", match: func(data.FeedEntry) bool { return true }},
		{name: "unit", query: "?unit=" + street, match: func(f data.FeedEntry) bool { return strings.HasPrefix(f.GridCode, street) }},
		{name: "bbox", query: "?bbox=" + bboxS, match: func(f data.FeedEntry) bool {
			return f.Lon >= bb[0] && f.Lon <= bb[2] && f.Lat >= bb[1] && f.Lat <= bb[3]
		}},
		{name: "status", query: "?status=registered", match: func(f data.FeedEntry) bool { return f.Status == "registered" || f.From == "registered" }},
		{name: "class", query: "?class=0102", match: func(f data.FeedEntry) bool { return f.Class == "0102" }},
		{name: "class,status", query: "?class=0101,0102&status=reported", match: func(f data.FeedEntry) bool {
			return (f.Class == "0101" || f.Class == "0102") && (f.Status == "reported" || f.From == "reported")
		}},
	}
	start := newestFeedSeq(t, e.store)
	for _, s := range subs {
		s.c = openSSE(t, e.url, "/v1/events/stream"+s.query)
	}
	e1 := e.reportEvent(evReport("0102", g1.lon, g1.lat))
	e2 := e.reportEvent(evReport("0101", g2.lon, g2.lat))
	e3 := e.reportEvent(evReport("0105", g3.lon, g3.lat))
	e.moved(e2.ID, "registered")
	e.moved(e2.ID, "dispatched", "note", "派往城管") // leaves registered
	e.moved(e1.ID, "rejected")
	e.reportEvent(evReport("0102", g2.lon, g2.lat))
	e.moved(e3.ID, "registered")
	// The sentinel: a move every filter matches.
	sentinel := e.reportEvent(evReport("0102", g1.lon, g1.lat))
	e.moved(sentinel.ID, "registered")
	feed := feedAfter(t, e.store, start)
	if len(feed) != 10 {
		t.Fatalf("%d feed entries, want 10", len(feed))
	}
	for _, s := range subs {
		var want []data.FeedEntry
		for _, f := range feed {
			if s.match(f) {
				want = append(want, f)
			}
		}
		if s.name != "all" && (len(want) == 0 || len(want) == len(feed)) {
			t.Errorf("%s: the filter selects %d of %d", s.name, len(want), len(feed))
		}
		if last := want[len(want)-1]; last.EventCode != sentinel.ID || last.Kind != "transition" {
			t.Fatalf("%s: the sentinel does not match", s.name)
		}
		s.c.expectEntries(s.name, want, 5*time.Second)
		s.c.mu.Lock()
		if s.c.retry != "3000" {
			t.Errorf("%s: retry %q", s.name, s.c.retry)
		}
		s.c.mu.Unlock()
	}
	// The data, as a client reads it.
	all := subs[0].c
	all.close()
	c := openSSE(t, e.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(start, 10))
	var msgs []feedMsg
	var prev int64
	for range feed {
		f := decodeFeedMsg(t, c.nextData(5*time.Second))
		if f.Seq <= prev {
			t.Errorf("id %d after %d", f.Seq, prev)
		}
		prev = f.Seq
		msgs = append(msgs, f)
	}
	m := msgs[0]
	if m.Type != "created" || m.Code != e1.ID || m.Class != "0102" || m.ClassName != "暴露垃圾" || m.Status != "reported" || m.From != "" ||
		m.Lon != g1.lon || m.Lat != g1.lat || m.GridCode != g1.code || m.Department != "cgj" || m.Version != 1 ||
		!m.Deadline.Equal(e1.Properties.Deadline) || !m.ReportedAt.Equal(e1.Properties.ReportedAt) || m.Actor != adminActor {
		t.Errorf("created message %+v", m)
	}
	m = msgs[4]
	if m.Type != "transition" || m.Code != e2.ID || m.Status != "dispatched" || m.From != "registered" || m.Actor != adminActor ||
		m.Note != "派往城管" || m.Version != 3 || m.Class != "0101" || m.GridCode != g2.code {
		t.Errorf("transition message %+v", m)
	}
	// The status subscriber saw e2 leave registered.
	statusSeen := false
	for _, f := range feed {
		if f.EventCode == e2.ID && f.From == "registered" {
			statusSeen = true
		}
	}
	if !statusSeen {
		t.Errorf("no transition out of registered in the feed")
	}
}

func TestEventStreamBadParams(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	for _, c := range []struct {
		path   string
		header []string
		param  string
	}{
		{"/v1/events/stream?status=nope", nil, "status"},
		{"/v1/events/stream?class=9999", nil, "class"},
		{"/v1/events/stream?class=0102,9999", nil, "class"},
		{"/v1/events/stream?unit=440399", nil, "unit"},
		{"/v1/events/stream?bbox=1,2,3", nil, "bbox"},
		{"/v1/events/stream?bbox=114,23,113,22", nil, "bbox"},
		{"/v1/events/stream?bbox=113,22,114,23&unit=" + demoDistrict, nil, "bbox"},
		{"/v1/events/stream", []string{"Last-Event-ID", "abc"}, "Last-Event-ID"},
		{"/v1/events/stream", []string{"Last-Event-ID", "-3"}, "Last-Event-ID"},
		{"/v1/events/stream?last_event_id=x", nil, "last_event_id"},
	} {
		r := e.with(http.MethodGet, c.path, "", c.header...)
		expectProblem(t, r, http.StatusBadRequest, typeBadParam, c.param)
	}
}

// TestEventStreamHeartbeat: an idle stream carries a comment every
// heartbeat.
func TestEventStreamHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{SSEHeartbeat: 100 * time.Millisecond})
	c := openSSE(t, e.url, "/v1/events/stream")
	beats := 0
	deadline := time.Now().Add(5 * time.Second)
	for beats < 2 {
		m, ok := c.next(time.Until(deadline))
		if !ok {
			t.Fatalf("%d heartbeats in 5 s with a 100 ms interval", beats)
		}
		if m.Comment == "" {
			t.Fatalf("a message on an idle stream: %+v", m)
		}
		at, ok := strings.CutPrefix(m.Comment, "heartbeat ")
		if !ok {
			t.Fatalf("comment %q", m.Comment)
		}
		if _, err := time.Parse(time.RFC3339, at); err != nil {
			t.Errorf("heartbeat time %q: %v", at, err)
		}
		beats++
	}
}

// TestEventStreamResume: a subscriber that disconnects and comes back with
// Last-Event-ID gets exactly what it missed, in order, once: from the
// server's ring, and from another server whose ring started later (from
// the table, then its ring).
func TestEventStreamResume(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	a := newEnv(t, store, api.Options{})
	grids := evGridPoints(t, store)
	report := func(e *apiEnv, i int) string {
		g := grids[(i*13)%len(grids)]
		return e.reportEvent(evReport([]string{"0102", "0101", "0105", "0401"}[i%4], g.lon, g.lat)).ID
	}
	start := newestFeedSeq(t, store)
	c := openSSE(t, a.url, "/v1/events/stream")
	var created []string
	for i := range 10 {
		created = append(created, report(a, i))
	}
	// The subscriber reads six, then goes away.
	var lastID string
	for range 6 {
		m := c.nextData(5 * time.Second)
		lastID = m.ID
	}
	c.close()
	last, _ := strconv.ParseInt(lastID, 10, 64)
	if want := feedAfter(t, store, start)[5].Seq; last != want {
		t.Fatalf("sixth message id %d, want %d", last, want)
	}

	// Meanwhile: more reports, one by one and from several clients at
	// once, and moves; a second server starts half way.
	for i := range 40 {
		created = append(created, report(a, 100+i))
	}
	var b *apiEnv
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 12 {
				g := grids[(w*31+i*7)%len(grids)]
				r, err := a.send(http.MethodPost, "/v1/events", evReport("0102", g.lon, g.lat))
				if err != nil || r.Status != http.StatusCreated {
					errs <- fmt.Errorf("%v %s", err, r)
					return
				}
				var f evFeature
				if err := json.Unmarshal(r.Body, &f); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				created = append(created, f.ID)
				mu.Unlock()
			}
		}()
		if w == 2 {
			b = newEnv(t, store, api.Options{})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, code := range created[:10] {
		a.moved(code, "registered", fmt.Sprint("actor ", i))
	}
	for i := range 20 {
		created = append(created, report(a, 200+i))
	}
	missed := feedAfter(t, store, last)
	if want := 10 - 6 + 40 + 72 + 10 + 20; len(missed) != want {
		t.Fatalf("%d entries after %d, want %d", len(missed), last, want)
	}
	// Every created event is among them or among the six read.
	inFeed := map[string]bool{}
	for _, f := range feedAfter(t, store, start) {
		if f.Kind == "created" {
			inFeed[f.EventCode] = true
		}
	}
	if len(inFeed) != len(created) {
		t.Errorf("%d created in the feed, %d reported", len(inFeed), len(created))
	}
	for _, code := range created {
		if !inFeed[code] {
			t.Errorf("%s was reported but is not in the feed", code)
		}
	}

	// Back at A (its ring), by header, and at B (the table, then its
	// ring), by header and by query parameter.
	for _, r := range []struct {
		name   string
		e      *apiEnv
		path   string
		header []string
	}{
		{"server A, Last-Event-ID", a, "/v1/events/stream", []string{"Last-Event-ID", lastID}},
		{"server B, Last-Event-ID", b, "/v1/events/stream", []string{"Last-Event-ID", lastID}},
		{"server B, last_event_id", b, "/v1/events/stream?last_event_id=" + lastID, nil},
	} {
		c := openSSE(t, r.e.url, r.path, r.header...)
		want := feedAfter(t, store, last)
		c.expectEntries(r.name, want, 10*time.Second)
		// No duplicate follows: the next message is the next report.
		code := report(a, 999)
		m := decodeFeedMsg(t, c.nextData(5*time.Second))
		if m.Code != code || m.Type != "created" {
			t.Errorf("%s: after the backlog, %+v; want the new report %s", r.name, m, code)
		}
		c.close()
	}
	// An id ahead of the feed (from a server that has seen more): nothing
	// old, then the next report.
	ahead := newestFeedSeq(t, store)
	c = openSSE(t, b.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(ahead, 10))
	code := report(a, 1000)
	if m := decodeFeedMsg(t, c.nextData(5*time.Second)); m.Code != code || m.Seq <= ahead {
		t.Errorf("resume from the newest id: %+v, want %s", m, code)
	}
}

// TestEventStreamReset: resuming from an id whose entries were pruned is
// told so with a reset message, and then follows the present.
func TestEventStreamReset(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	a := newEnv(t, store, api.Options{})
	grids := evGridPoints(t, store)
	// The demo city's import is in the feed already (a unit change).
	before := len(feedAfter(t, store, 0))
	// A live stream on A: once it has delivered the reports, A's hub has
	// read them into its ring, before they are pruned below. (Pruned before
	// A read them, A would drop every stream instead, rightly, so that
	// each resumes and is told of the gap: on a loaded machine the test
	// saw that EOF rather than the replay it checks.)
	live := openSSE(t, a.url, "/v1/events/stream")
	for i := range 5 {
		a.reportEvent(evReport("0102", grids[i].lon, grids[i].lat))
	}
	entries := feedAfter(t, store, 0)[before:]
	if len(entries) != 5 {
		t.Fatalf("%d feed entries", len(entries))
	}
	live.expectEntries("server A, live", entries, 10*time.Second)
	live.close()
	if n, _, err := store.PruneEvents(context.Background(), 0, time.Hour); err != nil || n != int64(before+5) {
		t.Fatalf("PruneEvents: %d %v, want %d", n, err, before+5)
	}
	pruned := entries[4].Seq
	// A server whose ring starts after the pruned entries.
	b := newEnv(t, store, api.Options{})
	for _, from := range []int64{entries[0].Seq, 0} {
		c := openSSE(t, b.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(from, 10))
		m := c.nextData(5 * time.Second)
		if m.Event != "reset" {
			t.Fatalf("resume from %d: %+v, want a reset", from, m)
		}
		var gap struct {
			Reason        string `json:"reason"`
			LastEventID   int64  `json:"last_event_id"`
			PrunedThrough int64  `json:"pruned_through"`
		}
		if err := json.Unmarshal([]byte(m.Data), &gap); err != nil || gap.Reason == "" || gap.LastEventID != from || gap.PrunedThrough != pruned {
			t.Errorf("reset data %s (%v), want last_event_id %d pruned_through %d", m.Data, err, from, pruned)
		}
		// Then the present.
		f := a.reportEvent(evReport("0101", grids[9].lon, grids[9].lat))
		if got := decodeFeedMsg(t, c.nextData(5*time.Second)); got.Code != f.ID || got.Seq <= pruned {
			t.Errorf("after the reset: %+v, want %s", got, f.ID)
		}
		c.close()
	}
	// Resuming from the pruned mark itself lost nothing: no reset.
	c := openSSE(t, b.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(pruned, 10))
	want := feedAfter(t, store, pruned)
	c.expectEntries("from the pruned mark", want, 5*time.Second)
	c.close()
	// Server A still holds the pruned entries in its ring: it may replay
	// them, but then all of them (never a part without a reset).
	c = openSSE(t, a.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(entries[0].Seq, 10))
	if m := c.nextData(5 * time.Second); m.Event != "reset" {
		if m.ID != strconv.FormatInt(entries[1].Seq, 10) || m.Data != string(entries[1].Body) {
			t.Fatalf("server A, resume from %d: %+v, want a reset or entry %d", entries[0].Seq, m, entries[1].Seq)
		}
		c.expectEntries("server A, from its ring", append(slices.Clone(entries[2:]), want...), 5*time.Second)
	}
}

// TestEventStreamAcrossProcesses: a report and a move made through one
// server reach a subscriber of another server process within 5 s.
func TestEventStreamAcrossProcesses(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	a := newEnv(t, store, api.Options{})
	b := startServe(t, store)
	grids := evGridPoints(t, store)
	c := openSSE(t, b.url, "/v1/events/stream")
	f := a.reportEvent(evReport("0102", grids[2].lon, grids[2].lat))
	m := decodeFeedMsg(t, c.nextData(5*time.Second))
	if m.Type != "created" || m.Code != f.ID || m.GridCode != grids[2].code {
		t.Errorf("created at the other process: %+v", m)
	}
	a.moved(f.ID, "registered")
	m = decodeFeedMsg(t, c.nextData(5*time.Second))
	if m.Type != "transition" || m.Code != f.ID || m.Status != "registered" || m.From != "reported" || m.Version != 2 {
		t.Errorf("transition at the other process: %+v", m)
	}
	// And the other way round: a report through the process reaches A.
	// (From the newest id: a subscriber without one starts where its
	// server's reader is, which may be just before the move above.)
	ca := openSSE(t, a.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(newestFeedSeq(t, store), 10))
	r := b.with(http.MethodPost, "/v1/events", evReport("0101", grids[3].lon, grids[3].lat))
	var fb evFeature
	expect(t, r, http.StatusCreated, ctGeoJSON, &fb)
	for _, sub := range []*sseConn{ca, c} {
		if m := decodeFeedMsg(t, sub.nextData(5*time.Second)); m.Code != fb.ID {
			t.Errorf("report through the process: %+v, want %s", m, fb.ID)
		}
	}
}

// TestEventStreamManySubscribers: fifty subscribers each get every
// message of a burst of two hundred reports, in order.
func TestEventStreamManySubscribers(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	start := newestFeedSeq(t, e.store)
	subs := make([]*sseConn, 50)
	for i := range subs {
		subs[i] = openSSE(t, e.url, "/v1/events/stream")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				g := grids[(w*20+i)%len(grids)]
				r, err := e.send(http.MethodPost, "/v1/events", evReport("0102", g.lon, g.lat))
				if err != nil || r.Status != http.StatusCreated {
					errs <- fmt.Errorf("%v %s", err, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := feedAfter(t, e.store, start)
	if len(want) != 200 {
		t.Fatalf("%d feed entries, want 200", len(want))
	}
	for i, c := range subs {
		c.expectEntries(fmt.Sprintf("subscriber %d", i), want, 10*time.Second)
	}
	// Nothing more: the next message of each is the next report.
	f := e.reportEvent(evReport("0101", grids[0].lon, grids[0].lat))
	for i, c := range subs {
		if m := decodeFeedMsg(t, c.nextData(5*time.Second)); m.Code != f.ID {
			t.Errorf("subscriber %d: %+v after the burst, want %s", i, m, f.ID)
		}
	}
}

// TestEventStreamReconnectUnderLoad: while reports keep arriving, a
// subscriber reads a few messages, drops the connection and resumes with
// Last-Event-ID, again and again, at three servers in turn (one started
// half way, so its ring begins after the ids it is asked to resume from).
// What it reads, end to end, is the feed: no gap, no duplicate.
func TestEventStreamReconnectUnderLoad(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	servers := []*apiEnv{newEnv(t, store, api.Options{}), newEnv(t, store, api.Options{})}
	grids := evGridPoints(t, store)
	start := newestFeedSeq(t, store)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				g := grids[(w*50+i)*7%len(grids)]
				r, err := servers[w%2].send(http.MethodPost, "/v1/events", evReport("0102", g.lon, g.lat))
				if err != nil || r.Status != http.StatusCreated {
					errs <- fmt.Errorf("report: %v %s", err, r)
					return
				}
			}
		}()
	}
	reporting := make(chan struct{})
	go func() { wg.Wait(); close(reporting) }()

	var got []int64
	last := strconv.FormatInt(start, 10)
	total := -1 // the feed's length once the reports are all in
	complete := func() bool {
		if total < 0 {
			select {
			case <-reporting:
				total = len(feedAfter(t, store, start))
			default:
				return false
			}
		}
		return len(got) == total
	}
	// nextUntil is the next message, or false once everything is in.
	var k int
	nextUntil := func(c *sseConn) (sseMsg, bool) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			if complete() {
				return sseMsg{}, false
			}
			rep := reporting
			if total >= 0 {
				rep = nil
			}
			select {
			case m := <-c.msgs:
				if m.Comment == "" {
					return m, true
				}
			case <-rep:
			case <-timeout:
				t.Fatalf("connection %d to server %d, Last-Event-ID %s: no message within 5 s; %d of %d (newest %d) received",
					k, k%len(servers), last, len(got), total, newestFeedSeq(t, store))
			}
		}
	}
	for ; !complete(); k++ {
		if k == 3 {
			servers = append(servers, newEnv(t, store, api.Options{}))
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		c := openSSE(t, servers[k%len(servers)].url, "/v1/events/stream", "Last-Event-ID", last)
		for range 1 + k%13 {
			m, ok := nextUntil(c)
			if !ok {
				break
			}
			id, err := strconv.ParseInt(m.ID, 10, 64)
			if err != nil || m.Event != "created" {
				t.Fatalf("message %+v", m)
			}
			got = append(got, id)
			last = m.ID
		}
		c.close()
		if k > 1000 {
			t.Fatalf("%d reconnections", k)
		}
	}
	want := feedAfter(t, store, start)
	if len(want) != 150 {
		t.Fatalf("%d feed entries, want 150", len(want))
	}
	for i, w := range want {
		if i >= len(got) || got[i] != w.Seq {
			t.Fatalf("message %d: got ids %v…, want %d", i, got[max(0, i-3):min(len(got), i+3)], w.Seq)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d messages, %d feed entries", len(got), len(want))
	}
}
