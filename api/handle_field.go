package api

import "github.com/gorilla/mux"

// fieldRoutes are the routes of field work (issue 16): attachments of
// events, patrols; their contract is api/openapi/field.yaml.
func (s *Server) fieldRoutes(r *mux.Router) {
	s.attachmentRoutes(r)
	s.patrolRoutes(r)
}
