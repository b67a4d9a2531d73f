// Package geo holds the geometry plumbing gridmap needs below the domain:
// strict GeoJSON decoding whose errors name the member and index at fault
// (position.go, geojson.go), streamed NDJSON and CSV records (stream.go),
// normalisation of polygons, EWKB exchange with PostGIS, a prepared
// point-in-polygon test whose boundary rule matches PostGIS ST_Covers, a
// planar R-tree, and GCJ-02/BD-09 to and from WGS-84.
package geo
