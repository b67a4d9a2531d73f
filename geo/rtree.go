package geo

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// RTree indexes items by planar bounding boxes. It is bulk-loaded
// sort-tile-recursive (STR), which packs nodes full and keeps their boxes
// from overlapping much, and takes single inserts and deletes afterwards so
// an edit to a few units need not rebuild the tree. The zero value is an
// empty tree. Readers may search concurrently; a write needs exclusive use.
//
// Boxes are closed: a box that only touches the search box on an edge or a
// corner is found, as a point on a unit's boundary must find that unit.
type RTree[T comparable] struct {
	root *rnode[T]
	// height is the number of levels, 0 for an empty tree; leaves are level 0
	// and the root is level height-1.
	height int
	size   int
}

// RTreeEntry is an item with its box, as NewRTree takes them.
type RTreeEntry[T comparable] struct {
	Box  orb.Bound
	Item T
}

const (
	// rtreeMax entries a node: a point search in 20,000 boxes reads about
	// five nodes of four levels. 16 searched faster than 8 or 32.
	rtreeMax = 16
	// rtreeMin entries a node keeps after a delete (the root excepted); fewer
	// and its entries are reinserted. 40% of rtreeMax, as Guttman suggests.
	rtreeMin = rtreeMax * 2 / 5
)

// A node holds boxes and, in parallel, either subtrees (a branch) or items
// (a leaf). Fixed arrays keep a node's boxes in one block of memory. Entries
// are kept in order of their boxes' west edge: a search stops reading a node
// at the first box that begins east of the search box, and before that the
// x test is nearly always true, which the processor predicts. Unordered, the
// same tree searched at half the speed.
type rnode[T comparable] struct {
	leaf  bool
	count int
	boxes [rtreeMax]orb.Bound
	kids  [rtreeMax]*rnode[T]
	items [rtreeMax]T
}

// rentry is a box with a subtree (kid) or an item, moved between nodes by
// splits and by reinsertion after a delete.
type rentry[T comparable] struct {
	box  orb.Bound
	kid  *rnode[T]
	item T
}

// NewRTree bulk-loads entries (not kept; the caller may reuse the slice).
func NewRTree[T comparable](entries []RTreeEntry[T]) *RTree[T] {
	t := &RTree[T]{size: len(entries)}
	if len(entries) == 0 {
		return t
	}
	level := make([]rentry[T], len(entries))
	for i, e := range entries {
		level[i] = rentry[T]{box: e.Box, item: e.Item}
	}
	leaf := true
	for {
		nodes := strPack(level, leaf)
		t.height++
		if len(nodes) == 1 {
			t.root = nodes[0]
			return t
		}
		level = level[:0]
		for _, n := range nodes {
			level = append(level, rentry[T]{box: n.bound(), kid: n})
		}
		leaf = false
	}
}

// strPack groups es into nodes of rtreeMax: sorted by x into ⌈√P⌉ vertical
// slices of whole nodes (P nodes in all), each slice sorted by y and cut
// into nodes. It sorts box centres (doubled) with indexes rather than the
// entries themselves, which are larger and hold pointers.
func strPack[T comparable](es []rentry[T], leaf bool) []*rnode[T] {
	type key struct {
		x, y float64
		i    int
	}
	keys := make([]key, len(es))
	for i, e := range es {
		keys[i] = key{e.box.Min[0] + e.box.Max[0], e.box.Min[1] + e.box.Max[1], i}
	}
	nodes := (len(es) + rtreeMax - 1) / rtreeMax
	perSlice := int(math.Ceil(math.Sqrt(float64(nodes)))) * rtreeMax
	slices.SortFunc(keys, func(a, b key) int { return cmpFloat(a.x, b.x) })
	out := make([]*rnode[T], 0, nodes)
	for s := 0; s < len(keys); s += perSlice {
		slice := keys[s:min(s+perSlice, len(keys))]
		slices.SortFunc(slice, func(a, b key) int { return cmpFloat(a.y, b.y) })
		for i := 0; i < len(slice); i += rtreeMax {
			n := &rnode[T]{leaf: leaf}
			for _, k := range slice[i:min(i+rtreeMax, len(slice))] {
				n.add(es[k.i])
			}
			out = append(out, n)
		}
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len is the number of items in the tree.
func (t *RTree[T]) Len() int { return t.size }

// Search calls fn for every item whose box intersects r, in no particular
// order, until fn returns false.
func (t *RTree[T]) Search(r orb.Bound, fn func(T) bool) {
	if t.root != nil {
		t.root.search(&r, fn)
	}
}

func (n *rnode[T]) search(r *orb.Bound, fn func(T) bool) bool {
	boxes := n.boxes[:n.count]
	if n.leaf {
		items := n.items[:len(boxes)]
		for i := range boxes {
			b := &boxes[i]
			if b.Min[0] > r.Max[0] {
				break
			}
			if b.Max[0] >= r.Min[0] && b.Min[1] <= r.Max[1] && b.Max[1] >= r.Min[1] && !fn(items[i]) {
				return false
			}
		}
		return true
	}
	kids := n.kids[:len(boxes)]
	for i := range boxes {
		b := &boxes[i]
		if b.Min[0] > r.Max[0] {
			break
		}
		if b.Max[0] >= r.Min[0] && b.Min[1] <= r.Max[1] && b.Max[1] >= r.Min[1] && !kids[i].search(r, fn) {
			return false
		}
	}
	return true
}

// Insert adds item with box b. The same item may be in the tree more than
// once, under the same box or different ones.
func (t *RTree[T]) Insert(b orb.Bound, item T) {
	t.insert(rentry[T]{box: b, item: item}, 0)
	t.size++
}

// insert puts e into a node of the given level: an item at level 0, a
// subtree of level L-1 at level L.
func (t *RTree[T]) insert(e rentry[T], level int) {
	if t.root == nil {
		t.root = &rnode[T]{leaf: true}
		t.height = 1
	}
	if split := t.root.insert(e, t.height-1, level); split != nil {
		old := t.root
		t.root = &rnode[T]{}
		t.root.add(rentry[T]{box: old.bound(), kid: old})
		t.root.add(rentry[T]{box: split.bound(), kid: split})
		t.height++
	}
}

// insert adds e below n, which is at level at, and returns the new sibling
// of n when n had to split.
func (n *rnode[T]) insert(e rentry[T], at, level int) *rnode[T] {
	if at == level {
		if n.count < rtreeMax {
			n.add(e)
			return nil
		}
		return n.split(e)
	}
	i := n.chooseSubtree(e.box)
	split := n.kids[i].insert(e, at-1, level)
	if split == nil {
		n.setBox(i, union(n.boxes[i], e.box))
		return nil
	}
	n.setBox(i, n.kids[i].bound())
	e = rentry[T]{box: split.bound(), kid: split}
	if n.count < rtreeMax {
		n.add(e)
		return nil
	}
	return n.split(e)
}

// chooseSubtree picks the child whose box grows least in area to take b,
// the smaller box on a tie.
func (n *rnode[T]) chooseSubtree(b orb.Bound) int {
	best, bestGrow, bestArea := 0, math.Inf(1), math.Inf(1)
	for i := range n.count {
		a := area(n.boxes[i])
		grow := area(union(n.boxes[i], b)) - a
		if grow < bestGrow || grow == bestGrow && a < bestArea {
			best, bestGrow, bestArea = i, grow, a
		}
	}
	return best
}

// split divides n's entries and e between n and a new node by Guttman's
// quadratic split, and returns the new node.
func (n *rnode[T]) split(e rentry[T]) *rnode[T] {
	es := make([]rentry[T], 0, rtreeMax+1)
	for i := range n.count {
		es = append(es, n.entry(i))
	}
	es = append(es, e)
	n.clear()
	sib := &rnode[T]{leaf: n.leaf}

	// Seeds: the pair that would waste the most area together.
	s1, s2, worst := 0, 1, math.Inf(-1)
	for i := range es {
		for j := i + 1; j < len(es); j++ {
			d := area(union(es[i].box, es[j].box)) - area(es[i].box) - area(es[j].box)
			if d > worst {
				s1, s2, worst = i, j, d
			}
		}
	}
	n.add(es[s1])
	sib.add(es[s2])
	b1, b2 := es[s1].box, es[s2].box
	es = slices.Delete(es, s2, s2+1) // s2 > s1: delete it first
	es = slices.Delete(es, s1, s1+1)

	for len(es) > 0 {
		// A group that needs every remaining entry to reach rtreeMin takes them.
		if n.count+len(es) <= rtreeMin {
			for _, r := range es {
				n.add(r)
			}
			return sib
		}
		if sib.count+len(es) <= rtreeMin {
			for _, r := range es {
				sib.add(r)
			}
			return sib
		}
		// Next: the entry with the strongest preference for one group.
		next, pref := 0, math.Inf(-1)
		var g1, g2 float64
		for i, r := range es {
			d1 := area(union(b1, r.box)) - area(b1)
			d2 := area(union(b2, r.box)) - area(b2)
			if p := math.Abs(d1 - d2); p > pref {
				next, pref, g1, g2 = i, p, d1, d2
			}
		}
		r := es[next]
		es = slices.Delete(es, next, next+1)
		a1, a2 := area(b1), area(b2)
		if g1 < g2 || g1 == g2 && (a1 < a2 || a1 == a2 && n.count <= sib.count) {
			n.add(r)
			b1 = union(b1, r.box)
		} else {
			sib.add(r)
			b2 = union(b2, r.box)
		}
	}
	return sib
}

// Delete removes one entry of item with exactly box b and reports whether
// there was one. Nodes left with fewer than rtreeMin entries are taken out
// and their entries reinserted, so the tree stays balanced and dense.
func (t *RTree[T]) Delete(b orb.Bound, item T) bool {
	if t.root == nil {
		return false
	}
	var orphans []orphan[T]
	if !t.root.delete(b, item, t.height-1, &orphans) {
		return false
	}
	t.size--
	for _, o := range orphans {
		for i := range o.node.count {
			t.insert(o.node.entry(i), o.level)
		}
	}
	for !t.root.leaf && t.root.count == 1 {
		t.root = t.root.kids[0]
		t.height--
	}
	if t.root.count == 0 {
		t.root, t.height = nil, 0
	}
	return true
}

// orphan is a node cut out of the tree by a delete, with the level of the
// node its entries go back into.
type orphan[T comparable] struct {
	node  *rnode[T]
	level int
}

func (n *rnode[T]) delete(b orb.Bound, item T, at int, orphans *[]orphan[T]) bool {
	// Entries are in west-edge order; none past b's west edge holds b.
	if n.leaf {
		for i := 0; i < n.count && n.boxes[i].Min[0] <= b.Min[0]; i++ {
			if n.items[i] == item && n.boxes[i] == b {
				n.remove(i)
				return true
			}
		}
		return false
	}
	for i := 0; i < n.count && n.boxes[i].Min[0] <= b.Min[0]; i++ {
		if !contains(n.boxes[i], b) || !n.kids[i].delete(b, item, at-1, orphans) {
			continue
		}
		if kid := n.kids[i]; kid.count < rtreeMin {
			*orphans = append(*orphans, orphan[T]{kid, at - 1})
			n.remove(i)
		} else {
			n.setBox(i, kid.bound())
		}
		return true
	}
	return false
}

func (n *rnode[T]) entry(i int) rentry[T] {
	return rentry[T]{box: n.boxes[i], kid: n.kids[i], item: n.items[i]}
}

// add puts e in its place by west edge; n must have room.
func (n *rnode[T]) add(e rentry[T]) {
	i := n.count
	for ; i > 0 && n.boxes[i-1].Min[0] > e.box.Min[0]; i-- {
		n.boxes[i], n.kids[i], n.items[i] = n.boxes[i-1], n.kids[i-1], n.items[i-1]
	}
	n.boxes[i], n.kids[i], n.items[i] = e.box, e.kid, e.item
	n.count++
}

func (n *rnode[T]) remove(i int) {
	copy(n.boxes[i:n.count], n.boxes[i+1:n.count])
	copy(n.kids[i:n.count], n.kids[i+1:n.count])
	copy(n.items[i:n.count], n.items[i+1:n.count])
	n.count--
	var zero T
	n.boxes[n.count], n.kids[n.count], n.items[n.count] = orb.Bound{}, nil, zero
}

// setBox changes the box of entry i, which may move it.
func (n *rnode[T]) setBox(i int, b orb.Bound) {
	e := n.entry(i)
	e.box = b
	n.remove(i)
	n.add(e)
}

func (n *rnode[T]) clear() {
	leaf := n.leaf
	*n = rnode[T]{leaf: leaf}
}

func (n *rnode[T]) bound() orb.Bound {
	b := n.boxes[0]
	for i := 1; i < n.count; i++ {
		b = union(b, n.boxes[i])
	}
	return b
}

// contains reports whether b lies within a (boundaries included).
func contains(a, b orb.Bound) bool {
	return a.Min[0] <= b.Min[0] && b.Max[0] <= a.Max[0] &&
		a.Min[1] <= b.Min[1] && b.Max[1] <= a.Max[1]
}

func area(b orb.Bound) float64 {
	return (b.Max[0] - b.Min[0]) * (b.Max[1] - b.Min[1])
}

func union(a, b orb.Bound) orb.Bound {
	return orb.Bound{
		Min: orb.Point{min(a.Min[0], b.Min[0]), min(a.Min[1], b.Min[1])},
		Max: orb.Point{max(a.Max[0], b.Max[0]), max(a.Max[1], b.Max[1])},
	}
}
