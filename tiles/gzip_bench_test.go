package tiles_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"gridmap/data/pgtest"
	"gridmap/tiles"
)

// BenchmarkGzipUnitTiles gzips 300 z14 unit tiles of the full demo city
// with the standard library's deflate and klauspost's, at the default
// level and the fastest: what a cold tile pays after it is drawn
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
	}{{"std-default", sd}, {"std-fastest", s1}, {"klauspost-default", kd}, {"klauspost-fastest", k1}} {
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
