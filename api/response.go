package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Media types of the answers.
const (
	ctJSON    = "application/json"
	ctGeoJSON = "application/geo+json"
)

// writeJSON answers v as JSON of media type ctype (ctJSON, ctGeoJSON),
// with HTML characters left as they are.
func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// listed is a handler that answers a whole store list as {"member": […]}.
func listed[T any](member string, list func(context.Context) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := list(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ctJSON, map[string]any{member: v})
		return nil
	}
}

// featurePage is a page of a list as a GeoJSON FeatureCollection, with the
// members of OGC API Features: numberReturned, and a link to the next page.
type featurePage[F any] struct {
	Type           string `json:"type"`
	Features       []F    `json:"features"`
	NumberReturned int    `json:"numberReturned"`
	Links          []link `json:"links,omitempty"`
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Type string `json:"type,omitempty"`
}

// writePage answers rows as a featurePage; next is the cursor of the page
// after this one, empty when there is none.
func writePage[T, F any](w http.ResponseWriter, r *http.Request, rows []T, feature func(T) F, next string) {
	fc := featurePage[F]{Type: "FeatureCollection", Features: make([]F, len(rows)), NumberReturned: len(rows), Links: nextLink(r, next)}
	for i, row := range rows {
		fc.Features[i] = feature(row)
	}
	writeJSON(w, http.StatusOK, ctGeoJSON, fc)
}

// nextLink is the link to the page after this one (the request with its
// cursor replaced), or none when cursor is empty.
func nextLink(r *http.Request, cursor string) []link {
	if cursor == "" {
		return nil
	}
	next := *r.URL
	q := next.Query()
	q.Set("cursor", cursor)
	next.RawQuery = q.Encode()
	return []link{{Rel: "next", Href: next.RequestURI(), Type: ctGeoJSON}}
}

// acceptsEncoding reads an Accept-Encoding header (RFC 9110 §12.5.3): the
// coding named with a non-zero weight (gzip also as x-gzip), or, when it is
// not named, * with a non-zero weight.
func acceptsEncoding(header, coding string) bool {
	codingQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "x-gzip" {
			name = "gzip"
		}
		if name != coding && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if name == "*" {
			starQ = q
		} else {
			codingQ = max(codingQ, q)
		}
	}
	if codingQ >= 0 {
		return codingQ > 0
	}
	return starQ > 0
}

// createdOr is 201 for a write that created its resource, 200 otherwise.
func createdOr(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
