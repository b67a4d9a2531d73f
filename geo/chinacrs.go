package geo

import (
	"fmt"
	"math"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

// Chinese web maps do not publish WGS-84: the law requires the GCJ-02
// obfuscation on top of it, and Baidu adds its own BD-09 shift on top of
// that. Clients reading positions off those maps must say so, and gridmap
// converts to WGS-84 before storing. The formulas below are the widely
// reimplemented ones (eviltransform, coordtransform, gcoord); the inverses
// are exact to 1e-9° rather than the usual one-step approximations.
// Positions are (lon, lat) everywhere, as in GeoJSON.

// CRS names a coordinate system a client may send positions in.
type CRS string

const (
	WGS84 CRS = "wgs84" // GPS, RFC 7946, what gridmap stores
	GCJ02 CRS = "gcj02" // 国测局 "Mars" coordinates: Amap/Gaode, Tencent, Google China
	BD09  CRS = "bd09"  // Baidu
)

// CRSNames lists the coordinate systems ParseCRS accepts, WGS84 first.
var CRSNames = []CRS{WGS84, GCJ02, BD09}

// The URIs that name the coordinate systems where a standard wants a URI
// (OGC API – Features Part 2: crs, bbox-crs, filter-crs, Content-Crs).
// WGS-84 with longitude first is OGC's CRS84. GCJ-02 and BD-09 have no
// registered identifier (no EPSG code, nothing in OGC's register), so
// they get URNs in gridmap's own namespace rather than invented http
// URIs that would look resolvable.
const (
	CRS84URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
	GCJ02URI = "urn:gridmap:def:crs:gcj02"
	BD09URI  = "urn:gridmap:def:crs:bd09"
)

// URI is the identifier of crs for OGC's crs parameters and Content-Crs.
func (c CRS) URI() string {
	switch c {
	case GCJ02:
		return GCJ02URI
	case BD09:
		return BD09URI
	}
	return CRS84URI
}

// ParseCRS accepts the names above case-insensitively, "" meaning wgs84,
// the aliases "epsg:4326"/"wgs-84", "gcj-02" and "bd-09", and the URIs
// (CRS84URI, GCJ02URI, BD09URI). Anything else is an error that lists the
// accepted names.
func ParseCRS(s string) (CRS, error) {
	switch strings.ToLower(s) {
	case "", "wgs84", "wgs-84", "epsg:4326", strings.ToLower(CRS84URI):
		return WGS84, nil
	case "gcj02", "gcj-02", GCJ02URI:
		return GCJ02, nil
	case "bd09", "bd-09", BD09URI:
		return BD09, nil
	}
	names := make([]string, len(CRSNames))
	for i, c := range CRSNames {
		names[i] = string(c)
	}
	return "", fmt.Errorf("unknown coordinate system %q, want one of %s", s, strings.Join(names, ", "))
}

// ToWGS84 converts a position given in crs to WGS-84. It panics on a CRS
// that did not come from ParseCRS or the constants above.
func ToWGS84(crs CRS, lon, lat float64) (float64, float64) {
	switch crs {
	case WGS84:
		return lon, lat
	case GCJ02:
		return GCJ02ToWGS84(lon, lat)
	case BD09:
		return BD09ToWGS84(lon, lat)
	}
	panic(fmt.Sprintf("geo: unknown CRS %q", string(crs)))
}

// FromWGS84 converts a WGS-84 position to crs; it is the inverse of ToWGS84.
func FromWGS84(crs CRS, lon, lat float64) (float64, float64) {
	switch crs {
	case WGS84:
		return lon, lat
	case GCJ02:
		return WGS84ToGCJ02(lon, lat)
	case BD09:
		return WGS84ToBD09(lon, lat)
	}
	panic(fmt.Sprintf("geo: unknown CRS %q", string(crs)))
}

// OutsideChina reports whether a position lies outside the rough box
// (lon 72.004–137.8347, lat 0.8293–55.8271) in which GCJ-02 applies its
// shift; outside it GCJ-02 is WGS-84 unchanged. The box is the one every
// converter uses, so it must not be "improved" to the real border.
func OutsideChina(lon, lat float64) bool {
	return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271
}

// WGS84ToGCJ02 applies the GCJ-02 shift: a polynomial-plus-sines offset in
// metres, turned into degrees on the Krasovsky ellipsoid.
func WGS84ToGCJ02(lon, lat float64) (float64, float64) {
	if OutsideChina(lon, lat) {
		return lon, lat
	}
	const (
		a  = 6378245.0 // Krasovsky 1940 semi-major axis, metres
		ee = 0.00669342162296594323
	)
	x, y := lon-105, lat-35
	dLat := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x)) +
		(20*math.Sin(6*x*math.Pi)+20*math.Sin(2*x*math.Pi))*2/3 +
		(20*math.Sin(y*math.Pi)+40*math.Sin(y/3*math.Pi))*2/3 +
		(160*math.Sin(y/12*math.Pi)+320*math.Sin(y*math.Pi/30))*2/3
	dLon := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x)) +
		(20*math.Sin(6*x*math.Pi)+20*math.Sin(2*x*math.Pi))*2/3 +
		(20*math.Sin(x*math.Pi)+40*math.Sin(x/3*math.Pi))*2/3 +
		(150*math.Sin(x/12*math.Pi)+300*math.Sin(x/30*math.Pi))*2/3
	radLat := lat / 180 * math.Pi
	s := math.Sin(radLat)
	magic := 1 - ee*s*s
	sqrtMagic := math.Sqrt(magic)
	dLat = dLat * 180 / (a * (1 - ee) / (magic * sqrtMagic) * math.Pi)
	dLon = dLon * 180 / (a / sqrtMagic * math.Cos(radLat) * math.Pi)
	return lon + dLon, lat + dLat
}

// GCJ02ToWGS84 inverts WGS84ToGCJ02 by iteration. The usual one-step
// "subtract the shift taken at the GCJ point" is off by up to 5 m.
func GCJ02ToWGS84(lon, lat float64) (float64, float64) {
	if OutsideChina(lon, lat) {
		return lon, lat
	}
	return invert(WGS84ToGCJ02, lon, lat)
}

// xPi scales degrees for the BD-09 perturbation terms.
const xPi = math.Pi * 3000 / 180

// GCJ02ToBD09 applies Baidu's shift: a small radial and angular wobble of
// the (lon, lat) vector plus a fixed (0.0065, 0.006) offset. Like the
// reference converters it applies everywhere, not only inside China.
func GCJ02ToBD09(lon, lat float64) (float64, float64) {
	z := math.Hypot(lon, lat) + 0.00002*math.Sin(lat*xPi)
	theta := math.Atan2(lat, lon) + 0.000003*math.Cos(lon*xPi)
	return z*math.Cos(theta) + 0.0065, z*math.Sin(theta) + 0.006
}

// BD09ToGCJ02 inverts GCJ02ToBD09 by iteration; the widely copied one-step
// inverse is off by up to about 0.2 m.
func BD09ToGCJ02(lon, lat float64) (float64, float64) {
	return invert(GCJ02ToBD09, lon, lat)
}

// BD09ToWGS84 converts Baidu coordinates to WGS-84 via GCJ-02.
func BD09ToWGS84(lon, lat float64) (float64, float64) {
	return GCJ02ToWGS84(BD09ToGCJ02(lon, lat))
}

// WGS84ToBD09 converts WGS-84 to Baidu coordinates via GCJ-02.
func WGS84ToBD09(lon, lat float64) (float64, float64) {
	return GCJ02ToBD09(WGS84ToGCJ02(lon, lat))
}

// invert finds p with f(p) = (lon, lat) by the fixed-point iteration
// p -= f(p) - target. Both shifts are the identity plus a term whose
// derivative is a few hundredths at most, so each step gains well over a
// decimal digit: it takes at most five evaluations of f to bring f(p)
// within 1e-9° (0.1 mm) of the target. The cap only guards against NaNs.
func invert(f func(lon, lat float64) (float64, float64), lon, lat float64) (float64, float64) {
	const (
		tolerance = 1e-9
		maxIter   = 30
	)
	x, y := lon, lat
	for range maxIter {
		fx, fy := f(x, y)
		dx, dy := fx-lon, fy-lat
		if math.Abs(dx) < tolerance && math.Abs(dy) < tolerance {
			break
		}
		x, y = x-dx, y-dy
	}
	return x, y
}

// GeometryToWGS84 converts every position of g, given in crs, to WGS-84
// in place and returns g.
func GeometryToWGS84(crs CRS, g orb.Geometry) orb.Geometry {
	if crs == WGS84 || g == nil {
		return g
	}
	return project.Geometry(g, func(p orb.Point) orb.Point { p[0], p[1] = ToWGS84(crs, p[0], p[1]); return p })
}

// GeometryFromWGS84 converts every position of g from WGS-84 to crs in
// place and returns g: answers in a client's coordinate system.
func GeometryFromWGS84(crs CRS, g orb.Geometry) orb.Geometry {
	if crs == WGS84 || g == nil {
		return g
	}
	return project.Geometry(g, func(p orb.Point) orb.Point { p[0], p[1] = FromWGS84(crs, p[0], p[1]); return p })
}
