package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/data"
)

// walkSpeed is a grid worker's pace on patrol (m/s), walkFix how often a
// simulated phone takes a fix; the fixes go in as one batch per second,
// as phones' batches would arrive from many workers.
const (
	walkSpeed = 1.3
	walkFix   = 5 * time.Second
)

// walker is one simulated worker inside their grid.
type walker struct {
	id       int64
	grid     string
	shape    orb.MultiPolygon
	lon, lat float64
	heading  float64 // radians, 0 = east
	next     time.Time
}

// step moves the walker for dt seconds, turning about at the grid's edge
// (a worker patrols their own grid).
func (w *walker) step(rng *rand.Rand, dt float64) {
	for range 8 {
		h := w.heading + (rng.Float64()-0.5)*0.8
		d := walkSpeed * dt
		lon := w.lon + d*math.Cos(h)/(111320*math.Cos(w.lat*math.Pi/180))
		lat := w.lat + d*math.Sin(h)/110540
		if planar.MultiPolygonContains(w.shape, orb.Point{lon, lat}) {
			w.lon, w.lat, w.heading = lon, lat, h
			return
		}
		w.heading += math.Pi/2 + rng.Float64()*math.Pi // turn away from the edge
	}
}

// simWalk walks n workers inside their grids until ctx ends, posting
// their fixes through the patrol ingest (jump checks, tracks and live
// positions as a phone's would). It returns at once when no worker has a
// grid.
func simWalk(ctx context.Context, s *data.Store, n int, seed uint64, st *simStats) (int, error) {
	ws, err := s.PatrolWalkers(ctx, n)
	if err != nil {
		return 0, err
	}
	if len(ws) == 0 {
		return 0, nil
	}
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		return 0, err
	}
	shapes := map[string]orb.MultiPolygon{}
	for _, u := range units {
		if u.Layer == "base" {
			shapes[u.Code] = u.Geometry
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x3a1c))
	now := time.Now()
	walkers := make([]*walker, 0, len(ws))
	for _, w := range ws {
		shape := shapes[w.Grid]
		if len(shape) == 0 {
			continue
		}
		c, _ := planar.CentroidArea(shape)
		if !planar.MultiPolygonContains(shape, c) {
			c = shape[0][0][0] // a concave grid: start at a corner, the first steps go inward
		}
		walkers = append(walkers, &walker{id: w.Worker, grid: w.Grid, shape: shape, lon: c[0], lat: c[1],
			heading: rng.Float64() * 2 * math.Pi, next: now.Add(time.Duration(rng.Int64N(int64(walkFix))))})
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-tick.C:
				var batch []data.PatrolPoint
				for _, w := range walkers {
					if t.Before(w.next) {
						continue
					}
					w.step(rng, walkFix.Seconds())
					w.next = w.next.Add(walkFix)
					acc := 5 + rng.Float64()*10
					batch = append(batch, data.PatrolPoint{Worker: w.id, T: t.Truncate(time.Millisecond), Lon: w.lon, Lat: w.lat, AccuracyM: &acc, GridCode: w.grid})
				}
				if len(batch) == 0 {
					continue
				}
				op, cancel := simOp(ctx)
				res, err := s.IngestPatrolPoints(op, batch)
				cancel()
				if err != nil {
					st.fail(fmt.Errorf("patrol points: %w", err))
					continue
				}
				st.fixes.Add(int64(res.Stored))
			}
		}
	}()
	return len(walkers), nil
}
