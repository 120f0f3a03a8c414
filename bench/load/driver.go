package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// result is one load run's figures.
type result struct {
	name     string
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// drive sends the same POST from conns concurrent keep-alive connections
// for d and measures each request's latency. Only 200 responses count as
// successes; anything else is an error. It stops by itself after d.
func drive(name, url, auth, body string, conns int, d time.Duration) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu    sync.Mutex
		lats  []time.Duration
		errs  int
		wg    sync.WaitGroup
		first error
		start = time.Now()
	)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			localErrs := 0
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", auth)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					localErrs++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					localErrs++
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: status %s", name, resp.Status)
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += localErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := result{name: name, requests: len(lats), errors: errs, elapsed: time.Since(start)}
	if len(lats) == 0 {
		return r, fmt.Errorf("%s: no successful request (first error: %v)", name, first)
	}
	slices.Sort(lats)
	r.p50 = lats[len(lats)/2]
	r.p99 = lats[len(lats)*99/100]
	if errs > 0 && first != nil {
		return r, first
	}
	return r, nil
}
