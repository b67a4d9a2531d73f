package tiles

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/paulmach/orb"
	"golang.org/x/sync/singleflight"

	"gridmap/geo"
	"gridmap/tiles/fixedgz"
)

// DefaultCacheBytes bounds the tile cache unless configured otherwise.
const DefaultCacheBytes = 256 << 20

// Key names one tile of one tileset.
type Key struct {
	Layer   string
	Z, X, Y int
}

func (k Key) String() string { return fmt.Sprintf("%s/%d/%d/%d", k.Layer, k.Z, k.X, k.Y) }

// Entry is a rendered tile as the cache keeps it: gzipped once, with the
// ETag of the uncompressed bytes (so it does not depend on the compressor).
type Entry struct {
	Gzip  []byte // gzip of the MVT; nil when Empty
	ETag  string // quoted strong entity tag of the uncompressed MVT
	Empty bool   // the tile has no features (served as 204)
	Size  int    // bytes of the uncompressed MVT
	// Expires, when not zero, is when the tile stops being valid by the
	// clock alone (Rendered.Expires): from then the cache renders it again.
	Expires time.Time
}

// Expired tells whether e is past its expiry at now.
func (e *Entry) Expired(now time.Time) bool { return !e.Expires.IsZero() && !now.Before(e.Expires) }

// NewEntry gzips and tags a rendered tile.
func NewEntry(mvt []byte) (*Entry, error) {
	sum := sha256.Sum256(mvt)
	e := &Entry{ETag: `"` + hex.EncodeToString(sum[:12]) + `"`, Empty: len(mvt) == 0, Size: len(mvt)}
	if e.Empty {
		return e, nil
	}
	// A tile drawn on demand (cache off or missed) is compressed on the
	// request's time. For a few kilobytes a deflater building Huffman
	// trees spends three times as long as fixed codes take, for 5–10 %
	// fewer bytes (tiles/fixedgz, docs/design-notes.md); past tens of
	// kilobytes the trees cost little beside the data and save a quarter of
	// the bytes (the z6 tile of every grid: 441 against 589 KB).
	if len(mvt) < fixedCodesBelow {
		e.Gzip = fixedgz.Append(make([]byte, 0, len(mvt)/2+32), mvt)
		return e, nil
	}
	var b bytes.Buffer
	b.Grow(len(mvt)/3 + 64)
	// Pooled: a new writer allocates ~800 KB of compressor state.
	zw := gzipWriters.Get().(*kgzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&b)
	if _, err := zw.Write(mvt); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	e.Gzip = b.Bytes()
	return e, nil
}

// fixedCodesBelow is the size of MVT under which NewEntry compresses with
// fixed Huffman codes rather than klauspost's deflate at its default level.
const fixedCodesBelow = 32 << 10

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := kgzip.NewWriterLevel(io.Discard, kgzip.DefaultCompression)
	return zw
}}

// MVT returns the uncompressed tile (for clients that do not take gzip).
func (e *Entry) MVT() ([]byte, error) {
	if e.Empty {
		return nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Gzip))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, e.Size)
	b := bytes.NewBuffer(out)
	if _, err := io.Copy(b, zr); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// entryOverhead approximates what an entry costs beyond its bytes: the list
// element, the map slot, the key and the Entry.
const entryOverhead = 160

func (e *Entry) cost(k Key) int64 { return int64(len(e.Gzip) + len(k.Layer) + entryOverhead) }

// CacheStats are the cache's counters.
type CacheStats struct {
	Hits, Misses, Evictions int64 // lookups answered from memory; lookups that rendered (or waited for a render); entries pushed out by the byte bound
	Invalidated             int64 // entries dropped because data under them changed
	Expired                 int64 // entries found past their expiry (counted in Misses too)
	Renders                 int64 // renders run (concurrent misses of one tile share one)
	Bytes, MaxBytes         int64 // bytes held (gzip + overhead) and the bound
	Entries                 int
}

// Cache is an LRU cache of gzipped tiles bounded in bytes. Concurrent misses
// of one tile render it once. Invalidate drops exactly the tiles whose
// buffered envelope meets a changed geometry; a render that was running
// while such a change arrived is served to its callers but not kept.
//
// An entry with an expiry (Entry.Expires: tiles that depend on the clock)
// is a miss from that moment: it is rendered again.
//
// A Cache with MaxBytes ≤ 0 keeps nothing (every lookup renders).
type Cache struct {
	// Now is the clock expiries are read by (nil: time.Now). Set it before
	// the first lookup.
	Now func() time.Time

	maxBytes int64

	mu       sync.Mutex
	bytes    int64
	lru      *list.List // of *cached, most recent first
	items    map[Key]*list.Element
	zooms    map[string]*[MaxZoom + 1]map[Key]*list.Element // per layer and zoom, for invalidation
	inflight map[Key]*flight
	stats    CacheStats

	group singleflight.Group
}

type cached struct {
	key   Key
	entry *Entry
}

type flight struct{ stale bool }

// NewCache returns a cache holding at most maxBytes.
func NewCache(maxBytes int64) *Cache {
	return &Cache{maxBytes: maxBytes, lru: list.New(), items: map[Key]*list.Element{},
		zooms: map[string]*[MaxZoom + 1]map[Key]*list.Element{}, inflight: map[Key]*flight{}}
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Bytes, s.MaxBytes, s.Entries = c.bytes, c.maxBytes, len(c.items)
	return s
}

// Has tells whether tile k is in memory, without counting a lookup.
func (c *Cache) Has(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[k]
	return ok
}

// Get returns the tile k from memory (hit) or renders it, once for all
// concurrent callers, and keeps it. render runs with ctx of the first
// caller: give it a context that outlives one client.
func (c *Cache) Get(ctx context.Context, k Key, render func(context.Context) ([]byte, error)) (e *Entry, hit bool, err error) {
	return c.GetRendered(ctx, k, func(ctx context.Context) (Rendered, error) {
		b, err := render(ctx)
		return Rendered{MVT: b}, err
	})
}

// GetRendered is Get for renders that may carry an expiry: an entry past
// it is not served but rendered again (and one rendered already expired is
// served to the callers that waited for it, not kept).
func (c *Cache) GetRendered(ctx context.Context, k Key, render func(context.Context) (Rendered, error)) (e *Entry, hit bool, err error) {
	c.mu.Lock()
	if el, ok := c.fresh(k); ok {
		c.lru.MoveToFront(el)
		c.stats.Hits++
		c.mu.Unlock()
		return el.Value.(*cached).entry, true, nil
	}
	c.stats.Misses++
	c.mu.Unlock()
	v, err, _ := c.group.Do(k.String(), func() (any, error) {
		c.mu.Lock()
		if el, ok := c.fresh(k); ok { // a flight that just ended kept it
			c.mu.Unlock()
			return el.Value.(*cached).entry, nil
		}
		f := &flight{}
		c.inflight[k] = f
		c.stats.Renders++
		c.mu.Unlock()
		t, err := render(ctx)
		var e *Entry
		if err == nil {
			e, err = NewEntry(t.MVT)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.inflight, k)
		if err != nil {
			return nil, err
		}
		e.Expires = t.Expires
		if !f.stale && !e.Expired(c.now()) {
			c.add(k, e)
		}
		return e, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*Entry), false, nil
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// fresh finds tile k in memory and drops it if it has expired. c.mu is
// held.
func (c *Cache) fresh(k Key) (*list.Element, bool) {
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	if el.Value.(*cached).entry.Expired(c.now()) {
		c.remove(el)
		c.stats.Expired++
		return nil, false
	}
	return el, true
}

// add keeps e under k and evicts from the cold end until the bound holds.
// c.mu is held.
func (c *Cache) add(k Key, e *Entry) {
	cost := e.cost(k)
	if cost > c.maxBytes {
		return
	}
	if el, ok := c.items[k]; ok {
		c.remove(el)
	}
	el := c.lru.PushFront(&cached{key: k, entry: e})
	c.items[k] = el
	zs := c.zooms[k.Layer]
	if zs == nil {
		zs = new([MaxZoom + 1]map[Key]*list.Element)
		c.zooms[k.Layer] = zs
	}
	if zs[k.Z] == nil {
		zs[k.Z] = map[Key]*list.Element{}
	}
	zs[k.Z][k] = el
	c.bytes += cost
	for c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
		c.stats.Evictions++
	}
}

// remove drops one entry. c.mu is held.
func (c *Cache) remove(el *list.Element) {
	it := el.Value.(*cached)
	c.lru.Remove(el)
	delete(c.items, it.key)
	delete(c.zooms[it.key.Layer][it.key.Z], it.key)
	c.bytes -= it.entry.cost(it.key)
}

// Clear drops every tile (and keeps no render that is running).
func (c *Cache) Clear() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.items)
	for el := c.lru.Back(); el != nil; el = c.lru.Back() {
		c.remove(el)
	}
	for _, f := range c.inflight {
		f.stale = true
	}
	c.stats.Invalidated += int64(n)
	return n
}

// Change is something that changed under a tileset: tiles whose envelope
// with the render buffer meets Geom (nil: every tile), at zooms MinZoom to
// MaxZoom, may have changed.
type Change struct {
	Geom             orb.Geometry
	MinZoom, MaxZoom int
}

// Invalidate drops the tiles of layer that the changes touch and returns
// how many it dropped. Renders of such tiles that are running are not kept.
// The layer's tiles drawn in GCJ-02 (CRSLayer) go by the changes'
// geometry converted to GCJ-02, since their tile grid is laid over GCJ-02
// positions.
func (c *Cache) Invalidate(layer string, changes []Change) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.invalidate(layer, changes)
	gcj := gcjLayer(layer)
	if c.zooms[gcj] == nil && !c.flying(gcj) {
		c.stats.Invalidated += int64(n)
		return n
	}
	converted := make([]Change, len(changes))
	for i, ch := range changes {
		converted[i] = ch
		if ch.Geom != nil {
			converted[i].Geom = geo.GeometryFromWGS84(geo.GCJ02, orb.Clone(ch.Geom))
		}
	}
	n += c.invalidate(gcj, converted)
	c.stats.Invalidated += int64(n)
	return n
}

// flying tells whether a render of a tile of layer is running. c.mu is
// held.
func (c *Cache) flying(layer string) bool {
	for k := range c.inflight {
		if k.Layer == layer {
			return true
		}
	}
	return false
}

// invalidate is Invalidate for the tiles cached under one name, without
// the count. c.mu is held.
func (c *Cache) invalidate(layer string, changes []Change) int {
	n := 0
	zs := c.zooms[layer]
	for _, ch := range changes {
		zmin, zmax := max(ch.MinZoom, 0), min(ch.MaxZoom, MaxZoom)
		touches := func(k Key) bool { return k.Z >= zmin && k.Z <= zmax && (ch.Geom == nil || Touches(k, ch.Geom)) }
		for k, f := range c.inflight {
			if k.Layer == layer && !f.stale && touches(k) {
				f.stale = true
			}
		}
		if zs == nil {
			continue
		}
		var gb orb.Bound
		if ch.Geom != nil {
			gb = ch.Geom.Bound()
		}
		for z := zmin; z <= zmax; z++ {
			if len(zs[z]) == 0 {
				continue
			}
			if ch.Geom == nil {
				for _, el := range zs[z] {
					c.remove(el)
					n++
				}
				continue
			}
			x0, y0, x1, y1 := tileRange(gb, z)
			// Look the candidate tiles up, or scan the zoom's entries when
			// they are fewer.
			if span := (x1 - x0 + 1) * (y1 - y0 + 1); span <= len(zs[z]) {
				for y := y0; y <= y1; y++ {
					for x := x0; x <= x1; x++ {
						k := Key{layer, z, x, y}
						if el, ok := zs[z][k]; ok && Touches(k, ch.Geom) {
							c.remove(el)
							n++
						}
					}
				}
				continue
			}
			for k, el := range zs[z] {
				if k.X >= x0 && k.X <= x1 && k.Y >= y0 && k.Y <= y1 && Touches(k, ch.Geom) {
					c.remove(el)
					n++
				}
			}
		}
	}
	return n
}
