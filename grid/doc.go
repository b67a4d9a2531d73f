// Package grid is the domain of grid management: levels and hierarchical
// codes, unit drafts and the topology violations a clean partition must not
// have, the in-memory locator (an R-tree per layer and level over prepared
// polygons), managed-object classes and codes, and events: their workflow
// (states and legal moves), codes, classes with working-time limits, and
// the working calendar. It knows nothing of SQL or HTTP.
package grid
