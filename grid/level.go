package grid

import (
	"fmt"
	"strings"

	"gridmap/geo"
)

// Level is a rung of the hierarchy: district 区, street 街道, community 社区, grid 网格.
type Level string

const (
	District  Level = "district"
	Street    Level = "street"
	Community Level = "community"
	Grid      Level = "grid"
)

// Levels lists the levels from the top down.
var Levels = []Level{District, Street, Community, Grid}

// ParseLevel accepts a level name and says which names exist otherwise.
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels {
		if string(l) == s {
			return l, nil
		}
	}
	return "", fmt.Errorf("unknown level %q: use one of %s", geo.Excerpt(s, geo.MaxExcerpt), levelNames())
}

func levelNames() string {
	var b strings.Builder
	for i, l := range Levels {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(l))
	}
	return b.String()
}

// Depth is 0 for districts and 3 for grids.
func (l Level) Depth() int {
	for i, x := range Levels {
		if x == l {
			return i
		}
	}
	return -1
}

// Parent is the level above, or "" for districts.
func (l Level) Parent() Level {
	if d := l.Depth(); d > 0 {
		return Levels[d-1]
	}
	return ""
}

// Child is the level below, or "" for grids.
func (l Level) Child() Level {
	if d := l.Depth(); d >= 0 && d < len(Levels)-1 {
		return Levels[d+1]
	}
	return ""
}

// CodeLen is the number of digits of a code at this level.
func (l Level) CodeLen() int {
	switch l {
	case District:
		return 6
	case Street:
		return 9
	case Community:
		return 12
	case Grid:
		return 15
	}
	return 0
}

// Chinese is the level's name as people in a command centre say it.
func (l Level) Chinese() string {
	switch l {
	case District:
		return "区"
	case Street:
		return "街道"
	case Community:
		return "社区"
	case Grid:
		return "网格"
	}
	return ""
}
