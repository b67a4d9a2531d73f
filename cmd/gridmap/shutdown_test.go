package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
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
	s := pgtest.NewDemo(t)
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.URL())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The log names the URL once it serves; the rest of the log is kept
	// for a failure's message.
	var (
		logMu sync.Mutex
		log   strings.Builder
	)
	urlc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`url=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	logText := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	var base string
	select {
	case base = <-urlc:
	case err := <-exited:
		t.Fatalf("serve exited: %v\n%s", err, logText())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", logText())
	}

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
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events/stream", nil)
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
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		took := time.Since(start)
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, logText())
		}
		if took > 2*time.Second {
			t.Errorf("serve took %s to exit after SIGTERM, want under 2 s", took)
		}
		t.Logf("exited %s after SIGTERM with %d stream subscribers", took.Round(time.Millisecond), subscribers)
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still runs 15 s after SIGTERM:\n%s", logText())
	}
	ended.Wait()
}
