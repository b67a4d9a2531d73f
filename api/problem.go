package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// This file writes every error the API answers. Handlers return errors
// (handlerFunc); writeError maps them to problems in one place: problemFor.

// Problem is an RFC 9457 problem detail, the body of every error. A handler
// returns one as an error when no store error says what went wrong.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Param names the query parameter or body member at fault.
	Param string `json:"param,omitempty"`
	// Extensions are merged into the top-level object (violations, limit …).
	Extensions map[string]any `json:"-"`
	// RetryAfter, when set, is sent as the Retry-After header (whole
	// seconds) of a 429 or 503.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// MarshalJSON flattens the extensions into the problem object.
func (p Problem) MarshalJSON() ([]byte, error) {
	m := map[string]any{"type": p.Type, "title": p.Title, "status": p.Status}
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	if p.Instance != "" {
		m["instance"] = p.Instance
	}
	if p.Param != "" {
		m["param"] = p.Param
	}
	for k, v := range p.Extensions {
		m[k] = v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<metres>" stays readable
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Problem types: stable URIs clients can switch on, documented in docs/api.md.
const (
	probBadRequest        = "https://gridmap.dev/problems/bad-request"
	probBadParameter      = "https://gridmap.dev/problems/bad-parameter"
	probNotFound          = "https://gridmap.dev/problems/not-found"
	probTooLarge          = "https://gridmap.dev/problems/too-large"
	probViolations        = "https://gridmap.dev/problems/topology-violations"
	probUnavailable       = "https://gridmap.dev/problems/unavailable"
	probInternal          = "https://gridmap.dev/problems/internal"
	probNotAllowed        = "https://gridmap.dev/problems/method-not-allowed"
	probStale             = "https://gridmap.dev/problems/stale" // If-Match names an old version: 412
	probInvalid           = "https://gridmap.dev/problems/invalid"
	probConflict          = "https://gridmap.dev/problems/conflict"
	probOutside           = "https://gridmap.dev/problems/outside-grids"      // a report outside every grid: 422
	probIllegalTransition = "https://gridmap.dev/problems/illegal-transition" // 409 with the allowed moves
	probGone              = "https://gridmap.dev/problems/retired"            // a retired unit: 410
	probIdempotency       = "https://gridmap.dev/problems/idempotency-key-reused"
	probNotAcceptable     = "https://gridmap.dev/problems/not-acceptable" // Accept names nothing the route answers: 406
)

// handlerFunc is a handler that returns its error rather than answering
// it, so that every error is answered the same way (writeError).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers h for path and methods on r.
func (s *Server) handle(r *mux.Router, path string, h handlerFunc, methods ...string) {
	r.Handle(path, s.serve(s.strictParams(path, h))).Methods(methods...)
}

// serve adapts h to net/http: a returned error is answered by writeError.
func (s *Server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError answers err with its problem. A client that has gone gets
// nothing; a failure of ours is logged with a request id, which the answer
// names instead of the internal detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if late := bodyTimedOut(r); late != nil {
		// Whatever the handler made of the body that stopped: the
		// connection's read deadline passed (which also cancelled the
		// request's context, as net/http does on any read error). A
		// handler that set a closer deadline of its own (a stalled
		// import body) has said more precisely what ran out.
		if p, ok := errors.AsType[*Problem](err); ok && p.Status == http.StatusRequestTimeout {
			writeProblem(w, r, *p)
			return
		}
		writeProblem(w, r, Problem{Type: probBadRequest, Title: "Request timeout", Status: http.StatusRequestTimeout, Detail: late.Error()})
		return
	}
	if isClientGone(r.Context()) {
		return
	}
	p := problemFor(err)
	if p != nil && p.Status == http.StatusServiceUnavailable && !errors.As(err, new(*Problem)) {
		s.log.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if p != nil {
		s.countRefusal(p)
	}
	if p == nil {
		id := requestIDOf(r)
		s.log.Error("internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		p = &Problem{Type: probInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the server failed to answer; its log names the cause under request id " + id, Extensions: map[string]any{"request_id": id}}
	}
	writeProblem(w, r, *p)
}

// problemFor maps an error to the problem that answers it; nil for a
// failure of ours (a 500).
func problemFor(err error) *Problem {
	var (
		p      *Problem
		pe     *paramError
		fe     *data.FilterError
		inv    *data.InvalidError
		stale  *data.StaleError
		te     *grid.TransitionError
		ie     *data.IdempotencyError
		mb     *http.MaxBytesError
		denied *auth.Denied
		ny     *data.NotYoursError
		ce     *data.ConflictError
		pie    *data.PeopleImportError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &pe):
		return badParam(pe.param, pe.detail)
	case errors.As(err, &fe):
		return badParam(fe.Param, fe.Msg)
	case errors.As(err, &inv):
		return &Problem{Type: probInvalid, Title: "Invalid " + inv.Field, Status: http.StatusUnprocessableEntity, Param: inv.Field, Detail: inv.Msg}
	case errors.As(err, &stale):
		return staleProblem(stale)
	case errors.As(err, &te):
		allowed := make([]string, len(te.Allowed))
		for i, a := range te.Allowed {
			allowed[i] = string(a)
		}
		return &Problem{Type: probIllegalTransition, Title: "Illegal transition", Status: http.StatusConflict,
			Detail: te.Error(), Extensions: map[string]any{"from": te.From, "to": te.To, "allowed": allowed}}
	case errors.As(err, &ie):
		return &Problem{Type: probIdempotency, Title: "Idempotency-Key reused", Status: http.StatusUnprocessableEntity,
			Detail: ie.Error(), Extensions: map[string]any{"event": ie.Event}}
	case errors.As(err, &denied):
		return forbidden(denied)
	case errors.As(err, &ny):
		return &Problem{Type: probForbidden, Title: "Forbidden", Status: http.StatusForbidden, Detail: ny.Msg}
	case errors.As(err, &ce):
		return &Problem{Type: probConflict, Title: "Conflict", Status: http.StatusConflict, Detail: ce.Msg}
	case errors.As(err, &pie):
		return &Problem{Type: probInvalid, Title: "Invalid people file", Status: http.StatusUnprocessableEntity, Detail: pie.Error(),
			Extensions: map[string]any{"rows": pie.Rows}}
	case errors.As(err, &mb):
		return tooLarge("the body", mb.Limit, "")
	case errors.Is(err, data.ErrExists):
		return &Problem{Type: probConflict, Title: "Already exists", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, data.ErrGone):
		return &Problem{Type: probGone, Title: "Retired", Status: http.StatusGone, Detail: err.Error()}
	case errors.Is(err, data.ErrNotFound):
		return notFound("%v", err)
	}
	if p := unstorableProblem(err); p != nil {
		return p
	}
	if p := unavailableProblem(err); p != nil {
		return p
	}
	return nil
}

// unstorableDetail says, without the SQL, what PostgreSQL refused in a
// value a check before it missed: the request's checks name the place
// (docs/api.md, Text), this is the net under them.
var unstorableDetail = map[string]string{
	"22021": "a text value holds a character that cannot be stored (such as NUL, U+0000)",
	"22P05": "a text value holds a character that cannot be stored (such as NUL, U+0000)",
	"22008": "a date or time is out of the range that can be stored (years 0001 to 9999)",
	"22007": "a date or time is not in a form that can be stored",
	"54000": "a value is too large to be stored or indexed",
}

func unstorableProblem(err error) *Problem {
	pg, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || unstorableDetail[pg.Code] == "" {
		return nil
	}
	return &Problem{Type: probInvalid, Title: "Value cannot be stored", Status: http.StatusUnprocessableEntity, Detail: unstorableDetail[pg.Code]}
}

// Retry-After of the 503 of an unreachable or overloaded database.
const unavailableRetryAfter = 5 * time.Second

// unavailableProblem is the 503 of a database that cannot answer now: it
// cannot be reached, is shutting down or restarting, has no connection
// free in time, or ran out of the statement's time. Its detail is fixed:
// the error names hosts, ports, users, databases and SQL, which stay in
// the log of the caller.
func unavailableProblem(err error) *Problem {
	var (
		ce  *pgconn.ConnectError
		pe  *pgconn.PgError
		ne  net.Error
		pgc interface{ SafeToRetry() bool }
	)
	down := func() *Problem {
		return &Problem{Type: probUnavailable, Title: "Database unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the database cannot be reached or is restarting; retry after the time in Retry-After", RetryAfter: unavailableRetryAfter}
	}
	switch {
	case errors.As(err, &ce):
		return down()
	case errors.As(err, &pe):
		switch {
		case pe.Code == "57014": // query_canceled: statement_timeout or the request's deadline
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", strings.HasPrefix(pe.Code, "08"):
			return down()
		default:
			return nil
		}
	case errors.Is(err, context.DeadlineExceeded):
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne) && !ne.Timeout(), errors.As(err, &pgc) && errors.Is(err, io.EOF):
		// A connection that broke under a statement (pgconn returns the
		// socket's error as it is): the server went away. A client whose
		// body breaks has gone too (isClientGone), or its handler named
		// the body at fault.
		return down()
	default:
		return nil
	}
	return &Problem{Type: probUnavailable, Title: "Timed out", Status: http.StatusServiceUnavailable,
		Detail: "the server is too busy to answer this request in its time; retry after the time in Retry-After", RetryAfter: unavailableRetryAfter}
}

// staleProblem is the 412 of a write whose If-Match names an old version:
// it names the current ETag (also as the member etag) so that the client
// can read the resource again and retry.
func staleProblem(e *data.StaleError) *Problem {
	what := e.Resource
	if what == "" {
		what = "object"
	}
	return &Problem{Type: probStale, Title: "Stale version", Status: http.StatusPreconditionFailed,
		Detail: fmt.Sprintf("%s %s has changed since the version named in If-Match: its current ETag is %s; GET it again, reapply the change and send If-Match: %s",
			what, e.Code, e.Current, e.Current),
		Extensions: map[string]any{"etag": e.Current}}
}

func badParam(param, detail string) *Problem {
	return &Problem{Type: probBadParameter, Title: "Bad parameter", Status: http.StatusBadRequest, Param: param, Detail: detail}
}

func badRequest(title, detail string) *Problem {
	return &Problem{Type: probBadRequest, Title: title, Status: http.StatusBadRequest, Detail: detail}
}

func notFound(format string, args ...any) *Problem {
	return &Problem{Type: probNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: fmt.Sprintf(format, args...)}
}

// notFoundAs gives data.ErrNotFound the detail its 404 answers with; any
// other error is returned as it is.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, data.ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

// tooLarge is the 413 of a body over its limit; what names the body.
func tooLarge(what string, limit int64, more string) *Problem {
	return &Problem{Type: probTooLarge, Title: "Body too large", Status: http.StatusRequestEntityTooLarge,
		Detail:     fmt.Sprintf("%s may hold at most %d bytes%s", what, limit, more),
		Extensions: map[string]any{"limit_bytes": limit}}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" && r != nil {
		// Cut like the detail's values: the path is the client's input.
		p.Instance = geo.Excerpt(r.URL.Path, 100)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", challenge(&p))
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

type requestIDKey struct{}

// requestIDOf is the request's id (a write's, which its audit entry
// keeps), or a new one.
func requestIDOf(r *http.Request) string {
	if id, ok := r.Context().Value(requestIDKey{}).(string); ok {
		return id
	}
	return requestID()
}

// requestID ties a 500 to its line in the log.
func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isClientGone tells a cancelled request from a failure worth a 500: the
// request's context is cancelled (not past its deadline) only when the
// client went away, whatever error that caused below (context.Canceled,
// or PostgreSQL's 57014 after the cancel request).
func isClientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}
