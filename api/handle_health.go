package api

import (
	"context"
	"net/http"
	"time"
)

// healthz: GET /healthz, the process is up.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, ctJSON, map[string]string{"status": "ok"})
	return nil
}

// readyz: GET /readyz, the database answers and the locator is built.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		// The error names the database's host, port, user and name: the
		// log keeps it, the answer does not.
		s.log.Warn("readyz: database does not answer", "err", err)
		return &Problem{Type: probUnavailable, Title: "Database unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the database does not answer within 2 s", RetryAfter: unavailableRetryAfter}
	}
	st := s.locator.Load()
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"status": "ready", "database": "ok",
		"locator": map[string]any{"units": st.Len(), "built": st.built.UTC().Format(time.RFC3339)}})
	return nil
}
