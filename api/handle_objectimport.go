package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"time"

	"gridmap/data"
	"gridmap/geo"
)

// DefaultMaxObjectImportBytes caps a streamed object import (a 1.6 M-row
// CSV is about 150 MB).
const DefaultMaxObjectImportBytes = 2 << 30

// DefaultBodyStallTimeout is how long an import body may send nothing
// before it is refused with a 408.
const DefaultBodyStallTimeout = 30 * time.Second

// importObjects: POST /v1/objects:import?format=&on_error=abort|skip&crs=
// The body is spooled (spoolBody), then streamed into the store; nothing
// is held in memory. The
// format comes from ?format= or the Content-Type: application/geo+json
// (FeatureCollection), application/geo+json-seq or application/x-ndjson
// (one Feature per line), text/csv (lon and lat columns). Positions are
// read in ?crs= (GeoJSON geometry and CSV lon/lat alike).
func (s *Server) importObjects(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
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
	body, err := s.spoolBody(w, r, s.opts.MaxObjectImportBytes)
	if err != nil {
		return s.objectImportFailed(err, false)
	}
	defer body.Close()
	stream, err := geo.NewStream(body, format)
	if err != nil {
		return s.objectImportFailed(err, true)
	}
	if crs != geo.WGS84 {
		stream = crsStream{stream, crs}
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

// spoolMemBytes is the part of a spooled body kept in memory; the rest
// goes to a temporary file.
const spoolMemBytes = 4 << 20

// spooledBody is a request body read whole: in memory, or in a temporary
// file that Close removes.
type spooledBody struct {
	io.Reader
	file *os.File
}

func (b *spooledBody) Close() error {
	if b.file == nil {
		return nil
	}
	b.file.Close()
	return os.Remove(b.file.Name())
}

// spoolBody reads the whole body of r (at most limit bytes: beyond it an
// *http.MaxBytesError) before the handler begins a transaction: a client
// that trickles its body in would otherwise hold the transaction's locks,
// and the writers and imports queued behind them, for as long as it likes.
// A body that sends nothing for BodyStallTimeout is refused with a 408.
func (s *Server) spoolBody(w http.ResponseWriter, r *http.Request, limit int64) (*spooledBody, error) {
	stall := s.opts.BodyStallTimeout
	if stall <= 0 {
		stall = DefaultBodyStallTimeout
	}
	rc := http.NewResponseController(w)
	in := http.MaxBytesReader(w, r.Body, limit)
	var mem bytes.Buffer
	var file *os.File
	fail := func(err error) (*spooledBody, error) {
		if file != nil {
			file.Close()
			os.Remove(file.Name())
		}
		return nil, err
	}
	buf := make([]byte, 64<<10)
	for {
		// A deadline per read, not per body: a large import on a slow
		// link is fine as long as it keeps coming.
		if err := rc.SetReadDeadline(time.Now().Add(stall)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return fail(err)
		}
		n, err := in.Read(buf)
		if n > 0 {
			if file == nil && mem.Len()+n > spoolMemBytes {
				if file, err = os.CreateTemp("", "gridmap-import-*"); err != nil {
					return fail(fmt.Errorf("spool import body: %w", err))
				}
				if _, err := file.Write(mem.Bytes()); err != nil {
					return fail(fmt.Errorf("spool import body: %w", err))
				}
				mem = bytes.Buffer{}
			}
			var werr error
			if file != nil {
				_, werr = file.Write(buf[:n])
			} else {
				mem.Write(buf[:n])
			}
			if werr != nil {
				return fail(fmt.Errorf("spool import body: %w", werr))
			}
		}
		if err == io.EOF {
			// No deadline of ours may cut the kept-alive connection. On
			// an error it stays: net/http then gives up reading the rest
			// of the body at once, answers, and closes.
			if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return fail(err)
			}
			break
		}
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return fail(&Problem{Type: probBadRequest, Title: "Body timed out", Status: http.StatusRequestTimeout,
					Detail: fmt.Sprintf("the body sent nothing for %s; nothing was written", stall)})
			}
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return fail(err)
			}
			return fail(badRequest("Unreadable body", err.Error()+"; nothing was written"))
		}
	}
	if file == nil {
		return &spooledBody{Reader: &mem}, nil
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("spool import body: %w", err))
	}
	return &spooledBody{Reader: bufio.NewReaderSize(file, 1<<20), file: file}, nil
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
