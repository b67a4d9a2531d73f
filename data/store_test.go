package data

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadCatalogue(t *testing.T) {
	t.Parallel()
	bad := errors.New("bad row")
	for _, tc := range []struct {
		name, in string
		want     [][]string
		wantErr  string
	}{
		{"header only", "a,b\n", nil, ""},
		{"rows", "a,b\n1,2\n3,4\n", [][]string{{"1", "2"}, {"3", "4"}}, ""},
		{"empty", "", nil, "thing CSV header: EOF"},
		{"short row", "a,b\n1,2\n3\n", nil, "thing CSV: record on line 3: wrong number of fields"},
		{"row refused", "a,b\n1,2\nx,4\n", nil, "thing CSV line 3: bad row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readCatalogue(strings.NewReader(tc.in), "thing", 2, func(rec []string) ([]string, error) {
				if rec[0] == "x" {
					return nil, bad
				}
				return rec, nil
			})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
		})
	}
}
