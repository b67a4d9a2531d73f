package data

import "testing"

func TestNextFreeSeq(t *testing.T) {
	for _, c := range []struct {
		name   string
		used   []int
		lo, hi int
		want   int
	}{
		{"empty block", nil, 1, 999, 1},
		{"after the highest", []int{1, 2, 5}, 1, 999, 6},
		{"a hole below is not reused while the top is free", []int{1, 3}, 1, 999, 4},
		{"top taken: the lowest free", []int{1, 2, 999}, 1, 999, 3},
		{"another block", []int{100, 101}, 100, 199, 102},
		{"full", []int{1, 2, 3}, 1, 3, 0},
	} {
		used := map[int]bool{}
		for _, n := range c.used {
			used[n] = true
		}
		if got := nextFreeSeq(used, c.lo, c.hi); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
