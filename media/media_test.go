package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
)

func TestSniff(t *testing.T) {
	mp4 := append([]byte{0, 0, 0, 24}, []byte("ftypisom\x00\x00\x02\x00isommp41")...)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"jpeg", sampleJPEG(binary.BigEndian, 22.5, 114.2), JPEG},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), PNG},
		{"mp4", mp4, MP4},
		{"mp4 box larger than file", append([]byte{0, 0, 1, 0}, []byte("ftypisom\x00\x00\x02\x00")...), ""},
		{"text named .jpg", []byte("hello, this is not a photo"), ""},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ""},
		{"empty", nil, ""},
		{"jpeg SOI alone", []byte{0xFF, 0xD8}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sniff(tc.b)
			if got != tc.want || (tc.want == "") != errors.Is(err, ErrUnknownType) {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestExifGPS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        []byte
		lon, lat float64
		err      error
	}{
		{"big endian NE", sampleJPEG(binary.BigEndian, 22.5567, 114.2371), 114.2371, 22.5567, nil},
		{"little endian SW", sampleJPEG(binary.LittleEndian, -33.8688, -151.2093), -151.2093, -33.8688, nil},
		{"no exif", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9}, 0, 0, ErrNoGPS},
		{"null island", sampleJPEG(binary.BigEndian, 0, 0), 0, 0, ErrNoGPS},
		{"png", []byte("\x89PNG\r\n\x1a\n"), 0, 0, ErrNoGPS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ExifGPS(tc.b)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (math.Abs(g.Lon-tc.lon) > 1e-6 || math.Abs(g.Lat-tc.lat) > 1e-6) {
				t.Fatalf("got %v, want lon %v lat %v", g, tc.lon, tc.lat)
			}
		})
	}
}

// FuzzExifGPS: no input panics, and a position read is in range.
func FuzzExifGPS(f *testing.F) {
	f.Add(sampleJPEG(binary.BigEndian, 22.5, 114.2))
	f.Add(sampleJPEG(binary.LittleEndian, -10, -20))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0, 8, 'E', 'x', 'i', 'f', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ExifGPS(b)
		if err == nil && (math.Abs(g.Lat) > 90 || math.Abs(g.Lon) > 180) {
			t.Fatalf("out of range: %v", g)
		}
		_, _ = Sniff(b)
	})
}

func TestFSStorage(t *testing.T) {
	ctx := context.Background()
	fs, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("some bytes")
	sum, created, err := fs.Put(ctx, b)
	if err != nil || !created || sum != Sum(b) {
		t.Fatalf("Put = %s %v %v", sum, created, err)
	}
	if _, created, err := fs.Put(ctx, b); err != nil || created {
		t.Fatalf("second Put: created %v, err %v", created, err)
	}
	rc, info, err := fs.Get(ctx, sum)
	if err != nil || info.Size != int64(len(b)) {
		t.Fatalf("Get: %v %v", info, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, b) {
		t.Fatalf("read %q", got)
	}
	if err := fs.Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{sum, "../../etc/passwd", "AB"} {
		if _, err := fs.Stat(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Stat(%q) after delete: %v", s, err)
		}
	}
}
