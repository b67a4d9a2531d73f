package export_test

import (
	"bytes"
	"testing"

	"github.com/xuri/excelize/v2"

	"gridmap/export"
	"gridmap/geo"
)

// TestXLSX: the workbook excelize reads back has the header, the values
// with their types and number formats, and a frozen header row.
func TestXLSX(t *testing.T) {
	s := geo.Schema{Name: "宝安区 objects/stats", Fields: []geo.Field{
		{Name: "name", Type: geo.String}, {Name: "total", Type: geo.Integer}, {Name: "avg_hours", Type: geo.Real},
		{Name: "updated_at", Type: geo.Time}, {Name: "ok", Type: geo.Boolean},
	}}
	rows := []geo.Row{
		{ID: "440306001", Values: []any{"新安街道", int64(12345), 1.5, when, true}},
		{ID: "440306002", Values: []any{"西乡街道", int64(0), nil, nil, false}},
	}
	out := write(t, "xlsx", s, rows, export.Options{IDField: "code"})
	f, err := excelize.OpenReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	if sheet != "宝安区 objects_stats" {
		t.Errorf("sheet %q", sheet)
	}
	got, err := f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"code", "name", "total", "avg_hours", "updated_at", "ok"},
		{"440306001", "新安街道", "12,345", "1.50", "2026-11-24 00:30:15", "TRUE"},
		{"440306002", "西乡街道", "0", "", "", "FALSE"},
	}
	if len(got) != len(want) {
		t.Fatalf("rows %q", got)
	}
	for i := range want {
		for j := range want[i] {
			if j >= len(got[i]) && want[i][j] == "" {
				continue
			}
			if j >= len(got[i]) || got[i][j] != want[i][j] {
				t.Errorf("row %d: %q, want %q", i+1, got[i], want[i])
				break
			}
		}
	}
	// The stored value is the number itself, not its formatted text.
	if v, _ := f.GetCellValue(sheet, "C2", excelize.Options{RawCellValue: true}); v != "12345" {
		t.Errorf("C2 raw %q, want 12345", v)
	}
	panes, err := f.GetPanes(sheet)
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("panes %+v %v, want the header row frozen", panes, err)
	}

	if _, err := export.NewXLSX(&bytes.Buffer{}, polygonSchema, export.Options{}); err == nil {
		t.Error("xlsx took a table with geometry")
	}
}
