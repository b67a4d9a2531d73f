package api

import "net/http"

func (s *Server) importObjects(w http.ResponseWriter, r *http.Request) {}
