package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

// TestServeShutdownWithStreams: SIGTERM ends `gridmap serve` within 2 s
// although 50 clients follow the event stream: their streams end (they
// resume elsewhere with Last-Event-ID) instead of holding the shutdown.
func TestServeShutdownWithStreams(t *testing.T) {
	t.Parallel()
	bin := gridmapBin(t)
	srv := startServe(t, bin, pgtest.NewDemo(t).URL(), "--public-read")

	const subscribers = 50
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subscribers}}
	var ready, ended sync.WaitGroup
	for range subscribers {
		ready.Add(1)
		ended.Add(1)
		go func() {
			defer ended.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/v1/events/stream", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("subscribe: %v", err)
				ready.Done()
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if _, err := br.ReadString('\n'); err != nil {
				t.Errorf("first line of the stream: %v", err)
			}
			ready.Done()
			_, _ = io.Copy(io.Discard, br) // until the server ends the stream
		}()
	}
	ready.Wait()

	start := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.exited:
		took := time.Since(start)
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, srv.logText())
		}
		if took > 2*time.Second {
			t.Errorf("serve took %s to exit after SIGTERM, want under 2 s", took)
		}
		t.Logf("exited %s after SIGTERM with %d stream subscribers", took.Round(time.Millisecond), subscribers)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still runs 15 s after SIGTERM:\n%s", srv.logText())
	}
	ended.Wait()
}
