package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"gridmap/geo"
)

// xlsxWriter writes one worksheet through excelize's StreamWriter, which
// keeps rows in a temporary file past a few megabytes rather than in
// memory.
type xlsxWriter struct {
	out    io.Writer
	f      *excelize.File
	sw     *excelize.StreamWriter
	s      geo.Schema
	styles []int // per column
	row    int
	cells  []any
}

// NewXLSX writes a workbook of one sheet named after the schema: a bold
// header row, frozen, then a row per Write; integers as "#,##0", reals
// "#,##0.00", times as dates. It takes tables without geometry only: a
// boundary's text does not fit a cell (32,767 characters), and a
// spreadsheet is for figures.
func NewXLSX(w io.Writer, s geo.Schema, o Options) (_ Writer, err error) {
	o = o.withDefaults()
	if s.GeometryType != "" {
		return nil, errors.New("export: xlsx holds tables without geometry")
	}
	names, err := columnNames(s, o)
	if err != nil {
		return nil, err
	}
	f := excelize.NewFile()
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	sheet := sheetName(s.Name)
	if err = f.SetSheetName("Sheet1", sheet); err != nil {
		return nil, err
	}
	x := &xlsxWriter{out: w, f: f, s: s, cells: make([]any, len(names)), styles: make([]int, len(names))}
	if x.sw, err = f.NewStreamWriter(sheet); err != nil {
		return nil, err
	}
	head, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true},
		Fill:   excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}},
		Border: []excelize.Border{{Type: "bottom", Color: "808080", Style: 1}}})
	if err != nil {
		return nil, err
	}
	integer, err := f.NewStyle(&excelize.Style{NumFmt: 3}) // #,##0
	if err != nil {
		return nil, err
	}
	real, err := f.NewStyle(&excelize.Style{NumFmt: 4}) // #,##0.00
	if err != nil {
		return nil, err
	}
	timeFmt := "yyyy-mm-dd hh:mm:ss"
	when, err := f.NewStyle(&excelize.Style{CustomNumFmt: &timeFmt})
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		width := 12.0
		if i > 0 {
			switch s.Fields[i-1].Type {
			case geo.Integer:
				x.styles[i] = integer
			case geo.Real:
				x.styles[i] = real
			case geo.Time:
				x.styles[i], width = when, 20
			case geo.String, geo.JSON:
				width = 20
			}
		}
		// CJK characters are about two columns wide.
		if hw := float64(utf8.RuneCountInString(n)+len(n))/2 + 2; hw > width {
			width = hw
		}
		if err = x.sw.SetColWidth(i+1, i+1, width); err != nil {
			return nil, err
		}
	}
	if err = x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, err
	}
	header := make([]any, len(names))
	for i, n := range names {
		header[i] = excelize.Cell{StyleID: head, Value: n}
	}
	if err = x.sw.SetRow("A1", header); err != nil {
		return nil, err
	}
	x.row = 1
	return x, nil
}

// sheetName makes a valid sheet name: at most 31 characters, none of
// []:*?/\.
func sheetName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 31 {
		s = string(r[:31])
	}
	if s == "" {
		return "Sheet1"
	}
	return s
}

func (x *xlsxWriter) Write(r *geo.Row) error {
	if err := checkRow(x.s, r); err != nil {
		return err
	}
	x.cells[0] = r.ID
	for i, f := range x.s.Fields {
		v := r.Values[i]
		switch t := v.(type) {
		case nil, string, int64, int, float64, bool:
		case time.Time:
			v = t.UTC()
		case json.RawMessage:
			v = string(t)
		default:
			return fmt.Errorf("export: a %s field holds a %T", typeName(f.Type), v)
		}
		if v != nil && x.styles[i+1] != 0 {
			v = excelize.Cell{StyleID: x.styles[i+1], Value: v}
		}
		x.cells[i+1] = v
	}
	x.row++
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, x.cells)
}

func (x *xlsxWriter) Close() error {
	defer x.f.Close()
	if err := x.sw.Flush(); err != nil {
		return err
	}
	return x.f.Write(x.out)
}

func (x *xlsxWriter) Abort() { x.f.Close() }
