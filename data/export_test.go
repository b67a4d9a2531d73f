package data

import "time"

// The queries whose plans the partition tests read (EXPLAIN).
const (
	ReadFeedSQL    = readFeedSQL
	EventByCodeSQL = eventByCodeSQL
)

// ListEventsSQL is the query ListEvents runs for f, and its arguments.
func ListEventsSQL(f EventFilter, now time.Time) (string, []any, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	return f.listSQL(now)
}
