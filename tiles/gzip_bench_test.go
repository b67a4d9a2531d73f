package tiles_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"gridmap/data/pgtest"
	"gridmap/tiles"
	"gridmap/tiles/fixedgz"
)

// BenchmarkGzipUnitTiles gzips 300 z14 unit tiles of the full demo city
// with the standard library's deflate and klauspost's, at the default
// level and the fastest, and with fixed Huffman codes (tiles/fixedgz,
// what NewEntry uses): what a cold tile pays after it is drawn
// (docs/benchmarks.md, unit tiles from memory).
func BenchmarkGzipUnitTiles(b *testing.B) {
	store := pgtest.NewFullDemo(b)
	units := currentUnits(b, store)
	mem := tiles.NewMemUnits(units)
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	var mvts [][]byte
	for _, k := range unitTiles(l, units, 14)[:300] {
		mvts = append(mvts, mem.RenderUnits(l, k.Z, k.X, k.Y))
	}
	type writer interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	var buf bytes.Buffer
	sd, _ := stdgzip.NewWriterLevel(&buf, stdgzip.DefaultCompression)
	s1, _ := stdgzip.NewWriterLevel(&buf, stdgzip.BestSpeed)
	kd, _ := kgzip.NewWriterLevel(&buf, kgzip.DefaultCompression)
	k1, _ := kgzip.NewWriterLevel(&buf, kgzip.BestSpeed)
	for _, c := range []struct {
		name string
		w    writer
	}{{"std-default", sd}, {"std-fastest", s1}, {"klauspost-default", kd}, {"klauspost-fastest", k1}, {"fixedgz", &fixedWriter{w: &buf}}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for i := 0; b.Loop(); i++ {
				buf.Reset()
				c.w.Reset(&buf)
				if _, err := c.w.Write(mvts[i%len(mvts)]); err != nil {
					b.Fatal(err)
				}
				if err := c.w.Close(); err != nil {
					b.Fatal(err)
				}
				n += buf.Len()
			}
			b.ReportMetric(float64(n)/float64(b.N), "B/tile")
		})
	}
}

// fixedWriter gives fixedgz.Append the writer interface of the others.
type fixedWriter struct {
	w   *bytes.Buffer
	in  []byte
	out []byte
}

func (f *fixedWriter) Reset(io.Writer)             {}
func (f *fixedWriter) Write(p []byte) (int, error) { f.in = append(f.in[:0], p...); return len(p), nil }
func (f *fixedWriter) Close() error {
	f.out = fixedgz.Append(f.out[:0], f.in)
	_, err := f.w.Write(f.out)
	return err
}
