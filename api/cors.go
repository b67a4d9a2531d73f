package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"
)

// CORS for web apps of other origins (Options.CORSOrigins). Credentials
// travel in the Authorization header, never in cookies, so no
// Access-Control-Allow-Credentials: a page of an allowed origin must hold
// its own token. Preflights are answered here, before the router and
// authenticate, since a browser sends them without the credential.

// corsMethods are the methods a cross-origin page may use.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete}

// corsHeaders are the request headers it may send.
var corsHeaders = []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "Last-Event-ID", "Accept"}

// corsExposed are the response headers its script may read.
var corsExposed = []string{"ETag", "Location", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate", "Link"}

// corsMaxAge is how long a browser may keep a preflight's answer.
const corsMaxAge = 600

// CheckCORSOrigins checks origins for Options.CORSOrigins: each "*" (any
// origin, only when given explicitly) or a serialized origin such as
// https://ops.city.example or http://localhost:3000 (scheme, host and
// port, no path, no wildcard).
func CheckCORSOrigins(origins []string) error {
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.ContainsAny(o, "* ") {
			return fmt.Errorf("CORS origin %q: want \"*\" or scheme://host[:port] such as https://ops.city.example", o)
		}
	}
	return nil
}

// withCORS wraps h with the CORS of origins (nil: h itself).
func withCORS(origins []string, h http.Handler) http.Handler {
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   corsMethods,
		AllowedHeaders:   corsHeaders,
		ExposedHeaders:   corsExposed,
		MaxAge:           corsMaxAge,
		AllowCredentials: false,
	}).Handler(h)
}
