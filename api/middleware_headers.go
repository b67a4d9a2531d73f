package api

import "net/http"

// securityHeaders sets what a browser needs to treat every answer as what
// its Content-Type says (no sniffing a JSON or tile body into a script)
// and to send no Referer from the pages: a page URL could carry a query
// worth keeping within the city's network.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
