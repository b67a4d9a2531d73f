package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// instrument counts and times every request. It wraps the router, so the
// route template is learnt from the router's middleware (routeLabel) once
// a route matched; requests no route matched are "unmatched".
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, route: routeUnmatched}
		next.ServeHTTP(rec, r)
		status := rec.status
		if !rec.wrote {
			status = http.StatusOK // what net/http answers for a handler that wrote nothing
		}
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(rec.route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(rec.route, method).Observe(time.Since(start).Seconds())
	})
}

// routeLabel is the router middleware (it runs only for a matched route)
// that tells instrument the route's template.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := recorderOf(w); rec != nil {
			if route := mux.CurrentRoute(r); route != nil {
				if tmpl, err := route.GetPathTemplate(); err == nil {
					rec.route = tmpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// methodLabel bounds the method label: a client may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusRecorder remembers the status a handler answered with. It keeps
// http.Flusher working and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	route  string
}

func (w *statusRecorder) WriteHeader(code int) {
	// 1xx (but 101 Switching Protocols) are informational: the final
	// status comes later.
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data (and the header, 200 unless written).
func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.status, w.wrote = http.StatusOK, true
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorderOf finds the statusRecorder under w, through wrappers that
// unwrap.
func recorderOf(w http.ResponseWriter) *statusRecorder {
	for w != nil {
		if rec, ok := w.(*statusRecorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// countImport counts the requests of an import handler by their answer
// (metrics.imported), so it answers h's error itself first; a panic counts
// as failed.
func (s *Server) countImport(kind string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		defer s.metrics.imported(w, kind)
		if err := h(w, r); err != nil {
			// The audit log's entry says why it was refused (the error
			// goes no further up than here).
			if rec := recordOf(r); rec != nil {
				rec.err = err
			}
			s.writeError(w, r, err)
		}
		return nil
	}
}
