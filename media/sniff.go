// Package media checks uploaded files (their type from their bytes, the
// GPS position in a photo's EXIF) and stores them content-addressed behind
// a small interface (Storage), so an S3-compatible backend can replace the
// filesystem one without the API changing.
package media

import (
	"bytes"
	"errors"
)

// The media types an attachment may have.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	MP4  = "video/mp4"
)

// ErrUnknownType: the bytes are none of JPEG, PNG or MP4.
var ErrUnknownType = errors.New("the bytes are not a JPEG, PNG or MP4 file")

// Sniff names the type of b from its first bytes, never from a name or a
// declared Content-Type (which a client chooses freely): JPEG's SOI marker
// followed by another marker, PNG's 8-byte signature, or an ISO base media
// file whose first box is 'ftyp' with a size that fits the file (MP4 and
// its kin: the brand is not checked, as phones write many).
func Sniff(b []byte) (string, error) {
	switch {
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF && b[3] >= 0xC0 && b[3] != 0xFF:
		return JPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case len(b) >= 16 && string(b[4:8]) == "ftyp":
		size := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		// A brand box holds at least the major brand and minor version.
		if size >= 16 && uint64(size) <= uint64(len(b)) && printable(b[8:12]) {
			return MP4, nil
		}
	}
	return "", ErrUnknownType
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
