package data_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gridmap/data"
	"gridmap/data/pgtest"
)

// month is the first of t's month, UTC, moved by add months.
func month(t time.Time, add int) time.Time {
	return time.Date(t.Year(), t.Month()+time.Month(add), 1, 0, 0, 0, 0, time.UTC)
}

func feedBase(m time.Time) int64 { return int64(m.Year()*100+int(m.Month())) * 10_000_000_000 }

// planRelations are the tables a plan of sql reads (EXPLAIN (FORMAT
// JSON), which runs the executor's start and so its initial pruning),
// sorted, under the plan cache mode given.
func planRelations(t *testing.T, s *data.Store, mode, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = "+mode); err != nil {
			return err
		}
		var plan []map[string]any
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			return err
		}
		var walk func(n map[string]any)
		walk = func(n map[string]any) {
			if r, ok := n["Relation Name"].(string); ok && !slices.Contains(out, r) {
				out = append(out, r)
			}
			if ps, ok := n["Plans"].([]any); ok {
				for _, p := range ps {
					walk(p.(map[string]any))
				}
			}
		}
		walk(plan[0]["Plan"].(map[string]any))
		return nil
	})
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	sort.Strings(out)
	return out
}

// TestPartitionPruning: the feed read after a cursor, an event by code and
// a list by time range read only the partitions that can hold their rows,
// with a custom plan (the values known when planning) and a generic one
// (pruned when the executor starts).
func TestPartitionPruning(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	now := time.Now()
	cur := month(now, 0)
	// Events of two past months (made on demand: they are before the
	// months made ahead) and of now.
	early := time.Date(cur.Year(), cur.Month()-3, 15, 10, 0, 0, 0, cst)
	mid := time.Date(cur.Year(), cur.Month()-2, 15, 10, 0, 0, 0, cst)
	evEarly := c.created(t, early, c.report(t, c.grids[0], "0102"))[0]
	evMid := c.created(t, mid, c.report(t, c.grids[1], "0102"))[0]
	c.created(t, now, c.report(t, c.grids[2], "0102"))
	_, newest, err := s.FeedBounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newest < feedBase(cur) || newest >= feedBase(month(now, 1)) {
		t.Fatalf("newest seq %d is not of this month (%d…)", newest, feedBase(cur))
	}
	feedParts := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, "event_feed_"+month(now, i).Format("200601"))
		}
		return out
	}
	eventParts := func(m time.Time) []string { return []string{"events_" + m.Format("200601")} }
	list := func(f data.EventFilter) (string, []any) {
		sql, args, err := data.ListEventsSQL(f, now)
		if err != nil {
			t.Fatal(err)
		}
		return sql, args
	}
	from, to := mid.AddDate(0, 0, -5), mid.AddDate(0, 0, 5)
	listSQL, listArgs := list(data.EventFilter{From: &from, To: &to})
	for _, tc := range []struct {
		name string
		sql  string
		args []any
		want []string
	}{
		{"feed from the start", data.ReadFeedSQL, []any{int64(0), 100},
			append(feedParts(0, data.FeedPartitionsAhead), "event_feed_before")},
		{"feed after this month's newest", data.ReadFeedSQL, []any{newest, 100}, feedParts(0, data.FeedPartitionsAhead)},
		{"feed after the month ahead's first", data.ReadFeedSQL, []any{feedBase(month(now, 1)) + 7, 100}, feedParts(1, data.FeedPartitionsAhead)},
		{"event by code", data.EventByCodeSQL, []any{evEarly.Code, month(early, 0).AddDate(0, 0, 14)}, eventParts(month(early, 0))},
		{"list by time range", listSQL, listArgs, eventParts(month(mid, 0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
				got := planRelations(t, s, mode, tc.sql, tc.args...)
				// The joins of the event queries read event_classes and
				// departments too: only the partitions are compared.
				got = slices.DeleteFunc(got, func(r string) bool { return r == "event_classes" || r == "departments" })
				want := slices.Clone(tc.want)
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: the plan reads %v, want %v", mode, got, want)
				}
			}
		})
	}
	// And the answers are the rows.
	if ev, err := s.GetEvent(ctx, evEarly.Code, true); err != nil || ev.Code != evEarly.Code || len(ev.Log) != 1 {
		t.Errorf("GetEvent(%s): %+v %v", evEarly.Code, ev, err)
	}
	page, err := s.ListEvents(ctx, data.EventFilter{From: &from, To: &to})
	if err != nil || len(page.Events) != 1 || page.Events[0].Code != evMid.Code {
		t.Errorf("ListEvents(%s…%s): %+v %v, want %s", from, to, page, err, evMid.Code)
	}
	if _, err := s.GetEvent(ctx, "not a code", false); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("GetEvent(not a code): %v, want ErrNotFound", err)
	}
}

// TestRetainFeed: retention drops the feed's partitions wholly before the
// month N back, records the highest seq dropped as pruned, and keeps the
// rest; events are not touched.
func TestRetainFeed(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	ctx := context.Background()
	now := time.Now()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := s.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	entry := func(seq int64) {
		exec(`INSERT INTO event_feed (seq, kind, layer, codes, bbox, body) VALUES ($1, 'unit', 'base', '{}', '{0,0,1,1}', '{}')`, seq)
	}
	// Rows of before the partitioning (migration 010 keeps them below the
	// first month's), then two past months made by hand.
	entry(5)
	entry(7)
	if _, err := s.RetainFeed(ctx, -1, time.Second); err == nil {
		t.Error("RetainFeed(-1): no error")
	}
	got, err := s.RetainFeed(ctx, 0, time.Second)
	if err != nil || len(got) != 1 || got[0].Name != "event_feed_before" || got[0].Entries != 2 || got[0].MaxSeq == nil || *got[0].MaxSeq != 7 {
		t.Fatalf("RetainFeed(0): %+v %v, want event_feed_before with 2 entries through 7", got, err)
	}
	if pruned, _, err := s.FeedBounds(ctx); err != nil || pruned != 7 {
		t.Errorf("pruned through %d %v, want 7", pruned, err)
	}
	exec(`SELECT gridmap_feed_partitions($1, $2)`, month(now, -3), month(now, -1))
	entry(feedBase(month(now, -3)) + 100)
	entry(feedBase(month(now, -2)) + 200)
	entry(feedBase(month(now, -1)) + 300)
	for _, tc := range []struct {
		months int
		want   []string
	}{
		{3, nil},
		{2, []string{"event_feed_" + month(now, -3).Format("200601")}},
		{2, nil},
		{0, []string{"event_feed_" + month(now, -2).Format("200601"), "event_feed_" + month(now, -1).Format("200601")}},
	} {
		got, err := s.RetainFeed(ctx, tc.months, time.Second)
		if err != nil {
			t.Fatalf("RetainFeed(%d): %v", tc.months, err)
		}
		var names []string
		for _, d := range got {
			names = append(names, d.Name)
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("RetainFeed(%d) dropped %v, want %v", tc.months, names, tc.want)
		}
	}
	if pruned, _, err := s.FeedBounds(ctx); err != nil || pruned != feedBase(month(now, -1))+300 {
		t.Errorf("pruned through %d %v, want %d", pruned, err, feedBase(month(now, -1))+300)
	}
	// This month's partition and those ahead stay; the feed goes on.
	ps, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var feed []string
	for _, p := range ps {
		if p.Table == "event_feed" {
			feed = append(feed, p.Name)
		}
	}
	if len(feed) != data.FeedPartitionsAhead+1 || feed[0] != "event_feed_"+month(now, 0).Format("200601") {
		t.Errorf("feed partitions after retention: %v", feed)
	}
}

// TestMigration010 converts tables holding rows: every event, log entry
// and feed entry is kept, in the partition of its month, the counts stay,
// an event code stays unique across partitions, and the feed goes on
// above the seqs clients hold.
func TestMigration010(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmpty(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%.80s: %v", sql, err)
		}
	}
	// The schema as it was before 010.
	exec(`CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		v := strings.TrimSuffix(filepath.Base(f), ".sql")
		if v >= "010" {
			break
		}
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(sql))
		exec(`INSERT INTO schema_migrations (version) VALUES ($1)`, v)
	}
	exec(`INSERT INTO departments (code, name) VALUES ('d1', 'D1')`)
	exec(`INSERT INTO event_classes (code, name, department_code, limit_amount, limit_unit) VALUES ('0101', 'C', 'd1', 1, 'working_days')`)
	codes := []string{"44030820260115000001", "44030820260131000001", "44030820260201000001"}
	for i, code := range codes {
		exec(`INSERT INTO events (code, class_code, status, geom, input_lon, input_lat, grid_code, location, department_code, source, reported_at, deadline, updated_at)
			VALUES ($1, '0101', $2, 'SRID=4326;POINT(114.2 22.6)', 114.2, 22.6, '440308001001001', '{}', 'd1', 'hotline', $3, $3, $3)`,
			code, []string{"reported", "closed", "reported"}[i], time.Date(2026, 1, 15+i*9, 3, 0, 0, 0, time.UTC))
		exec(`INSERT INTO event_log (event_code, n, to_status, actor, at) VALUES ($1, 1, 'reported', 'a', now())`, code)
	}
	exec(`INSERT INTO event_log (event_code, n, from_status, to_status, actor, at) VALUES ($1, 2, 'reported', 'closed', 'a', now())`, codes[1])
	for i := 1; i <= 3; i++ {
		exec(`INSERT INTO event_feed (seq, kind, event_code, status, class_code, grid_code, lon, lat, body)
			VALUES (nextval('event_feed_seq'), 'created', $1, 'reported', '0101', '440308001001001', 114.2, 22.6, '{}')`, codes[i-1])
	}
	countsBefore := tableText(t, conn, `SELECT grid_code, status, n FROM event_counts ORDER BY 1, 2`)

	applied, err := data.Migrate(ctx, url)
	if err != nil || !slices.Contains(applied, "010_partition_events") {
		t.Fatalf("Migrate: %v %v", applied, err)
	}
	for _, c := range []struct{ sql, want string }{
		{`SELECT tableoid::regclass::text, code, reported_on FROM events ORDER BY code`,
			"events_202601 44030820260115000001 2026-01-15\nevents_202601 44030820260131000001 2026-01-31\nevents_202602 44030820260201000001 2026-02-01"},
		{`SELECT tableoid::regclass::text, event_code, n FROM event_log ORDER BY 2, 3`,
			"event_log_202601 44030820260115000001 1\nevent_log_202601 44030820260131000001 1\nevent_log_202601 44030820260131000001 2\nevent_log_202602 44030820260201000001 1"},
		{`SELECT tableoid::regclass::text, seq FROM event_feed ORDER BY seq`, "event_feed_before 1\nevent_feed_before 2\nevent_feed_before 3"},
		{`SELECT grid_code, status, n FROM event_counts ORDER BY 1, 2`, countsBefore},
	} {
		if got := tableText(t, conn, c.sql); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.sql, got, c.want)
		}
	}
	// A code is unique across partitions: the same again is a duplicate
	// key, and with another date no code at all.
	for _, c := range []struct{ reportedOn, state string }{{"2026-01-15", "23505"}, {"2026-02-15", "23514"}} {
		_, err := conn.Exec(ctx, `INSERT INTO events (code, reported_on, class_code, status, geom, input_lon, input_lat, grid_code, location, department_code, source, reported_at, deadline, updated_at)
			VALUES ($1, $2, '0101', 'reported', 'SRID=4326;POINT(114.2 22.6)', 114.2, 22.6, '440308001001001', '{}', 'd1', 'hotline', now(), now(), now())`,
			codes[0], c.reportedOn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.state {
			t.Errorf("%s again on %s: %v, want SQLSTATE %s", codes[0], c.reportedOn, err, c.state)
		}
	}
	// A log entry needs its event, and deleting an event deletes its log
	// (the foreign keys go from each month of the log to the same month of
	// the events).
	_, err = conn.Exec(ctx, `INSERT INTO event_log (event_code, reported_on, n, to_status, actor, at) VALUES ('44030820260120000009', '2026-01-20', 1, 'reported', 'a', now())`)
	if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "23503" {
		t.Errorf("a log entry of no event: %v, want SQLSTATE 23503", err)
	}
	exec(`DELETE FROM events WHERE code = $1`, codes[2])
	if got := tableText(t, conn, `SELECT count(*) FROM event_log WHERE event_code = '`+codes[2]+`'`); got != "0" {
		t.Errorf("log of a deleted event: %s entries", got)
	}
	// The next feed seq is of this month, above the seqs kept.
	var seq int64
	if err := conn.QueryRow(ctx, `SELECT event_feed_seq_base() + nextval('event_feed_seq')`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if want := feedBase(month(time.Now(), 0)) + 4; seq != want {
		t.Errorf("next seq %d, want %d", seq, want)
	}
}

// tableText is the rows of sql, one line each, columns space-separated.
func tableText(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var lines []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			switch v := v.(type) {
			case time.Time:
				cells = append(cells, v.Format(time.DateOnly))
			default:
				cells = append(cells, fmt.Sprint(v))
			}
		}
		lines = append(lines, strings.Join(cells, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(lines, "\n")
}
