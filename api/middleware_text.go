package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"gridmap/geo"
)

// checkText refuses a request whose path or query holds text PostgreSQL
// cannot store or compare (a NUL) or that is not UTF-8, naming where, before
// any handler sees it: without it such a code or filter reaches a query and
// fails there as a 500.
func (s *Server) checkText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := textOfURL(r.URL); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func textOfURL(u *url.URL) error {
	for i, seg := range strings.Split(u.EscapedPath(), "/") {
		v, err := url.PathUnescape(seg)
		if err != nil {
			continue // the router answers it
		}
		if msg := geo.CheckText(v); msg != "" {
			return badParam("path", fmt.Sprintf("path segment %d %s", i, msg))
		}
	}
	for _, kv := range strings.FieldsFunc(u.RawQuery, func(c rune) bool { return c == '&' }) {
		k, v, _ := strings.Cut(kv, "=")
		// net/url would drop a pair it cannot decode, as if it were not
		// sent: a filter the client believes it gave would be ignored.
		key, err := url.QueryUnescape(k)
		if err != nil {
			return badParam("query", fmt.Sprintf("query parameter name %q is not valid percent-encoding", geo.Excerpt(k, geo.MaxExcerpt)))
		}
		if msg := geo.CheckText(key); msg != "" {
			return badParam("query", "a query parameter name "+msg)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return badParam(key, fmt.Sprintf("query parameter %s=%q is not valid percent-encoding", geo.Excerpt(key, geo.MaxExcerpt), geo.Excerpt(v, geo.MaxExcerpt)))
		}
		if msg := geo.CheckText(val); msg != "" {
			return badParam(key, fmt.Sprintf("query parameter %s %s", geo.Excerpt(key, geo.MaxExcerpt), msg))
		}
	}
	return nil
}

// headerText reads a header that is stored or compared as text: present
// but empty or blank (after net/http trims it) is an error, not "no value",
// and so is a value that is not UTF-8.
func headerText(r *http.Request, name string) (string, error) {
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return "", nil
	}
	if len(vs) > 1 {
		return "", badParam(name, fmt.Sprintf("%s is sent %d times; send it once", name, len(vs)))
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return "", badParam(name, fmt.Sprintf("%s is empty: leave it out or give it a value", name))
	}
	if msg := geo.CheckText(v); msg != "" {
		return "", badParam(name, name+" "+msg)
	}
	return v, nil
}
