package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem detail, the body of every error.
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
}

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
	probBadRequest   = "https://gridmap.dev/problems/bad-request"
	probBadParameter = "https://gridmap.dev/problems/bad-parameter"
	probNotFound     = "https://gridmap.dev/problems/not-found"
	probTooLarge     = "https://gridmap.dev/problems/too-large"
	probViolations   = "https://gridmap.dev/problems/topology-violations"
	probUnavailable  = "https://gridmap.dev/problems/unavailable"
	probInternal     = "https://gridmap.dev/problems/internal"
	probNotAllowed   = "https://gridmap.dev/problems/method-not-allowed"
	probStale        = "https://gridmap.dev/problems/stale" // If-Match names an old version: 412
)

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

func badParam(w http.ResponseWriter, r *http.Request, param, detail string) {
	writeProblem(w, r, Problem{Type: probBadParameter, Title: "Bad parameter", Status: http.StatusBadRequest, Param: param, Detail: detail})
}

func notFound(w http.ResponseWriter, r *http.Request, detail string) {
	writeProblem(w, r, Problem{Type: probNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: detail})
}

func internalError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, Problem{Type: probInternal, Title: "Internal error", Status: http.StatusInternalServerError, Detail: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
