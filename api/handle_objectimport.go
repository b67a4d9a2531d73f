package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"gridmap/data"
	"gridmap/geo"
)

// DefaultMaxObjectImportBytes caps a streamed object import (a 1.6 M-row
// CSV is about 150 MB).
const DefaultMaxObjectImportBytes = 2 << 30

// importObjects: POST /v1/objects:import?format=&on_error=abort|skip
// The body is streamed into the store; nothing is held in memory. The
// format comes from ?format= or the Content-Type: application/geo+json
// (FeatureCollection), application/geo+json-seq or application/x-ndjson
// (one Feature per line), text/csv (lon and lat columns).
func (s *Server) importObjects(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := q.Get("format")
	if f == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch mt {
		case "application/geo+json", "application/json":
			f = "geojson"
		case "application/geo+json-seq", "application/x-ndjson", "application/jsonl":
			f = "ndjson"
		case "text/csv":
			f = "csv"
		default:
			return &paramError{"format", fmt.Sprintf("Content-Type %q: send application/geo+json, application/geo+json-seq, application/x-ndjson or text/csv, or give ?format=", mt)}
		}
	}
	format, err := geo.ParseFormat(f)
	if err != nil {
		return &paramError{"format", err.Error()}
	}
	onError := data.OnError(q.Get("on_error"))
	if onError == "" {
		onError = data.OnErrorAbort
	}
	if onError != data.OnErrorAbort && onError != data.OnErrorSkip {
		return &paramError{"on_error", fmt.Sprintf("on_error=%q: use abort or skip", onError)}
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxObjectImportBytes)
	stream, err := geo.NewStream(body, format)
	if err != nil {
		return s.objectImportFailed(err, true)
	}
	rep, err := s.store.ImportObjects(r.Context(), stream, data.ObjectImportOptions{OnError: onError})
	if err != nil {
		_, fatal := errors.AsType[*data.FatalImportError](err)
		return s.objectImportFailed(err, fatal)
	}
	s.metrics.objectRows(rep)
	if rep.Inserted+rep.Updated > 0 {
		s.syncTiles(r.Context())
	}
	if rep.Aborted {
		return &Problem{Type: probViolations, Title: "Rejected rows", Status: http.StatusUnprocessableEntity,
			Detail:     fmt.Sprintf("%d of %d rows were rejected; nothing was written (on_error=skip leaves them out instead)", rep.Rejected, rep.Rows),
			Extensions: map[string]any{"errors": rep.Errors, "rows": rep.Rows, "rejected": rep.Rejected}}
	}
	writeJSON(w, createdOr(rep.Inserted > 0), ctJSON, rep)
	return nil
}

// objectImportFailed is the error of an import that stopped: a body over
// the limit (413), a document that cannot be read (400: malformed,
// truncated, a CSV without lon and lat), or a failure of ours (500).
// Nothing was written.
func (s *Server) objectImportFailed(err error, clientFault bool) error {
	switch {
	case errors.As(err, new(*http.MaxBytesError)):
		return tooLarge("an object import", s.opts.MaxObjectImportBytes, "; nothing was written")
	case clientFault:
		return badRequest("Unreadable object file", err.Error()+"; nothing was written")
	}
	return err
}
