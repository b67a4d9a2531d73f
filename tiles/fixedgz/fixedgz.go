// Package fixedgz writes gzip members (RFC 1952) whose DEFLATE stream
// (RFC 1951) is one block coded with DEFLATE's fixed Huffman codes
// (§3.2.6), the strategy zlib calls Z_FIXED, after a greedy LZ77 pass.
//
// It exists for tiles drawn on demand: a few kilobytes each, compressed once
// per request when the tile cache is off or missed. For inputs that small,
// a general deflater spends most of its time building the block's Huffman
// trees (klauspost/compress at its fastest: ~30 µs of the ~40 µs it takes
// for a 3.8 KB unit tile); fixed codes need no trees, and on MVT tiles they
// give output only about 8 % larger than dynamic ones (docs/benchmarks.md,
// "Unit tiles from memory"). Any gzip reader reads the result. Data that
// does not compress is stored instead, so the output is never more than a
// few bytes larger than the input.
package fixedgz

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"sync"
)

// header is a gzip member header: no name, no time, XFL 4 (fastest
// algorithm), OS 255 (unknown), as Go's compress/gzip writes it.
var header = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

const (
	minMatch  = 4
	maxMatch  = 258
	maxDist   = 32768
	tableBits = 14
	tableSize = 1 << tableBits
	// maxInput keeps positions in int32; larger inputs are stored.
	maxInput = 1 << 29
)

// encoder holds the LZ77 hash table. Positions are stored offset by cur,
// which grows by each input's length, so the table needs no clearing
// between inputs: an entry below cur belongs to an earlier one.
type encoder struct {
	table [tableSize]int32
	cur   int32
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// Append appends a gzip member holding src to dst and returns the
// extended slice.
func Append(dst, src []byte) []byte {
	dst = append(dst, header[:]...)
	start := len(dst)
	if len(src) <= maxInput {
		e := encoders.Get().(*encoder)
		dst = e.deflate(dst, src)
		encoders.Put(e)
	}
	// Stored blocks cost 5 bytes a 65,535: use them when coding did not pay.
	if stored := len(src) + 5*max(1, (len(src)+65534)/65535); len(src) > maxInput || len(dst)-start > stored {
		dst = appendStored(dst[:start], src)
	}
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(src))
	return binary.LittleEndian.AppendUint32(dst, uint32(len(src)))
}

// bitWriter packs codes least significant bit first, as DEFLATE does.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

// put writes the low n bits of v; n ≤ 32.
func (w *bitWriter) put(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	if w.nacc >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nacc -= 32
	}
}

// flush writes what is left, padded to a byte.
func (w *bitWriter) flush() {
	for w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc = max(w.nacc, 8) - 8
	}
	w.acc = 0
}

// matchLen is the length of the common prefix of a and b (len(a) ≥ len(b)),
// eight bytes at a time.
func matchLen(a, b []byte) int {
	n := 0
	for len(b) >= 8 {
		if x := binary.LittleEndian.Uint64(a) ^ binary.LittleEndian.Uint64(b); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
		a, b = a[8:], b[8:]
	}
	for i := range b {
		if a[i] != b[i] {
			return n + i
		}
	}
	return n + len(b)
}

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func hash4(u uint32) uint32 { return (u * 0x1e35a7bd) >> (32 - tableBits) }

// deflate appends one final fixed-Huffman block coding src.
func (e *encoder) deflate(dst, src []byte) []byte {
	if e.cur > 1<<30 {
		e.table = [tableSize]int32{}
		e.cur = 0
	}
	// Entries of earlier inputs are below base; an old entry equal to a
	// position of this input cannot be, because cur moved past it.
	base := e.cur + maxDist
	e.cur = base + int32(len(src))

	w := bitWriter{out: dst}
	w.put(1|1<<1, 3) // BFINAL, BTYPE 01: fixed Huffman codes
	n := len(src)
	next := 0 // first byte not yet coded
	for i := 0; i+minMatch <= n; {
		u := load32(src, i)
		h := hash4(u)
		c := int(e.table[h] - base)
		e.table[h] = int32(i) + base
		if c < 0 || i-c > maxDist || load32(src, c) != u {
			// Skip faster through data that does not match (as Snappy
			// does): one more byte a step every 32 misses.
			i += 1 + (i-next)>>5
			continue
		}
		// Extend backwards over literals not yet coded, then forwards.
		for i > next && c > 0 && src[i-1] == src[c-1] {
			i--
			c--
		}
		l := matchLen(src[c+minMatch:], src[i+minMatch:min(n, i+maxMatch)]) + minMatch
		for _, b := range src[next:i] {
			w.put(uint64(litCode[b]), uint(litBits[b]))
		}
		lc := lengthCode[l]
		dc := distCode(i - c)
		w.put(uint64(lc.code)|uint64(dc.code)<<lc.bits, uint(lc.bits+dc.bits))
		i += l
		next = i
		// Index the match's last positions so the next can start there.
		for j := max(i-2, 0); j+minMatch <= n && j < i; j++ {
			e.table[hash4(load32(src, j))] = int32(j) + base
		}
	}
	for _, b := range src[next:] {
		w.put(uint64(litCode[b]), uint(litBits[b]))
	}
	w.put(0, 7) // end of block: symbol 256, seven zero bits
	w.flush()
	return w.out
}

// appendStored appends src as stored blocks (BTYPE 00), the last final.
func appendStored(dst, src []byte) []byte {
	for first := true; first || len(src) > 0; first = false {
		k := min(len(src), 65535)
		final := byte(0)
		if k == len(src) {
			final = 1
		}
		dst = append(dst, final, byte(k), byte(k>>8), ^byte(k), ^byte(k>>8))
		dst = append(dst, src[:k]...)
		src = src[k:]
	}
	return dst
}

// A code is a Huffman code reversed for LSB-first packing, with the extra
// bits of its length or distance already placed above it.
type code struct {
	code uint32
	bits uint32
}

var (
	litCode    [256]uint16
	litBits    [256]uint8
	lengthCode [maxMatch + 1]code
	distLow    [256]code // distances 1..256 by d-1
	distHigh   [256]code // distances 257..32768 by (d-1)>>7, extra bits to add
)

func reverse(v uint32, n uint) uint32 { return bits.Reverse32(v) >> (32 - n) }

// symbol returns the fixed code of literal/length symbol s (RFC 1951 §3.2.6).
func symbol(s int) (uint32, uint32) {
	switch {
	case s < 144:
		return reverse(uint32(0x30+s), 8), 8
	case s < 256:
		return reverse(uint32(0x190+s-144), 9), 9
	case s < 280:
		return reverse(uint32(s-256), 7), 7
	}
	return reverse(uint32(0xc0+s-280), 8), 8
}

// distCode codes distance d (1 ≤ d ≤ 32768): its 5-bit code and extra bits.
func distCode(d int) code {
	if d <= 256 {
		return distLow[d-1]
	}
	c := distHigh[(d-1)>>7]
	c.code |= uint32(d-int(distBase[c.bits>>8])) << 5
	c.bits &= 0xff
	return c
}

// The length and distance bases and their extra bits (RFC 1951 §3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func init() {
	for b := range 256 {
		c, n := symbol(b)
		litCode[b], litBits[b] = uint16(c), uint8(n)
	}
	for k := len(lengthBase) - 1; k >= 0; k-- {
		c, n := symbol(257 + k)
		for l := int(lengthBase[k]); l <= maxMatch && (k == len(lengthBase)-1 || l < int(lengthBase[k+1])); l++ {
			if lengthCode[l].bits != 0 {
				continue // 258 has its own symbol, 285, not 284's last step
			}
			lengthCode[l] = code{c | uint32(l-int(lengthBase[k]))<<n, n + uint32(lengthExtra[k])}
		}
	}
	for k := range distBase {
		c := reverse(uint32(k), 5)
		hi := int(distBase[k]) + 1<<distExtra[k] - 1 // the largest distance of code k
		for d := int(distBase[k]); d <= hi; d++ {
			if d <= 256 {
				distLow[d-1] = code{c | uint32(d-int(distBase[k]))<<5, 5 + uint32(distExtra[k])}
			} else if (d-1)&127 == 0 || d == int(distBase[k]) {
				// The code's index in distBase rides in bits 8 and up; distCode adds the extra bits.
				distHigh[(d-1)>>7] = code{c, uint32(k)<<8 | (5 + uint32(distExtra[k]))}
			}
		}
	}
}
