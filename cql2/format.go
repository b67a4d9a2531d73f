package cql2

import (
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkt"
)

// Text writes e in the CQL2 text encoding, every property quoted and every
// operation parenthesised, so that ParseText reads it back as e. (A string
// with a backslash before a quote, or ending in one, which only the JSON
// encoding can carry, has no text form: CQL2 reads \' as a quote.)
func Text(e Expr) string {
	var b strings.Builder
	writeText(&b, e)
	return b.String()
}

func writeText(b *strings.Builder, e Expr) {
	switch n := e.(type) {
	case nil:
		b.WriteString("'..'")
	case *Property:
		b.WriteString(`"` + n.Name + `"`)
	case *StringLit:
		b.WriteString("'" + strings.ReplaceAll(n.Value, "'", "''") + "'")
	case *NumberLit:
		b.WriteString(strconv.FormatFloat(n.Value, 'g', -1, 64))
	case *BoolLit:
		b.WriteString(strings.ToUpper(strconv.FormatBool(n.Value)))
	case *TimestampLit:
		b.WriteString("TIMESTAMP('" + n.Time.UTC().Format(time.RFC3339Nano) + "')")
	case *DateLit:
		b.WriteString("DATE('" + n.Time.Format(time.DateOnly) + "')")
	case *IntervalLit:
		b.WriteString("INTERVAL(")
		writeText(b, n.Start)
		b.WriteString(", ")
		writeText(b, n.End)
		b.WriteString(")")
	case *GeometryLit:
		if bd, ok := n.Geom.(orb.Bound); ok {
			b.WriteString("BBOX(")
			for i, f := range []float64{bd.Min[0], bd.Min[1], bd.Max[0], bd.Max[1]} {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			}
			b.WriteString(")")
			return
		}
		b.WriteString(wkt.MarshalString(n.Geom))
	case *List:
		b.WriteString("(")
		for i, it := range n.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			writeText(b, it)
		}
		b.WriteString(")")
	case *Op:
		writeOp(b, n)
	}
}

func writeOp(b *strings.Builder, n *Op) {
	join := func(sep string, args []Expr) {
		for i, a := range args {
			if i > 0 {
				b.WriteString(sep)
			}
			writeText(b, a)
		}
	}
	switch {
	case n.Op == "casei" || isBinaryFunction(n.Op):
		b.WriteString(strings.ToUpper(n.Op) + "(")
		join(", ", n.Args)
		b.WriteString(")")
		return
	case n.Op == "not":
		b.WriteString("NOT ")
		writeText(b, n.Args[0])
		return
	}
	b.WriteString("(")
	switch n.Op {
	case "and", "or":
		join(" "+strings.ToUpper(n.Op)+" ", n.Args)
	case "isNull":
		writeText(b, n.Args[0])
		b.WriteString(" IS NULL")
	case "between":
		writeText(b, n.Args[0])
		b.WriteString(" BETWEEN ")
		join(" AND ", n.Args[1:])
	case "like", "in":
		join(" "+strings.ToUpper(n.Op)+" ", n.Args)
	default:
		join(" "+n.Op+" ", n.Args)
	}
	b.WriteString(")")
}
