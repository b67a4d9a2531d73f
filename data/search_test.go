package data_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"gridmap/data/pgtest"
)

// TestSearchIndexesCJK: in this cluster's locale pg_trgm makes trigrams
// of Chinese text (a locale whose classification took CJK for
// punctuation would give none, and the indexes of migration 009 would
// never serve a Chinese search), and the planner uses the trigram indexes
// for a pattern of three characters and the characters indexes for
// shorter ones.
func TestSearchIndexesCJK(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT cardinality(show_trgm('梅沙街道'))`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 { // "  梅", " 梅沙", "梅沙街", "沙街道", "街道 "
		t.Errorf("show_trgm('梅沙街道') has %d trigrams, want 5", n)
	}
	// On the small demo city a scan is cheaper than any index: forbid
	// scans, and drop (in a transaction rolled back) the other partial
	// indexes of current units, which a bitmap would otherwise read whole.
	rollback := errors.New("rollback")
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off;
			DROP INDEX units_current_geom, units_current_code, units_current_level, units_current_parent, units_current_code_any_layer`); err != nil {
			return err
		}
		for _, c := range []struct{ sql, index string }{
			{`SELECT code FROM units WHERE valid_to IS NULL AND name LIKE '%梅沙街%'`, "units_current_name_trgm"},
			{`SELECT code FROM events WHERE description ILIKE '%梅沙居委会%'`, "events_description_trgm"},
			{`SELECT code FROM units WHERE valid_to IS NULL AND regexp_split_to_array(lower(name), '') @> '{梅,沙}'`, "units_current_name_chars"},
			{`SELECT code FROM events WHERE regexp_split_to_array(lower(description), '') @> '{沙}'`, "events_description_chars"},
		} {
			rows, err := tx.Query(ctx, `EXPLAIN `+c.sql)
			if err != nil {
				return err
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			// On a partitioned table the scans are of the index's
			// partitions (events by month).
			rows, err = tx.Query(ctx, `SELECT $1::text UNION ALL SELECT i.inhrelid::regclass::text FROM pg_inherits i WHERE i.inhparent = $1::text::regclass`, c.index)
			if err != nil {
				return err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			p := strings.Join(plan, "\n")
			if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(p, "Bitmap Index Scan on "+n+" ") }) {
				t.Errorf("%s:\n%s\nwant a scan of %s (or of its partitions)", c.sql, p, c.index)
			}
		}
		return rollback
	})
	if err != rollback {
		t.Fatal(err)
	}
}
