package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/media"
)

// upload posts raw bytes as an attachment of an event.
func (e *apiEnv) upload(path string, body []byte, ctype string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	e.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

type attachmentReply struct {
	ID        int64      `json:"id"`
	SHA256    string     `json:"sha256"`
	MediaType string     `json:"media_type"`
	Size      int64      `json:"size_bytes"`
	GPS       *[]float64 `json:"gps"`
	DistanceM *float64   `json:"distance_m"`
	Far       bool       `json:"far"`
	URL       string     `json:"url"`
}

// TestAttachments: types from bytes, the EXIF position against the
// event's (near, far, none), content addressing, ETag, and every refusal
// leaving neither a row nor a file.
func TestAttachments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{AttachmentDir: dir, MaxAttachmentBytes: 4096})
	g := evGridPoints(t, e.store)[0]
	ev := e.reportEvent(evReport("0102", g.lon, g.lat))
	path := "/v1/events/" + ev.ID + "/attachments"

	near := media.SampleJPEG(g.lon+0.0005, g.lat) // ~50 m east
	far := media.SampleJPEG(g.lon+0.01, g.lat)    // ~1 km east
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")
	mp4 := append([]byte{0, 0, 0, 24}, []byte("ftypisom\x00\x00\x02\x00isommp41\x00\x00\x00\x08free")...)
	for _, tc := range []struct {
		name    string
		body    []byte
		ctype   string
		mt      string
		far     bool
		withGPS bool
	}{
		{"photo near", near, "image/jpeg", media.JPEG, false, true},
		{"photo far", far, "application/octet-stream", media.JPEG, true, true},
		{"png named as jpeg", png, "image/jpeg", media.PNG, false, false},
		{"mp4", mp4, "video/mp4", media.MP4, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.upload(path+"?name=IMG_0001.jpg", tc.body, tc.ctype)
			var a attachmentReply
			expect(t, r, http.StatusCreated, ctJSON, &a)
			if a.MediaType != tc.mt || a.Far != tc.far || (a.GPS != nil) != tc.withGPS || a.SHA256 != media.Sum(tc.body) || a.Size != int64(len(tc.body)) {
				t.Fatalf("attachment %+v", a)
			}
			if tc.withGPS && (a.DistanceM == nil || (*a.DistanceM > 200) != tc.far) {
				t.Fatalf("distance %v, far %v", a.DistanceM, a.Far)
			}
			if _, err := os.Stat(filepath.Join(dir, a.SHA256[:2], a.SHA256[2:4], a.SHA256)); err != nil {
				t.Fatalf("blob: %v", err)
			}
			blob := e.get(a.URL)
			if blob.Status != http.StatusOK || !bytes.Equal(blob.Body, tc.body) || blob.Header.Get("Content-Type") != tc.mt {
				t.Fatalf("GET %s: %d %s", a.URL, blob.Status, blob.Header.Get("Content-Type"))
			}
			tag := etagOf(t, blob)
			if tag != `"`+a.SHA256+`"` {
				t.Fatalf("ETag %s", tag)
			}
			expectNotModified(t, e.with(http.MethodGet, a.URL, "", "If-None-Match", tag), tag)
		})
	}
	// The same bytes again: the attachment there is.
	var again attachmentReply
	expect(t, e.upload(path, near, "image/jpeg"), http.StatusOK, ctJSON, &again)
	if again.SHA256 != media.Sum(near) {
		t.Fatalf("again: %+v", again)
	}
	var list struct {
		Attachments []attachmentReply `json:"attachments"`
		Far         int               `json:"far"`
	}
	expect(t, e.get(path), http.StatusOK, ctJSON, &list)
	if len(list.Attachments) != 4 || list.Far != 1 {
		t.Fatalf("list: %d attachments, %d far", len(list.Attachments), list.Far)
	}
	// In GCJ-02 the photo's position moves with the event's.
	expect(t, e.get(path+"?crs=gcj02"), http.StatusOK, ctJSON, &list)
	if gps := *list.Attachments[0].GPS; gps[0] == g.lon+0.0005 {
		t.Fatalf("gps not converted: %v", gps)
	}

	rows := countRows(t, e.store, "attachments")
	files := countFiles(t, dir)
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		typ, param string
	}{
		{"text named .jpg", path + "?name=a.jpg", []byte("not a photo at all"), http.StatusUnsupportedMediaType, "https://gridmap.dev/problems/unsupported-media-type", ""},
		{"empty", path, nil, http.StatusBadRequest, typeBadRequest, ""},
		{"too large", path, append(media.SampleJPEG(g.lon, g.lat), make([]byte, 5000)...), http.StatusRequestEntityTooLarge, typeTooLarge, ""},
		{"no such event", "/v1/events/44030820260101999999/attachments", near, http.StatusNotFound, typeNotFound, ""},
		{"bad event code", "/v1/events/12/attachments", near, http.StatusBadRequest, typeBadParam, "code"},
		{"name with control", path + "?name=a%0Ab", near, http.StatusBadRequest, typeBadParam, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, e.upload(tc.path, tc.body, "image/jpeg"), tc.status, tc.typ, tc.param)
		})
	}
	if n := countRows(t, e.store, "attachments"); n != rows {
		t.Errorf("refusals wrote %d rows", n-rows)
	}
	if n := countFiles(t, dir); n != files {
		t.Errorf("refusals left %d files", n-files)
	}
	expectProblem(t, e.get("/v1/attachments/"+strings.Repeat("0", 64)), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/attachments/nothex"), http.StatusBadRequest, typeBadParam, "sha256")
}

// A row that cannot be written takes its new blob with it.
func TestAttachmentRollbackRemovesBlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{AttachmentDir: dir})
	g := evGridPoints(t, e.store)[0]
	ev := e.reportEvent(evReport("0102", g.lon, g.lat))
	// A check the insert breaks, as a failure after the blob is put.
	if _, err := e.store.Pool.Exec(context.Background(), `ALTER TABLE attachments ADD CONSTRAINT no_png CHECK (media_type <> 'image/png')`); err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	r := e.upload("/v1/events/"+ev.ID+"/attachments", png, "image/png")
	if r.Status < 400 {
		t.Fatalf("upload: %s", r)
	}
	if n := countFiles(t, dir); n != 0 {
		t.Fatalf("%d files left after a failed insert", n)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
