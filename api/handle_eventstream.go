package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/live"
)

// The live feed's HTTP side: the hub (package live) follows the event feed
// and fans it out; this file writes it to clients as Server-Sent Events.
// The SSE id is the feed's seq: a client that reconnects to any server with
// Last-Event-ID gets every entry after it, as long as it is within the
// retention window; beyond it the client is told with a "reset" message.

// Defaults of the stream.
const (
	DefaultSSEHeartbeat      = 15 * time.Second
	DefaultEventFeedRetain   = 24 * time.Hour
	DefaultIdempotencyRetain = 24 * time.Hour
	sseWriteTimeout          = 30 * time.Second
)

// FollowEvents keeps the live feed flowing to this server's subscribers,
// and prunes the feed, until ctx ends.
func (s *Server) FollowEvents(ctx context.Context) {
	go s.hub.Prune(ctx, s.opts.EventFeedRetention, s.opts.IdempotencyRetention)
	go s.followPositions(ctx)
	s.hub.Run(ctx)
}

// eventStream: GET /v1/events/stream?bbox=|unit=&status=&class= as
// Server-Sent Events: "created" and "transition" messages, and "unit"
// messages (the unit change feed, docs/api.md Unit changes), with the feed
// seq as id, a comment every heartbeat, and resume from Last-Event-ID (or
// ?last_event_id= for clients that cannot set headers).
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) error {
	f, err := s.streamFilter(r)
	if err != nil {
		return err
	}
	after, err := resumePoint(r)
	if err != nil {
		return err
	}
	withPositions, err := parseBoolParam(r.URL.Query(), "positions")
	if err != nil {
		return err
	}
	sub, backlog, gap, err := s.hub.Subscribe(r.Context(), after, f)
	if errors.Is(err, live.ErrTooManySubscribers) {
		w.Header().Set("Retry-After", "10")
		return &Problem{Type: probUnavailable, Title: "Too many event streams", Status: http.StatusServiceUnavailable,
			Detail: "this server holds its most event streams; retry later or on another server (resume with Last-Event-ID)"}
	}
	if err != nil {
		return err
	}
	defer s.hub.Unsubscribe(sub)
	var pos chan []data.Position
	var posNow []data.Position
	if withPositions {
		pos, posNow = s.positions.subscribe()
		defer s.positions.unsubscribe(pos)
	}
	s.serveStream(w, r, sub, backlog, gap, f, pos, posNow)
	return nil
}

// streamFilter reads what the client follows, checking every value, so a
// typo is a 400 rather than a silent stream.
func (s *Server) streamFilter(r *http.Request) (live.Filter, error) {
	q := r.URL.Query()
	var f live.Filter
	var err error
	if q.Get("bbox") != "" && q.Get("unit") != "" {
		return f, &paramError{"bbox", "give bbox or unit, not both"}
	}
	if f.BBox, err = parseBBox(q.Get("bbox")); err != nil {
		return f, err
	}
	if f.Unit, err = s.unitParam(r, q.Get("unit")); err != nil {
		return f, err
	}
	f.Scopes = readScopes(r)
	sts, err := statusesParam(q)
	if err != nil {
		return f, err
	}
	if len(sts) > 0 {
		f.Statuses = map[grid.EventStatus]bool{}
		for _, st := range sts {
			f.Statuses[st] = true
		}
	}
	if cs := listParam(q, "class"); len(cs) > 0 {
		cfg, err := s.store.EventConfig(r.Context())
		if err != nil {
			return f, err
		}
		f.Classes = map[string]bool{}
		for _, c := range cs {
			if err := knownEventClass(cfg, c); err != nil {
				return f, err
			}
			f.Classes[c] = true
		}
	}
	return f, nil
}

// resumePoint is the id of the last message the client received, from
// Last-Event-ID or ?last_event_id=; -1 when it names none (a new stream).
func resumePoint(r *http.Request) (int64, error) {
	for _, src := range []struct{ name, v string }{{"Last-Event-ID", r.Header.Get("Last-Event-ID")}, {"last_event_id", r.URL.Query().Get("last_event_id")}} {
		if src.v == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(src.v), 10, 64)
		if err != nil || n < 0 {
			return 0, &paramError{src.name, fmt.Sprintf("%s %q: want the id of the last message received (a non-negative integer)", src.name, geo.Excerpt(src.v, geo.MaxExcerpt))}
		}
		return n, nil
	}
	return -1, nil
}

// serveStream writes the stream until the client leaves or the hub drops
// it: the reset of a gap, the backlog, then each batch as it comes, with a
// comment every heartbeat.
//
// With pos (?positions=true) the workers' positions go out too: those of
// the last poll first (posNow), then each poll's moves (live_positions.go).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, sub *live.Subscription, backlog []data.FeedEntry, gap *live.Gap,
	f live.Filter, pos chan []data.Position, posNow []data.Position) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var buf []byte
	buf = append(buf, "retry: 3000\n\n"...)
	if gap != nil {
		g, _ := json.Marshal(gap)
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, gap.From, 10)
		buf = append(buf, "\nevent: reset\ndata: "...)
		buf = append(buf, g...)
		buf = append(buf, "\n\n"...)
	}
	write := func() bool {
		// A client that stops reading must not pin this handler (and its
		// queue) forever: a write that cannot finish in time ends it.
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return false
		}
		buf = buf[:0]
		return rc.Flush() == nil
	}
	messages := func(es []data.FeedEntry) {
		buf = appendMessages(buf, es)
		s.metrics.sseMessages.Add(float64(len(es)))
	}
	// The backlog goes out a slice at a time: formatted whole, a long one
	// held its every byte again in buf.
	for {
		n := min(len(backlog), 1000)
		messages(backlog[:n])
		backlog = backlog[n:]
		if !write() {
			return
		}
		if len(backlog) == 0 {
			break
		}
	}
	if buf = appendPositions(buf, posNow, f); len(buf) > 0 && !write() {
		return
	}
	beat := time.NewTicker(s.opts.SSEHeartbeat)
	defer beat.Stop()
	// A stream lasts no longer than its credential: it ends when the
	// credential expires or, checked again at each change of the tokens,
	// is revoked; the client's reconnection then gets the 401.
	var expires <-chan time.Time
	if id := identityOf(r); id != nil && !id.Expires.IsZero() {
		t := time.NewTimer(time.Until(id.Expires))
		defer t.Stop()
		expires = t.C
	}
	tokensChanged := s.tokens.changed()
	if identityOf(r) != nil {
		// Revoked between the request's check and now?
		if _, err := s.identify(r); err != nil {
			return
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-expires:
			return
		case <-tokensChanged:
			tokensChanged = s.tokens.changed()
			if identityOf(r) != nil {
				if _, err := s.identify(r); err != nil {
					return
				}
			}
		case <-s.stopping:
			return // the server shuts down: the client resumes elsewhere
		case <-sub.Gone():
			return // dropped: the client reconnects and resumes
		case batch := <-sub.C():
			messages(batch)
			// Take what else is queued: one flush for all of it.
		more:
			for {
				select {
				case b := <-sub.C():
					messages(b)
				default:
					break more
				}
			}
			if !write() {
				return
			}
		case ps := <-pos:
			if buf = appendPositions(buf, ps, f); len(buf) > 0 && !write() {
				return
			}
		case t := <-beat.C:
			buf = append(buf, ": heartbeat "...)
			buf = t.UTC().AppendFormat(buf, time.RFC3339)
			buf = append(buf, "\n\n"...)
			if !write() {
				return
			}
		}
	}
}

// appendMessages writes entries as SSE messages: id = seq, event = kind,
// data = the JSON body (one line: jsonb has no raw newlines).
func appendMessages(buf []byte, es []data.FeedEntry) []byte {
	for _, e := range es {
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, e.Seq, 10)
		buf = append(buf, "\nevent: "...)
		buf = append(buf, e.Kind...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, e.Body...)
		buf = append(buf, "\n\n"...)
	}
	return buf
}
