package data

import (
	"context"
	"errors"
	"sync"
)

// Reporter stores reports that arrive one by one (HTTP requests) in
// shared transactions: while a writer commits a batch, the next reports
// queue up and go in the following one (group commit). A report is
// answered when the transaction holding it has committed, as if it had
// been alone; under load a transaction carries many reports, and the
// per-transaction costs (begin, config check, code numbers, feed lock,
// commit) are paid once for all of them.
type Reporter struct {
	store       *Store
	maxBatch    int
	afterCommit func()
	queue       chan *pending
	wg          sync.WaitGroup
	stop        chan struct{}
	exited      chan struct{} // closed when the writers are gone
	once        sync.Once
}

type pending struct {
	ctx  context.Context
	ev   NewEvent
	done chan ReportResult
}

// NewReporter starts writers goroutines (default 4), each taking up to
// maxBatch queued reports per transaction (default 256). afterCommit, when
// set, runs after each committed batch before its reports are answered (a
// server drops the tiles the batch changed, so a reporter's next tile
// request shows its event).
func NewReporter(s *Store, writers, maxBatch int, afterCommit func()) *Reporter {
	if writers <= 0 {
		writers = 4
	}
	if maxBatch <= 0 {
		maxBatch = 256
	}
	r := &Reporter{store: s, maxBatch: maxBatch, afterCommit: afterCommit, queue: make(chan *pending, 4*maxBatch), stop: make(chan struct{}), exited: make(chan struct{})}
	for range writers {
		r.wg.Add(1)
		go r.write()
	}
	return r
}

// Report stores one report and returns its result once committed. err is
// a failure of the transaction (the report was not stored) or ctx's.
func (r *Reporter) Report(ctx context.Context, ev NewEvent) (ReportResult, error) {
	p := &pending{ctx: ctx, ev: ev, done: make(chan ReportResult, 1)}
	select {
	case r.queue <- p:
	case <-r.stop:
		return ReportResult{}, ErrReporterClosed
	case <-ctx.Done():
		return ReportResult{}, ctx.Err()
	}
	// Once queued, wait for the answer even if ctx ends: the report may
	// be committed already, and the caller must not be told otherwise.
	var res ReportResult
	select {
	case res = <-p.done:
	case <-r.exited:
		select {
		case res = <-p.done:
		default: // queued after the writers drained the queue: never written
			return ReportResult{}, ErrReporterClosed
		}
	}
	if res.Err != nil && res.Event == nil && isBatchError(res.Err) {
		return ReportResult{}, res.Err.(*batchError).err
	}
	return res, nil
}

// batchError carries a whole-transaction failure through a pending's
// channel.
type batchError struct{ err error }

func (e *batchError) Error() string { return e.err.Error() }

func isBatchError(err error) bool {
	var b *batchError
	return errors.As(err, &b)
}

func (r *Reporter) write() {
	defer r.wg.Done()
	for {
		var batch []*pending
		select {
		case p := <-r.queue:
			batch = append(batch, p)
		case <-r.stop:
			r.drain()
			return
		}
	more:
		for len(batch) < r.maxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		r.commit(batch)
	}
}

// drain answers what is still queued at Close.
func (r *Reporter) drain() {
	for {
		select {
		case p := <-r.queue:
			r.commit([]*pending{p})
		default:
			return
		}
	}
}

func (r *Reporter) commit(batch []*pending) {
	// Reports whose caller is gone before the transaction starts are
	// dropped; once it starts they are written and answered.
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- ReportResult{Err: &batchError{err}}
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	evs := make([]NewEvent, len(live))
	for i, p := range live {
		evs[i] = p.ev
	}
	res, err := r.store.ReportEvents(context.Background(), evs)
	if err == nil && r.afterCommit != nil {
		r.afterCommit()
	}
	for i, p := range live {
		if err != nil {
			p.done <- ReportResult{Err: &batchError{err}}
		} else {
			p.done <- res[i]
		}
	}
}

// Close stops taking reports, answers those queued, and waits for the
// writers.
func (r *Reporter) Close() {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		close(r.exited)
	})
}
