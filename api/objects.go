package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

// objectRoutes registers the managed-object API: the class catalogue,
// single objects, spatial queries, statistics and bulk import.
func (s *Server) objectRoutes(r *mux.Router) {
	r.HandleFunc("/v1/objects:import", s.importObjects).Methods(http.MethodPost)
}
