package data

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

// PastEvent is an event that happened before it is stored: its report and
// its log up to now, as a history (the demo's, another system's) brings it.
type PastEvent struct {
	NewEvent             // Location.Grid set
	ReportedAt time.Time // the report, Log[0].At
	Deadline   time.Time
	Department string     // where the event stands at the end of Log
	Log        []LogEntry // the report (n 1), then every move, in time order
}

// WritePastEvents stores past events with their logs in one transaction,
// with COPY. Codes continue each district's daily numbering
// (event_code_seq) in report order, so that live reports go on from the
// last one; the status, handled_at, closed_at, updated_at and version
// follow from the log. No feed rows are written: history is not live
// news. The logs are trusted (not checked against grid.CheckTransition).
// It returns the codes, in the order of evs.
func (s *Store) WritePastEvents(ctx context.Context, evs []PastEvent) ([]string, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	order := reportOrder(evs)
	codes, err := reservePastCodes(ctx, tx, evs, order, cfg.Calendar.Location())
	if err != nil {
		return nil, err
	}
	if err := s.pastEventMonths(ctx, tx, codes); err != nil {
		return nil, err
	}
	if err := copyPastEvents(ctx, tx, evs, order, codes); err != nil {
		return nil, err
	}
	return codes, tx.Commit(ctx)
}

// pastEventMonths makes the partitions of the months the codes were
// reported in, in tx (history reaches back before the months made ahead).
func (s *Store) pastEventMonths(ctx context.Context, tx pgx.Tx, codes []string) error {
	var first, last time.Time
	for i, c := range codes {
		day, ok := eventDay(c)
		if !ok {
			return fmt.Errorf("past event code %q", c)
		}
		if i == 0 || day.Before(first) {
			first = day
		}
		if i == 0 || day.After(last) {
			last = day
		}
	}
	return s.ensureEventMonths(ctx, tx, first, last)
}

// reportOrder is the indexes of evs by report time (ties in their order).
func reportOrder(evs []PastEvent) []int {
	order := make([]int, len(evs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return evs[order[a]].ReportedAt.Before(evs[order[b]].ReportedAt) })
	return order
}

// pastDay is a district's numbering day.
type pastDay struct{ district, day string }

func pastDayOf(e *PastEvent, loc *time.Location) pastDay {
	return pastDay{e.Location.Grid.Code[:6], e.ReportedAt.In(loc).Format(time.DateOnly)}
}

// reservePastCodes takes the next numbers of each district and local date
// (after any given already) in key order like reportTx, so that a live
// report waits for this transaction and goes on from the last number used
// here, and gives them to the events in report order.
func reservePastCodes(ctx context.Context, tx pgx.Tx, evs []PastEvent, order []int, loc *time.Location) ([]string, error) {
	perDay := map[pastDay]int{}
	for i := range evs {
		perDay[pastDayOf(&evs[i], loc)]++
	}
	keys := make([]pastDay, 0, len(perDay))
	for k := range perDay {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].district < keys[j].district || keys[i].district == keys[j].district && keys[i].day < keys[j].day
	})
	districts, days, counts := make([]string, len(keys)), make([]string, len(keys)), make([]int32, len(keys))
	for i, k := range keys {
		districts[i], days[i], counts[i] = k.district, k.day, int32(perDay[k])
	}
	rows, err := tx.Query(ctx, `INSERT INTO event_code_seq (district, day, last)
		SELECT d, day, n FROM unnest($1::text[], $2::date[], $3::int[]) AS t(d, day, n) ORDER BY d, day
		ON CONFLICT (district, day) DO UPDATE SET last = event_code_seq.last + EXCLUDED.last
		RETURNING district, day::text, last`, districts, days, counts)
	if err != nil {
		return nil, err
	}
	next := map[pastDay]int{}
	if err := forEach(rows, func() error {
		var k pastDay
		var last int
		if err := rows.Scan(&k.district, &k.day, &last); err != nil {
			return err
		}
		next[k] = last - perDay[k] + 1
		return nil
	}); err != nil {
		return nil, fmt.Errorf("event code numbers: %w", err)
	}
	codes := make([]string, len(evs))
	for _, i := range order {
		k := pastDayOf(&evs[i], loc)
		if codes[i], err = grid.EventCode(k.district, evs[i].ReportedAt.In(loc), next[k]); err != nil {
			return nil, err
		}
		next[k]++
	}
	return codes, nil
}

// copyPastEvents writes the events and their log entries, in report order.
func copyPastEvents(ctx context.Context, tx pgx.Tx, evs []PastEvent, order []int, codes []string) error {
	eventRows := make([][]any, 0, len(evs))
	var logRows [][]any
	for _, i := range order {
		row, err := pastEventRow(&evs[i], codes[i])
		if err != nil {
			return err
		}
		eventRows = append(eventRows, row)
		logRows = append(logRows, pastLogRows(&evs[i], codes[i])...)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"code", "reported_on", "class_code", "status", "geom", "crs", "input_lon", "input_lat",
		"grid_code", "location", "department_code", "description", "source", "reporter", "media",
		"occurred_at", "reported_at", "deadline", "handled_at", "closed_at", "updated_at", "version"}, pgx.CopyFromRows(eventRows)); err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"event_log"}, []string{"event_code", "reported_on", "n", "from_status", "to_status", "actor", "note",
		"department_code", "at"}, pgx.CopyFromRows(logRows)); err != nil {
		return fmt.Errorf("copy event log: %w", err)
	}
	return nil
}

// pastEventRow is e's row of events: where it stands and when it was
// first handled and closed, from its log.
func pastEventRow(e *PastEvent, code string) ([]any, error) {
	locJSON, err := json.Marshal(e.Location)
	if err != nil {
		return nil, err
	}
	geom, err := geo.EWKB(orb.Point{e.Lon, e.Lat})
	if err != nil {
		return nil, err
	}
	media := e.Media
	if media == nil {
		media = []string{}
	}
	last := e.Log[len(e.Log)-1]
	var handled, closed *time.Time
	for _, l := range e.Log {
		if l.To == grid.StatusHandled && handled == nil {
			at := l.At
			handled = &at
		}
		if l.To.Final() {
			at := l.At
			closed = &at
		}
	}
	day, _ := eventDay(code)
	return []any{code, day, e.Class, string(last.To), geom, string(e.CRS), e.InputLon, e.InputLat,
		e.Location.Grid.Code, locJSON, e.Department, e.Description, string(e.Source), e.Reporter, media,
		e.OccurredAt, e.ReportedAt, e.Deadline, handled, closed, last.At, len(e.Log)}, nil
}

// pastLogRows are e's rows of event_log.
func pastLogRows(e *PastEvent, code string) [][]any {
	rows := make([][]any, len(e.Log))
	day, _ := eventDay(code)
	for i, l := range e.Log {
		var from, dept any
		if l.From != "" {
			from = string(l.From)
		}
		if l.Department != "" {
			dept = l.Department
		}
		rows[i] = []any{code, day, l.N, from, string(l.To), l.Actor, l.Note, dept, l.At}
	}
	return rows
}

// ReportActor is who an event's first log entry names: the reporter, else
// the source.
func (e NewEvent) ReportActor() string { return reportActor(e) }
