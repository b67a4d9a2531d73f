package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

	"gridmap/data"
	"gridmap/grid"
)

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	e := data.FeedEntry{Seq: 1, Kind: "transition", Status: "dispatched", From: "registered", Class: "0102", GridCode: "440304001001", Lon: 114.05, Lat: 22.54}
	for _, c := range []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"bbox around", Filter{BBox: &[4]float64{114, 22.5, 114.1, 22.6}}, true},
		{"bbox beside", Filter{BBox: &[4]float64{113, 22.5, 114, 22.6}}, false},
		{"unit above", Filter{Unit: "440304"}, true},
		{"other unit", Filter{Unit: "440305"}, false},
		{"enters a status", Filter{Statuses: map[grid.EventStatus]bool{"dispatched": true}}, true},
		{"leaves a status", Filter{Statuses: map[grid.EventStatus]bool{"registered": true}}, true},
		{"neither status", Filter{Statuses: map[grid.EventStatus]bool{"closed": true}}, false},
		{"class", Filter{Classes: map[string]bool{"0102": true}}, true},
		{"other class", Filter{Classes: map[string]bool{"0103": true}}, false},
		{"all members", Filter{Unit: "4403", Classes: map[string]bool{"0102": true}, Statuses: map[grid.EventStatus]bool{"dispatched": true}}, true},
	} {
		if got := c.f.Match(e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFilterMatchUnitChange: status and class filters are about events
// and leave unit changes out; bbox matches the changed area, unit and
// scopes the codes (base layer; other layers are read whole by scopes).
func TestFilterMatchUnitChange(t *testing.T) {
	t.Parallel()
	e := data.FeedEntry{Seq: 1, Kind: data.UnitChangeKind, Layer: grid.BaseLayer, Codes: []string{"440304001001", "440304002003"},
		BBox: &[4]float64{114.0, 22.5, 114.1, 22.6}}
	other := e
	other.Layer = "police"
	other.Codes = []string{"P-17"}
	for _, c := range []struct {
		name string
		e    data.FeedEntry
		f    Filter
		want bool
	}{
		{"empty", e, Filter{}, true},
		{"status", e, Filter{Statuses: map[grid.EventStatus]bool{"reported": true}}, false},
		{"class", e, Filter{Classes: map[string]bool{"0102": true}}, false},
		{"bbox overlapping", e, Filter{BBox: &[4]float64{114.05, 22.55, 115, 23}}, true},
		{"bbox beside", e, Filter{BBox: &[4]float64{114.2, 22.5, 114.3, 22.6}}, false},
		{"unit of a code", e, Filter{Unit: "440304002"}, true},
		{"other unit", e, Filter{Unit: "440304003"}, false},
		{"unit, other layer", other, Filter{Unit: "440304"}, false},
		{"scope of a code", e, Filter{Scopes: []string{"440304001"}}, true},
		{"other scope", e, Filter{Scopes: []string{"440305"}}, false},
		{"scope, other layer", other, Filter{Scopes: []string{"440305"}}, true},
	} {
		if got := c.f.Match(c.e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

// testHub is a hub whose feed starts after seq start, with no store: what
// it is given comes through publish.
func testHub(start int64, ring int) *Hub {
	return &Hub{log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: Metrics{Subscribers: nopMetric{}, Dropped: nopMetric{}},
		ring: ring, ringStart: start, last: start, subs: map[*Subscription]struct{}{}, wake: make(chan struct{}, 1)}
}

func entries(from, to int64, class string) []data.FeedEntry {
	var out []data.FeedEntry
	for s := from; s <= to; s++ {
		out = append(out, data.FeedEntry{Seq: s, Class: class})
	}
	return out
}

func seqs(es []data.FeedEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestHubResumeFromRing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		after   int64
		f       Filter
		backlog []int64
		next    []int64 // of the batch 16..17 published afterwards
	}{
		{"from now", -1, Filter{}, nil, []int64{16, 17}},
		{"from the ring's start", 10, Filter{}, []int64{11, 12, 13, 14, 15}, []int64{16, 17}},
		{"from inside the ring", 13, Filter{}, []int64{14, 15}, []int64{16, 17}},
		{"filtered", 10, Filter{Classes: map[string]bool{"b": true}}, []int64{14, 15}, []int64{17}},
		{"ahead of this server", 16, Filter{}, nil, []int64{17}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := testHub(10, 100)
			h.publish(append(entries(11, 13, "a"), entries(14, 15, "b")...))
			sub, backlog, gap, err := h.Subscribe(context.Background(), c.after, c.f)
			if err != nil || gap != nil {
				t.Fatalf("Subscribe: %v %+v", err, gap)
			}
			defer h.Unsubscribe(sub)
			if !slices.Equal(seqs(backlog), c.backlog) {
				t.Errorf("backlog %v, want %v", seqs(backlog), c.backlog)
			}
			h.publish([]data.FeedEntry{{Seq: 16, Class: "a"}, {Seq: 17, Class: "b"}})
			var got []int64
			select {
			case b := <-sub.C():
				got = seqs(b)
			default:
			}
			if !slices.Equal(got, c.next) {
				t.Errorf("then %v, want %v", got, c.next)
			}
		})
	}
}

func TestHubDropsSlowSubscriber(t *testing.T) {
	t.Parallel()
	h := testHub(0, 100)
	slow, _, _, _ := h.Subscribe(context.Background(), -1, Filter{})
	defer h.Unsubscribe(slow)
	for i := int64(1); i <= SubscriberQueue+1; i++ {
		h.publish(entries(i, i, "a"))
	}
	select {
	case <-slow.Gone():
	default:
		t.Fatalf("a subscriber that read nothing of %d batches is still subscribed", SubscriberQueue+1)
	}
	if len(h.subs) != 0 {
		t.Errorf("%d subscribers left", len(h.subs))
	}
}

func TestHubRingTrim(t *testing.T) {
	t.Parallel()
	h := testHub(0, 10)
	h.publish(entries(1, 19, "a"))
	if h.ringStart != 0 || len(h.entries) != 19 {
		t.Fatalf("under twice the ring: start %d, %d entries", h.ringStart, len(h.entries))
	}
	h.publish(entries(20, 25, "a"))
	if h.ringStart != 15 || len(h.entries) != 10 || h.entries[0].Seq != 16 {
		t.Errorf("trimmed: start %d, %d entries from %d; want 15, 10 from 16", h.ringStart, len(h.entries), h.entries[0].Seq)
	}
}

// A subscriber that does not read is dropped once what is queued for it
// passes its bound in bytes, even in few entries; one that reads keeps up.
func TestHubBoundsQueueBytes(t *testing.T) {
	t.Parallel()
	h := testHub(0, 100)
	slow, _, _, _ := h.Subscribe(context.Background(), -1, Filter{})
	defer h.Unsubscribe(slow)
	reader, _, _, _ := h.Subscribe(context.Background(), -1, Filter{})
	defer h.Unsubscribe(reader)
	body := make([]byte, 64<<10)
	n := int64(SubscriberQueueBytes/len(body) + 1)
	for i := int64(1); i <= n; i++ {
		h.publish([]data.FeedEntry{{Seq: i, Class: "a", Body: body}})
		if got := seqs(<-reader.C()); !slices.Equal(got, []int64{i}) {
			t.Fatalf("reader got %v, want [%d]", got, i)
		}
	}
	if n >= SubscriberQueue {
		t.Fatalf("the test needs fewer entries (%d) than the entry bound", n)
	}
	select {
	case <-slow.Gone():
	default:
		t.Fatalf("a subscriber that read nothing of %d entries of %d bytes is still subscribed", n, len(body))
	}
	select {
	case <-reader.Gone():
		t.Fatal("the subscriber that read was dropped")
	default:
	}
	// What was queued for the slow one is merged into one batch, in order.
	h2 := testHub(0, 100)
	sub, _, _, _ := h2.Subscribe(context.Background(), -1, Filter{})
	defer h2.Unsubscribe(sub)
	h2.publish(entries(1, 2, "a"))
	h2.publish(entries(3, 3, "a"))
	if got := seqs(<-sub.C()); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("queued %v, want [1 2 3]", got)
	}
}

// The hub holds at most its limit of subscriptions; one that ends frees
// its place.
func TestHubMaxSubscribers(t *testing.T) {
	t.Parallel()
	h := testHub(0, 100)
	h.max = 2
	a, _, _, err := h.Subscribe(context.Background(), -1, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.Subscribe(context.Background(), 0, Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.Subscribe(context.Background(), -1, Filter{}); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("third subscription: %v, want ErrTooManySubscribers", err)
	}
	h.Unsubscribe(a)
	if _, _, _, err := h.Subscribe(context.Background(), -1, Filter{}); err != nil {
		t.Fatalf("after one left: %v", err)
	}
}
