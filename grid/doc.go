// Package grid is the domain of grid management: levels, hierarchical
// codes, units, the rules a clean partition obeys, and locating a point in
// the hierarchy. It knows nothing of SQL or HTTP.
package grid
