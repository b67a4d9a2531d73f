package media

import (
	"encoding/binary"
	"errors"
	"math"
)

// GPS is a position read from a photo's EXIF, in WGS-84 (as EXIF's
// GPSMapDatum almost always is on phones; a photo in another datum is
// read as WGS-84 too, which is within the flagging distance in China's
// GCJ-02 case only by luck: the API compares with the event in WGS-84).
type GPS struct {
	Lon, Lat float64
}

// ErrNoGPS: the file has no usable GPS position (no EXIF, no GPS IFD, or
// latitude or longitude missing or out of range).
var ErrNoGPS = errors.New("no GPS position in the file's EXIF")

// ExifGPS reads the GPS latitude and longitude of a JPEG: the APP1 "Exif"
// segment, its TIFF header, IFD0's GPSInfo pointer (tag 0x8825) and the GPS
// IFD's tags 1–4 (GPSLatitudeRef, GPSLatitude, GPSLongitudeRef,
// GPSLongitude). Only these are read; every offset and count is checked
// against the segment, so a broken or hostile file gives ErrNoGPS, never a
// panic (FuzzExifGPS).
func ExifGPS(jpeg []byte) (GPS, error) {
	tiff := exifSegment(jpeg)
	if tiff == nil {
		return GPS{}, ErrNoGPS
	}
	var bo binary.ByteOrder
	switch {
	case len(tiff) < 8:
		return GPS{}, ErrNoGPS
	case tiff[0] == 'I' && tiff[1] == 'I':
		bo = binary.LittleEndian
	case tiff[0] == 'M' && tiff[1] == 'M':
		bo = binary.BigEndian
	default:
		return GPS{}, ErrNoGPS
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return GPS{}, ErrNoGPS
	}
	r := tiffReader{b: tiff, bo: bo}
	gpsOff, ok := r.find(bo.Uint32(tiff[4:]), 0x8825)
	if !ok {
		return GPS{}, ErrNoGPS
	}
	ptr, ok := r.long(gpsOff)
	if !ok {
		return GPS{}, ErrNoGPS
	}
	lat, okLat := r.coordinate(ptr, 1, 2, 'N', 'S')
	lon, okLon := r.coordinate(ptr, 3, 4, 'E', 'W')
	if !okLat || !okLon || math.Abs(lat) > 90 || math.Abs(lon) > 180 || (lat == 0 && lon == 0) {
		// 0,0 is what a phone without a fix writes, not a place.
		return GPS{}, ErrNoGPS
	}
	return GPS{Lon: lon, Lat: lat}, nil
}

// exifSegment finds the TIFF data of the first APP1 Exif segment, walking
// the markers up to the start of the scan.
func exifSegment(b []byte) []byte {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return nil
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return nil
		}
		if marker >= 0xD0 && marker <= 0xD7 || marker == 0x01 { // no length
			i += 2
			continue
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

type tiffReader struct {
	b  []byte
	bo binary.ByteOrder
}

// find returns the offset of the value field of tag in the IFD at off.
func (r tiffReader) find(off uint32, tag uint16) (uint32, bool) {
	if uint64(off)+2 > uint64(len(r.b)) {
		return 0, false
	}
	n := uint32(r.bo.Uint16(r.b[off:]))
	for k := uint32(0); k < n; k++ {
		e := uint64(off) + 2 + uint64(k)*12
		if e+12 > uint64(len(r.b)) {
			return 0, false
		}
		if r.bo.Uint16(r.b[e:]) == tag {
			return uint32(e), true
		}
	}
	return 0, false
}

// long reads the LONG (or SHORT) value of the entry at e.
func (r tiffReader) long(e uint32) (uint32, bool) {
	typ, count := r.bo.Uint16(r.b[e+2:]), r.bo.Uint32(r.b[e+4:])
	switch {
	case count != 1:
		return 0, false
	case typ == 4 || typ == 13: // LONG, IFD
		return r.bo.Uint32(r.b[e+8:]), true
	case typ == 3: // SHORT
		return uint32(r.bo.Uint16(r.b[e+8:])), true
	}
	return 0, false
}

// coordinate reads degrees, minutes, seconds (three RATIONALs) of valTag
// signed by the one-letter ASCII reference of refTag.
func (r tiffReader) coordinate(ifd uint32, refTag, valTag uint16, pos, neg byte) (float64, bool) {
	re, ok := r.find(ifd, refTag)
	if !ok {
		return 0, false
	}
	if r.bo.Uint16(r.b[re+2:]) != 2 || r.bo.Uint32(r.b[re+4:]) < 1 {
		return 0, false
	}
	sign := 1.0
	switch r.b[re+8] { // up to 4 bytes of ASCII sit in the entry itself
	case pos:
	case neg:
		sign = -1
	default:
		return 0, false
	}
	ve, ok := r.find(ifd, valTag)
	if !ok || r.bo.Uint16(r.b[ve+2:]) != 5 || r.bo.Uint32(r.b[ve+4:]) != 3 {
		return 0, false
	}
	off := uint64(r.bo.Uint32(r.b[ve+8:]))
	if off+24 > uint64(len(r.b)) {
		return 0, false
	}
	var v [3]float64
	for i := range v {
		num := r.bo.Uint32(r.b[off+uint64(i)*8:])
		den := r.bo.Uint32(r.b[off+uint64(i)*8+4:])
		if den == 0 {
			if num != 0 {
				return 0, false
			}
			continue // 0/0: phones write it for unused seconds
		}
		v[i] = float64(num) / float64(den)
	}
	if v[1] >= 60 || v[2] >= 60 {
		return 0, false
	}
	return sign * (v[0] + v[1]/60 + v[2]/3600), true
}
