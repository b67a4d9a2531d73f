package api

import (
	"strings"

	"github.com/gorilla/mux"
)

// Routes lists the router's path templates and their methods, for tests
// that must cover every route.
func (s *Server) Routes() map[string][]string {
	out := map[string][]string{}
	_ = s.router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		ms, _ := route.GetMethods()
		out[tpl] = append(out[tpl], ms...)
		return nil
	})
	return out
}

// WriteRoutes lists the write routes (those registered by handleWrite) as
// "METHOD template".
func (s *Server) WriteRoutes() []string {
	var out []string
	_ = s.router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if name := route.GetName(); strings.HasPrefix(name, writeRoutePrefix) {
			out = append(out, strings.TrimPrefix(name, writeRoutePrefix))
		}
		return nil
	})
	return out
}

// TokensFollowed says whether the token cache is complete and current (a
// listener follows the tokens' notices).
func (s *Server) TokensFollowed() bool { return s.tokens.following.Load() }
