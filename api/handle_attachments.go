package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/media"
)

// Defaults of attachments (Options).
const (
	DefaultAttachmentDir      = ".data/attachments"
	DefaultMaxAttachmentBytes = 32 << 20
	DefaultPhotoFarMeters     = 200
	maxAttachmentName         = 200
)

// probUnsupportedMedia: an upload that is none of the types taken (415).
const probUnsupportedMedia = "https://gridmap.dev/problems/unsupported-media-type"

func (s *Server) attachmentRoutes(r *mux.Router) {
	s.handleWrite(r, "/v1/events/{code}/attachments", auth.Report, s.addAttachment, http.MethodPost)
	s.handle(r, "/v1/events/{code}/attachments", s.listAttachments, http.MethodGet)
	s.handle(r, "/v1/attachments/{sha256}", s.getAttachmentBlob, http.MethodGet)
}

// attachmentOut is an attachment as answered: its position in crs and the
// URL of its bytes.
type attachmentOut struct {
	data.Attachment
	URL string `json:"url"`
}

func attachmentIn(crs geo.CRS, a data.Attachment) attachmentOut {
	if a.GPS != nil {
		lon, lat := geo.FromWGS84(crs, a.GPS[0], a.GPS[1])
		a.GPS = &[2]float64{lon, lat}
	}
	return attachmentOut{Attachment: a, URL: "/v1/attachments/" + a.SHA256}
}

// addAttachment: POST /v1/events/{code}/attachments?name=&crs=. The body is
// the file itself; its type is read from its bytes (the Content-Type and
// the name are not trusted). A JPEG's EXIF position is compared with the
// event's: farther than Options.PhotoFarMeters flags the attachment (far).
func (s *Server) addAttachment(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if utf8.RuneCountInString(name) > maxAttachmentName || !utf8.ValidString(name) || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return &paramError{"name", fmt.Sprintf("name: at most %d printable characters (the file's name, for people; its type comes from its bytes)", maxAttachmentName)}
	}
	ev, err := s.store.GetEvent(r.Context(), code, false)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	if err := need(r, auth.Report, ev.GridCode); err != nil {
		return err
	}
	raw, err := readBodyMax(w, r, s.opts.MaxAttachmentBytes)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge("An attachment", s.opts.MaxAttachmentBytes, " (--max-attachment-bytes)")
		}
		return err
	}
	if len(raw) == 0 {
		return badRequest("Empty attachment", "the body is empty: send the file's bytes (a JPEG, PNG or MP4) as the body")
	}
	mt, err := media.Sniff(raw)
	if err != nil {
		return &Problem{Type: probUnsupportedMedia, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
			Detail: "the body is not a JPEG, PNG or MP4 file (read from its first bytes; the name and Content-Type are not trusted)"}
	}
	na := data.NewAttachment{Event: code, MediaType: mt, Name: name, Bytes: raw, FarM: s.opts.PhotoFarMeters, Actor: identityOf(r).Actor}
	if mt == media.JPEG {
		if g, err := media.ExifGPS(raw); err == nil {
			na.GPS = &g
		}
	}
	a, existed, err := s.store.AddAttachment(r.Context(), s.attachments, na)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	recordOf(r).add([]string{ev.GridCode})
	w.Header().Set("Location", "/v1/attachments/"+a.SHA256)
	setContentCRS(w, crs)
	writeJSON(w, createdOr(!existed), ctJSON, attachmentIn(crs, *a))
	return nil
}

// listAttachments: GET /v1/events/{code}/attachments?crs=
func (s *Server) listAttachments(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	ev, err := s.store.GetEvent(r.Context(), code, false)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	if err := needRead(r, ev.GridCode); err != nil {
		return err
	}
	list, err := s.store.Attachments(r.Context(), code)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	out := make([]attachmentOut, len(list))
	far := 0
	for i, a := range list {
		out[i] = attachmentIn(crs, a)
		if a.Far {
			far++
		}
	}
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"event": code, "attachments": out, "far": far})
	return nil
}

// getAttachmentBlob: GET /v1/attachments/{sha256}. The hash is the ETag
// (the bytes never change under it), so If-None-Match answers 304 and the
// answer may be kept for good by the caller (private: it is access
// checked). Range requests are served (videos).
func (s *Server) getAttachmentBlob(w http.ResponseWriter, r *http.Request) error {
	sum := mux.Vars(r)["sha256"]
	if !media.ValidSum(sum) {
		return &paramError{"sha256", fmt.Sprintf("sha256 %q: want the 64 lowercase hex digits of the file's SHA-256", geo.Excerpt(sum, geo.MaxExcerpt))}
	}
	mt, grids, err := s.store.AttachmentBlob(r.Context(), sum)
	if err != nil {
		return notFoundAs(err, "no attachment with sha256 %s", sum)
	}
	var readErr error
	for _, g := range grids {
		if readErr = needRead(r, g); readErr == nil {
			break
		}
	}
	if readErr != nil {
		return readErr
	}
	etag := `"` + sum + `"`
	if notModified(w, r, etag) {
		return nil
	}
	f, info, err := s.attachments.Get(r.Context(), sum)
	if err != nil {
		if errors.Is(err, media.ErrNotFound) {
			return fmt.Errorf("attachment %s has a row but no blob in storage", sum) // a 500: storage lost a file
		}
		return err
	}
	defer f.Close()
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", info.ModTime, f)
	return nil
}
