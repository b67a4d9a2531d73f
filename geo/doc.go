// Package geo holds the geometry plumbing gridmap needs below the domain:
// GeoJSON decoding with positions in errors, normalisation of polygons,
// EWKB exchange with PostGIS, and a prepared point-in-polygon test whose
// boundary rule matches PostGIS ST_Covers.
package geo
