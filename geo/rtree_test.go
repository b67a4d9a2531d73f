package geo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// The oracle for RTree is a plain list of entries scanned in full.
type bruteEntries []RTreeEntry[int32]

func (b bruteEntries) search(r orb.Bound) []int32 {
	var out []int32
	for _, e := range b {
		if e.Box.Intersects(r) { // orb's own test, not the one under test
			out = append(out, e.Item)
		}
	}
	slices.Sort(out)
	return out
}

func (b *bruteEntries) delete(box orb.Bound, item int32) bool {
	for i, e := range *b {
		if e.Box == box && e.Item == item {
			*b = slices.Delete(*b, i, i+1)
			return true
		}
	}
	return false
}

func treeSearch(t *RTree[int32], r orb.Bound) []int32 {
	var out []int32
	t.Search(r, func(i int32) bool {
		out = append(out, i)
		return true
	})
	slices.Sort(out)
	return out
}

// boxGen draws one box; the kinds cover what trips an R-tree: boxes that
// share edges and corners exactly (small integer grid), points and lines
// (zero area, so every area-based choice ties), and ordinary float boxes.
type boxGen func(rng *rand.Rand) orb.Bound

func gridBoxes(rng *rand.Rand) orb.Bound {
	x, y := float64(rng.IntN(20)), float64(rng.IntN(20))
	return orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + float64(rng.IntN(4)), y + float64(rng.IntN(4))}}
}

func pointBoxes(rng *rand.Rand) orb.Bound {
	p := orb.Point{float64(rng.IntN(50)), float64(rng.IntN(50))}
	return orb.Bound{Min: p, Max: p}
}

func lineBoxes(rng *rand.Rand) orb.Bound {
	b := floatBoxes(rng)
	if rng.IntN(2) == 0 {
		b.Max[0] = b.Min[0]
	} else {
		b.Max[1] = b.Min[1]
	}
	return b
}

func floatBoxes(rng *rand.Rand) orb.Bound {
	x, y := rng.Float64()*1000, rng.Float64()*1000
	return orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + rng.Float64()*50, y + rng.Float64()*50}}
}

// dupBoxes repeats a handful of boxes, so many entries share one box.
func dupBoxes(rng *rand.Rand) orb.Bound {
	return gridBoxes(rand.New(rand.NewPCG(uint64(rng.IntN(5)), 0)))
}

// randomEntries draws n entries. Items repeat (every item number below n/2
// twice on average), so the same item sits under several boxes and, with
// dupBoxes, under the same box more than once.
func randomEntries(rng *rand.Rand, gen boxGen, n int) bruteEntries {
	es := make(bruteEntries, n)
	for i := range es {
		es[i] = RTreeEntry[int32]{Box: gen(rng), Item: int32(rng.IntN(n/2 + 1))}
	}
	return es
}

// queries: random boxes of the same kind, every entry's corners (exactly on
// boundaries), everything, and nothing.
func queries(rng *rand.Rand, gen boxGen, es bruteEntries) []orb.Bound {
	qs := []orb.Bound{
		{Min: orb.Point{-1e9, -1e9}, Max: orb.Point{1e9, 1e9}},
		{Min: orb.Point{-5, -5}, Max: orb.Point{-4, -4}},
	}
	for range 30 {
		qs = append(qs, gen(rng))
	}
	for i, e := range es {
		if i%7 != 0 {
			continue
		}
		qs = append(qs, orb.Bound{Min: e.Box.Min, Max: e.Box.Min}, orb.Bound{Min: e.Box.Max, Max: e.Box.Max})
	}
	return qs
}

// checkTree verifies the structure: every leaf at level 0, no node empty or
// over capacity, each branch box exactly its subtree's bound, a branch root
// with two children at least, entries in west-edge order, and Len equal to
// the items held. A tree grown by inserts (dense) also has rtreeMin entries
// in every node but the root; STR leaves the last node of a slice short.
func checkTree(t *testing.T, tr *RTree[int32], dense bool) {
	t.Helper()
	if tr.root == nil {
		if tr.height != 0 || tr.size != 0 {
			t.Fatalf("empty tree with height %d size %d", tr.height, tr.size)
		}
		return
	}
	if !tr.root.leaf && tr.root.count < 2 {
		t.Fatalf("branch root with %d children", tr.root.count)
	}
	items := 0
	var walk func(n *rnode[int32], level int)
	walk = func(n *rnode[int32], level int) {
		if n.leaf != (level == 0) {
			t.Fatalf("node at level %d has leaf=%v", level, n.leaf)
		}
		least := 1
		if dense && n != tr.root {
			least = rtreeMin
		}
		if n.count < least || n.count > rtreeMax {
			t.Fatalf("node at level %d holds %d entries", level, n.count)
		}
		for i := 1; i < n.count; i++ {
			if n.boxes[i-1].Min[0] > n.boxes[i].Min[0] {
				t.Fatalf("node at level %d out of west-edge order at %d", level, i)
			}
		}
		if n.leaf {
			items += n.count
			return
		}
		for i := range n.count {
			walk(n.kids[i], level-1)
			if got := n.kids[i].bound(); got != n.boxes[i] {
				t.Fatalf("branch box %v, subtree bound %v", n.boxes[i], got)
			}
		}
	}
	walk(tr.root, tr.height-1)
	if items != tr.size || tr.Len() != tr.size {
		t.Fatalf("tree holds %d items, Len %d", items, tr.Len())
	}
}

func checkSearches(t *testing.T, tr *RTree[int32], dense bool, want bruteEntries, qs []orb.Bound) {
	t.Helper()
	checkTree(t, tr, dense)
	if tr.Len() != len(want) {
		t.Fatalf("Len %d, want %d", tr.Len(), len(want))
	}
	for _, q := range qs {
		if got, exp := treeSearch(tr, q), want.search(q); !slices.Equal(got, exp) {
			t.Fatalf("Search(%v): %d items %v, want %d %v", q, len(got), got, len(exp), exp)
		}
	}
}

func TestRTreeAgainstBruteForce(t *testing.T) {
	gens := []struct {
		name string
		gen  boxGen
	}{
		{"grid", gridBoxes},
		{"points", pointBoxes},
		{"lines", lineBoxes},
		{"floats", floatBoxes},
		{"duplicates", dupBoxes},
	}
	sizes := []int{0, 1, rtreeMin, rtreeMax, rtreeMax + 1, 100, 1000}
	for _, g := range gens {
		for _, n := range sizes {
			for seed := range uint64(4) {
				t.Run(fmt.Sprintf("%s/n=%d/seed=%d", g.name, n, seed), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, uint64(n)))
					es := randomEntries(rng, g.gen, n)
					qs := queries(rng, g.gen, es)

					// Bulk-loaded from the whole set.
					bulk := NewRTree(es)
					checkSearches(t, bulk, false, es, qs)

					// Built by inserts alone, in a shuffled order.
					var ins RTree[int32]
					for _, i := range rng.Perm(n) {
						ins.Insert(es[i].Box, es[i].Item)
					}
					checkSearches(t, &ins, true, es, qs)

					// Bulk-loaded from half, the rest inserted, then deletes of
					// present and absent entries until empty, searching as it
					// shrinks, and filled again.
					half := n / 2
					mixed := NewRTree(es[:half])
					for _, e := range es[half:] {
						mixed.Insert(e.Box, e.Item)
					}
					checkSearches(t, mixed, false, es, qs)
					live := slices.Clone(es)
					for step := 0; len(live) > 0; step++ {
						e := live[rng.IntN(len(live))]
						switch step % 4 {
						case 1: // an item that is in the tree, under another box
							e.Box.Max[0]++
						case 3: // an item that was never inserted
							e.Item = -1
						}
						want := live.delete(e.Box, e.Item)
						if got := mixed.Delete(e.Box, e.Item); got != want {
							t.Fatalf("Delete(%v, %d) = %v, want %v", e.Box, e.Item, got, want)
						}
						if step%37 == 0 || len(live) < 2*rtreeMax {
							checkSearches(t, mixed, false, live, qs)
						}
					}
					checkSearches(t, mixed, false, nil, qs)
					for _, e := range es {
						mixed.Insert(e.Box, e.Item)
					}
					checkSearches(t, mixed, true, es, qs)
				})
			}
		}
	}
}

func TestRTreeEmpty(t *testing.T) {
	everything := orb.Bound{Min: orb.Point{-1e9, -1e9}, Max: orb.Point{1e9, 1e9}}
	box := orb.Bound{Min: orb.Point{1, 1}, Max: orb.Point{2, 2}}
	for name, tr := range map[string]*RTree[int32]{"zero": {}, "bulk-loaded from nothing": NewRTree[int32](nil)} {
		t.Run(name, func(t *testing.T) {
			tr.Search(everything, func(int32) bool {
				t.Fatal("Search on an empty tree called fn")
				return true
			})
			if tr.Delete(box, 1) {
				t.Fatal("Delete on an empty tree found an entry")
			}
			checkSearches(t, tr, true, nil, []orb.Bound{everything})
			tr.Insert(box, 7)
			checkSearches(t, tr, true, bruteEntries{{Box: box, Item: 7}}, []orb.Bound{everything, box})
		})
	}
}

func TestRTreeSearchStops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	es := randomEntries(rng, gridBoxes, 500)
	tr := NewRTree(es)
	everything := orb.Bound{Min: orb.Point{-1, -1}, Max: orb.Point{100, 100}}
	for _, stopAt := range []int{1, 2, rtreeMax, rtreeMax + 1, 499, 500} {
		calls := 0
		tr.Search(everything, func(int32) bool {
			calls++
			return calls < stopAt
		})
		if calls != stopAt {
			t.Errorf("fn returning false at call %d: called %d times", stopAt, calls)
		}
	}
}

// NewRTree must not keep or reorder the caller's slice.
func TestNewRTreeLeavesInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	es := randomEntries(rng, floatBoxes, 300)
	before := slices.Clone(es)
	tr := NewRTree(es)
	if !slices.Equal(es, before) {
		t.Fatal("NewRTree changed its input")
	}
	for i := range es {
		es[i].Box = orb.Bound{}
	}
	q := orb.Bound{Min: orb.Point{-1, -1}, Max: orb.Point{1, 1}}
	if got := treeSearch(tr, q); !slices.Equal(got, before.search(q)) {
		t.Fatal("the tree changed with its input")
	}
}

// ---------------------------------------------------------------------------
// Benchmarks: 20,000 boxes about the size and spread of the demo's grids.
// ---------------------------------------------------------------------------

func benchBoxes(n int) []RTreeEntry[int32] {
	rng := rand.New(rand.NewPCG(7, 8))
	es := make([]RTreeEntry[int32], n)
	for i := range es {
		x, y := 113.8+rng.Float64()*0.6, 22.4+rng.Float64()*0.4
		es[i] = RTreeEntry[int32]{Box: orb.Bound{
			Min: orb.Point{x, y},
			Max: orb.Point{x + 0.002 + rng.Float64()*0.004, y + 0.002 + rng.Float64()*0.004},
		}, Item: int32(i)}
	}
	return es
}

func BenchmarkRTreeSearch(b *testing.B) {
	es := benchBoxes(20000)
	tr := NewRTree(es)
	rng := rand.New(rand.NewPCG(9, 10))
	qs := make([]orb.Bound, 4096)
	for _, size := range []struct {
		name string
		d    float64
	}{{"point", 0}, {"window", 0.02}} {
		for i := range qs {
			p := orb.Point{113.8 + rng.Float64()*0.6, 22.4 + rng.Float64()*0.4}
			qs[i] = orb.Bound{Min: p, Max: orb.Point{p[0] + size.d, p[1] + size.d}}
		}
		b.Run(size.name, func(b *testing.B) {
			n := 0
			for i := 0; b.Loop(); i++ {
				tr.Search(qs[i&4095], func(int32) bool {
					n++
					return true
				})
			}
			benchSink = n
		})
	}
}

func BenchmarkNewRTree(b *testing.B) {
	es := benchBoxes(20000)
	for b.Loop() {
		NewRTree(es)
	}
}
