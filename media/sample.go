package media

import (
	"bytes"
	"encoding/binary"
	"math"
)

// SampleJPEG is a tiny JPEG (no picture: markers only) whose EXIF holds
// the GPS position lon, lat (WGS-84): what tests, the demo and simulate
// attach to events.
func SampleJPEG(lon, lat float64) []byte { return sampleJPEG(binary.BigEndian, lat, lon) }

// sampleJPEG writes APP1 with a TIFF whose IFD0 points at a GPS IFD of
// lat/lon in degrees, minutes, seconds, in byte order bo.
func sampleJPEG(bo binary.ByteOrder, lat, lon float64) []byte {
	var t bytes.Buffer
	if bo == binary.LittleEndian {
		t.WriteString("II")
	} else {
		t.WriteString("MM")
	}
	w16 := func(v uint16) { _ = binary.Write(&t, bo, v) }
	w32 := func(v uint32) { _ = binary.Write(&t, bo, v) }
	w16(42)
	w32(8) // IFD0 at 8
	// IFD0: one entry, GPSInfo → 26
	w16(1)
	w16(0x8825)
	w16(4)
	w32(1)
	w32(26)
	w32(0) // next IFD
	// GPS IFD at 26: 4 entries (2+48+4 = 54 bytes) → rationals at 80
	ref := func(v float64, p, n byte) byte {
		if v < 0 {
			return n
		}
		return p
	}
	w16(4)
	entry := func(tag, typ uint16, count, val uint32) { w16(tag); w16(typ); w32(count); w32(val) }
	ascii := func(c byte) uint32 {
		if bo == binary.LittleEndian {
			return uint32(c)
		}
		return uint32(c) << 24
	}
	entry(1, 2, 2, ascii(ref(lat, 'N', 'S')))
	entry(2, 5, 3, 80)
	entry(3, 2, 2, ascii(ref(lon, 'E', 'W')))
	entry(4, 5, 3, 104)
	w32(0)
	dms := func(v float64) {
		v = math.Abs(v)
		d := math.Floor(v)
		m := math.Floor((v - d) * 60)
		s := ((v-d)*60 - m) * 60
		w32(uint32(d))
		w32(1)
		w32(uint32(m))
		w32(1)
		w32(uint32(math.Round(s * 10000)))
		w32(10000)
	}
	dms(lat)
	dms(lon)
	app1 := append([]byte("Exif\x00\x00"), t.Bytes()...)
	var j bytes.Buffer
	j.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0}) // SOI, a small APP0
	j.Write([]byte{0xFF, 0xE1, byte((len(app1) + 2) >> 8), byte(len(app1) + 2)})
	j.Write(app1)
	j.Write([]byte{0xFF, 0xDA, 0, 2, 0xFF, 0xD9})
	return j.Bytes()
}
