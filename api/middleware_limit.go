package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
)

// Every matched request runs in one of four classes, which bound how long
// it may take and how many of it run at once:
//
//   - heavy: unit import and validate, topology issues, object import, a
//     large batch locate and a file export of a collection. At most HeavyRequests run at once, a further
//     one is refused at once with 429 and Retry-After (queueing it would
//     only hold its connection and body open); each has HeavyTimeout to
//     send its body, do its work and write its answer.
//   - stream: the event stream, unbounded (its writes have their own
//     deadline; Shutdown ends it).
//   - export: a whole PMTiles archive, read from disk, written within
//     HeavyTimeout.
//   - ordinary: everything else, its database work within RequestTimeout
//     and the connection's own read and write timeouts.
//
// A semaphore (a buffered channel), not a rate limiter such as
// golang.org/x/time/rate: what runs out is database connections and
// memory held for the length of a request, so what must be bounded is how
// many run at once, however fast or slowly they arrive; a rate would
// admit long requests until they pile up, and refuse short bursts that
// would have done no harm.

// probBusy is the 429 of a heavy request beyond the limit.
const probBusy = "https://gridmap.dev/problems/busy"

// heavyRetryAfter is the Retry-After of that 429: a heavy request takes
// seconds.
const heavyRetryAfter = 5 * time.Second

// heavyLocateBytes is the body from which a batch locate counts as heavy
// (about 1,000 points); a body of unknown length (chunked) counts too.
const heavyLocateBytes = 1000 * bytesPerPoint

type requestClass int

const (
	classOrdinary requestClass = iota
	classHeavy
	classStream
	classExport
)

// classOf tells the class of a request by its route.
func classOf(r *http.Request) requestClass {
	route := mux.CurrentRoute(r)
	if route == nil {
		return classOrdinary
	}
	tmpl, _ := route.GetPathTemplate()
	switch tmpl {
	case "/v1/units:import", "/v1/units:validate", "/v1/topology/issues", "/v1/objects:import", "/v1/exports/{collection}":
		return classHeavy
	case "/v1/locate":
		if r.Method == http.MethodPost && (r.ContentLength < 0 || r.ContentLength > heavyLocateBytes) {
			return classHeavy
		}
	case "/v1/events/stream":
		return classStream
	case "/pmtiles/{name}.pmtiles":
		return classExport
	}
	return classOrdinary
}

// limit is the router middleware that applies the class of each request.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		var deadline time.Time
		switch classOf(r) {
		case classStream:
			// No deadline: net/http lifts the read deadline once a request
			// without a body is read, and the stream sets a write deadline
			// before each of its writes.
			next.ServeHTTP(w, r)
			return
		case classExport:
			deadline = time.Now().Add(s.opts.HeavyTimeout)
			_ = rc.SetWriteDeadline(deadline)
		case classHeavy:
			select {
			case s.heavy <- struct{}{}:
				defer func() { <-s.heavy }()
			default:
				s.writeError(w, r, &Problem{Type: probBusy, Title: "Too many heavy requests", Status: http.StatusTooManyRequests,
					Detail: fmt.Sprintf("%d imports, validations, topology checks, exports or large batch locates are running, the most this server runs at once; retry after the time in Retry-After",
						cap(s.heavy)),
					Extensions: map[string]any{"limit": cap(s.heavy)}, RetryAfter: heavyRetryAfter})
				return
			}
			// A large body may take minutes to arrive; it has the whole
			// budget, and the answer a little more (to tell a body that
			// did not arrive in time).
			deadline = time.Now().Add(s.opts.HeavyTimeout)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline.Add(10 * time.Second))
			r.Body = &deadlineBody{ReadCloser: r.Body, within: s.opts.HeavyTimeout}
		default:
			deadline = time.Now().Add(s.opts.RequestTimeout)
			r.Body = &deadlineBody{ReadCloser: r.Body, within: s.opts.ReadTimeout}
		}
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// deadlineBody remembers that a body did not arrive before the
// connection's read deadline, which writeError answers with 408 naming the
// limit whatever the handler made of the bare "i/o timeout".
type deadlineBody struct {
	io.ReadCloser
	within time.Duration
	late   atomic.Pointer[bodyTimeoutError]
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		late := &bodyTimeoutError{within: b.within}
		b.late.Store(late)
		err = late
	}
	return n, err
}

// bodyTimedOut is the error of r's body when it did not arrive in time.
func bodyTimedOut(r *http.Request) *bodyTimeoutError {
	if b, ok := r.Body.(*deadlineBody); ok {
		return b.late.Load()
	}
	return nil
}

type bodyTimeoutError struct{ within time.Duration }

func (e *bodyTimeoutError) Error() string {
	return fmt.Sprintf("the body did not arrive within %s", e.within)
}
func (e *bodyTimeoutError) Timeout() bool   { return true }
func (e *bodyTimeoutError) Temporary() bool { return false }
