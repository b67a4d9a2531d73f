package api

import (
	"context"
	"net/http"
	"time"

	"gridmap/auth"
	"gridmap/data"
)

// replicaReads routes a request's reads when the store has a read replica
// (GRIDMAP_READ_URL). A write route reads on the primary what it is about
// to change, and afterwards notes the primary's WAL position for its
// credential; that credential's later reads on this server then wait for
// the replica to replay it, or go to the primary (read-your-writes, per
// credential and per server: docs/design-notes.md, Failover and read
// replicas).
func (s *Server) replicaReads(next http.Handler) http.Handler {
	if !s.store.HasReplica() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var writer string
		if id, _ := r.Context().Value(identityKey{}).(*auth.Identity); id != nil {
			writer = id.Actor
		}
		if !isWriteRoute(r) {
			next.ServeHTTP(w, r.WithContext(s.store.ReadFor(r.Context(), writer)))
			return
		}
		next.ServeHTTP(w, r.WithContext(data.OnPrimary(r.Context())))
		// Noted whatever the answer: a write that failed on its way back
		// (a 503 as the primary went) may still have committed. The
		// request's context may be done; the note has its own second.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
		defer cancel()
		s.store.NoteWrite(ctx, writer)
	})
}
