package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/time/rate"

	"gridmap/auth"
	"gridmap/data"
)

// handleWrite registers a write: a route that needs a credential whose
// role may do action, whose writes are guarded by the identity's scopes,
// counted against its rate and kept in the audit log.
// The route is named writeRouteName, so that a middleware (and a test)
// can tell a write route from a read.
func (s *Server) handleWrite(r *mux.Router, path string, action auth.Action, h handlerFunc, methods ...string) {
	r.Handle(path, s.audited(s.serve(s.authorized(action, s.strictParams(path, h))))).Methods(methods...).
		Name(writeRoutePrefix + strings.Join(methods, ",") + " " + path)
}

// writeRoutePrefix starts the name of every write route.
const writeRoutePrefix = "write "

// isWriteRoute says whether the request matched a write route.
func isWriteRoute(r *http.Request) bool {
	route := mux.CurrentRoute(r)
	return route != nil && strings.HasPrefix(route.GetName(), writeRoutePrefix)
}

// writeRecord is what the audit log learns of a write while it runs.
type writeRecord struct {
	mu    sync.Mutex
	units []string
	err   error
	// unaudited: a refusal for the rate, which gridmap_auth_refused_total
	// counts instead of an entry each.
	unaudited bool
}

func markUnaudited(r *http.Request) {
	if rec := recordOf(r); rec != nil {
		rec.unaudited = true
	}
}

// clientHost is the address a request came from (a proxy's, behind one).
func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// countRefusal counts a refusal of access control by reason.
func (s *Server) countRefusal(p *Problem) {
	switch p.Type {
	case probUnauthorized:
		reason, _ := p.Extensions["reason"].(string)
		s.metrics.authFailures.WithLabelValues(reason).Inc()
	case probForbidden:
		s.metrics.authFailures.WithLabelValues("forbidden").Inc()
	case probRateLimited:
		s.metrics.authFailures.WithLabelValues("rate-limited").Inc()
	}
}

func (w *writeRecord) add(units []string) {
	w.mu.Lock()
	w.units = append(w.units, units...)
	w.mu.Unlock()
}

type writeRecordKey struct{}

func recordOf(r *http.Request) *writeRecord {
	rec, _ := r.Context().Value(writeRecordKey{}).(*writeRecord)
	return rec
}

// authorized checks the identity and its role, spends one of its writes,
// and hands h a context whose writes the identity's scopes guard and whose
// actor it is.
func (s *Server) authorized(action auth.Action, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rec := recordOf(r)
		err := s.authorize(w, r, action, h)
		// Not a nil over the error of a handler that answered it itself
		// (countImport) and recorded it.
		if rec != nil && err != nil {
			rec.err = err
		}
		return err
	}
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, action auth.Action, h handlerFunc) error {
	id := identityOf(r)
	credErr, _ := r.Context().Value(credentialErrKey{}).(error)
	if id == nil {
		// Attempts without a valid credential are audited too, at the rate
		// one credential may write, per client address: beyond it they are
		// refused unrecorded, so that nobody can flood the audit log.
		if err := s.writeRates.allow("unauthenticated@"+clientHost(r), s.opts.WriteRate, s.opts.WriteBurst); err != nil {
			markUnaudited(r)
			return err
		}
	}
	if credErr != nil {
		return credErr // a credential that proves nothing (authenticate)
	}
	if id == nil {
		return unauthorized(auth.Missing, fmt.Sprintf("%s %s is a write: it needs a credential (Authorization: Bearer <token>) with the role %s",
			r.Method, r.URL.Path, rolesText(auth.RolesFor(action))))
	}
	if err := id.Need(action); err != nil {
		return err
	}
	if len(r.Header.Values("X-Actor")) > 0 {
		// Once read by the unit import; now never, on any write, rather
		// than silently ignored.
		return &paramError{"X-Actor", "X-Actor is not read: who writes is the credential's identity (Authorization), never a header; leave it out"}
	}
	if err := s.writeRates.allow(id.Actor, s.opts.WriteRate, s.opts.WriteBurst); err != nil {
		markUnaudited(r) // a runaway client's refusals are counted, not logged one by one
		return err
	}
	rec := recordOf(r)
	ctx := data.WithActor(r.Context(), id.Actor)
	ctx = data.WithGuard(ctx, func(units []string) error {
		if rec != nil {
			rec.add(units)
		}
		return id.Need(action, units...)
	})
	return h(w, r.WithContext(ctx))
}

// need checks, in a handler, that the request's identity may do action on
// units (for what a handler knows before the store: a report's grid, the
// codes of an import), recording them for the audit log.
func need(r *http.Request, action auth.Action, units ...string) error {
	if rec := recordOf(r); rec != nil {
		rec.add(units)
	}
	id := identityOf(r)
	if id == nil {
		return unauthorized(auth.Missing, "this request needs a credential")
	}
	return id.Need(action, units...)
}

func rolesText(roles []auth.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return joinOr(s)
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " or " + s[len(s)-1]
}

// audited writes an audit entry for every request of a write route once
// it is answered: who, the route, the units it touched (or would have),
// the status, and for a refusal why.
func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &writeRecord{}
		reqID := requestID()
		ctx := context.WithValue(context.WithValue(r.Context(), writeRecordKey{}, rec), requestIDKey{}, reqID)
		next.ServeHTTP(w, r.WithContext(ctx))
		if rec.unaudited {
			return
		}
		status := http.StatusOK
		if sr := recorderOf(w); sr != nil && sr.wrote {
			status = sr.status
		}
		actor := "anonymous"
		if id := identityOf(r); id != nil {
			actor = id.Actor
		}
		slices.Sort(rec.units)
		units := slices.Compact(rec.units)
		e := data.AuditEntry{Actor: actor, Method: r.Method, Route: routeTemplate(r), Path: r.URL.RequestURI(), Status: status, Units: units, RequestID: reqID}
		if len(units) > data.MaxAuditUnits {
			e.Units = units[:data.MaxAuditUnits]
			e.Detail = fmt.Sprintf("%d units touched; the first %d listed. ", len(units), data.MaxAuditUnits)
		}
		if rec.err != nil && status >= 400 {
			if p := problemFor(rec.err); p != nil {
				e.Detail += p.Detail
			} else {
				e.Detail += "internal error"
			}
			if len(e.Detail) > 1000 {
				e.Detail = e.Detail[:1000]
			}
		}
		if len(e.Path) > 2000 {
			e.Path = e.Path[:2000]
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		err := s.store.Audit(ctx, e)
		cancel()
		if err != nil && unavailableProblem(err) != nil {
			// A database switching to its standby (a failover takes
			// seconds, more with a failover manager's detection): the
			// entry of a write that may have committed is retried for up
			// to auditRetryFor after the answer (the response ends when
			// this handler returns), by a bounded number of goroutines.
			select {
			case s.auditRetries <- struct{}{}:
				go func() {
					defer func() { <-s.auditRetries }()
					ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditRetryFor)
					defer cancel()
					s.auditLater(ctx, e, actor, r, status, err)
				}()
				return
			default:
			}
		}
		if err != nil {
			s.metrics.auditFailures.Inc()
			s.log.Error("audit log write failed", "actor", actor, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
	})
}

// auditRetryLimit bounds the audit entries retried at once, auditRetryFor
// how long each is retried while the database is unavailable.
const (
	auditRetryLimit = 1024
	auditRetryFor   = 60 * time.Second
)

// auditLater retries an audit entry every 250 ms until ctx ends.
func (s *Server) auditLater(ctx context.Context, e data.AuditEntry, actor string, r *http.Request, status int, err error) {
	for err != nil && unavailableProblem(err) != nil {
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
			err = s.store.Audit(ctx, e)
			continue
		}
		break
	}
	if err != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("audit log write failed", "actor", actor, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
}

// writeRates holds a token bucket per actor: one client that runs away
// cannot starve the others' writes.
type writeRates struct {
	mu sync.Mutex
	by map[string]*rate.Limiter
}

// maxRateEntries bounds the buckets kept; past it, full ones are dropped.
const maxRateEntries = 10000

func (w *writeRates) allow(actor string, perSecond float64, burst int) error {
	if perSecond <= 0 {
		return nil
	}
	w.mu.Lock()
	if w.by == nil {
		w.by = make(map[string]*rate.Limiter)
	}
	l := w.by[actor]
	if l == nil {
		if len(w.by) >= maxRateEntries {
			for k, v := range w.by {
				if v.Tokens() >= float64(v.Burst()) {
					delete(w.by, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		w.by[actor] = l
	}
	w.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return &Problem{Type: probRateLimited, Title: "Too many writes", Status: http.StatusTooManyRequests,
			Detail:     fmt.Sprintf("%s sends more than %g writes a second (burst %d); slow down", actor, perSecond, burst),
			RetryAfter: time.Duration(math.Max(float64(d), float64(time.Second)))}
	}
	return nil
}
