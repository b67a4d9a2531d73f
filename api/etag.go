package api

import (
	"fmt"
	"net/http"
	"strings"
)

// entityTags reads the entity-tags of an If-Match or If-None-Match header
// (RFC 9110 §13.1): a comma-separated list of "tag", W/"tag" or *, over
// any number of header lines. A malformed entry is kept as it is, so it
// matches nothing. No header (or an empty one) gives nil.
func entityTags(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.Header.Values(name) {
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			var tag string
			if q := strings.IndexByte(v, '"'); q == 0 || (q == 2 && strings.HasPrefix(v, "W/")) {
				if end := strings.IndexByte(v[q+1:], '"'); end >= 0 {
					tag, v = v[:q+1+end+1], v[q+1+end+1:]
				}
			}
			if tag == "" { // * or malformed: up to the next comma
				tag, v, _ = strings.Cut(v, ",")
				tag = strings.TrimRight(tag, " \t")
			}
			out = append(out, tag)
		}
	}
	return out
}

// noneMatch reports whether If-None-Match names etag (weak comparison, or
// *): a GET of it answers 304.
func noneMatch(r *http.Request, etag string) bool {
	for _, t := range entityTags(r, "If-None-Match") {
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// notModified answers 304 with etag when If-None-Match names it, and
// reports whether it did.
func notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	if !noneMatch(r, etag) {
		return false
	}
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusNotModified)
	return true
}

// versionETag is the ETag of a resource whose version is a counter.
func versionETag(v int) string { return fmt.Sprintf(`"%d"`, v) }

// versionPrecondition reads If-Match as one version ETag ("3"); 0 when
// absent or *. One that names no version is a 412: it cannot match.
func versionPrecondition(r *http.Request, what string) (int, error) {
	tags := entityTags(r, "If-Match")
	if len(tags) == 0 || (len(tags) == 1 && tags[0] == "*") {
		return 0, nil
	}
	if len(tags) != 1 {
		return 0, &paramError{"If-Match", "name one ETag: the version read"}
	}
	var v int
	if _, err := fmt.Sscanf(tags[0], `"%d"`, &v); err != nil || v <= 0 {
		return 0, &Problem{Type: probStale, Title: "Stale version", Status: http.StatusPreconditionFailed,
			Detail: fmt.Sprintf("If-Match %s names no version of %s; GET it for its ETag", tags[0], what)}
	}
	return v, nil
}
