// Command ratelimit measures the account-wide limiter against the fake Heroku: concurrent callers share one client
// on a small pool, and the program prints, for each number of callers, how many 429s the API sent (counted by the
// fake: the goal is none) and how many reached callers (the client retries a 429, so these can be 0 while the API
// sent some), the requests the API received (the calls, their retries and the limiter's reads of the pool), and the
// total time against the ideal the pool allows.
//
//	go run ./bench/ratelimit [-callers 5,10,20] [-runs 1] [-calls 200] [-pool 50] [-refill 600] [-reserve 0]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

func main() {
	callers := flag.String("callers", "5,10,20", "concurrent callers: a comma-separated list, one measurement each")
	runs := flag.Int("runs", 1, "measurements for each number of callers")
	calls := flag.Int("calls", 200, "calls in total")
	pool := flag.Int("pool", 50, "the account's pool of request tokens")
	refill := flag.Float64("refill", 600, "tokens returned per minute")
	reserve := flag.Int("reserve", 0, "tokens kept for people")
	flag.Parse()
	if err := run(*callers, *runs, *calls, *pool, *refill, *reserve); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
}

// result is one measurement.
type result struct {
	callers, failed, seen429, sent429, requests int
	elapsed                                     time.Duration
}

func run(callerList string, runs, calls, pool int, refill float64, reserve int) error {
	var counts []int
	for f := range strings.SplitSeq(callerList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-callers %q: expected a comma-separated list of whole numbers of at least 1, such as 5,10,20", callerList)
		}
		counts = append(counts, n)
	}
	switch {
	case runs < 1:
		return fmt.Errorf("-runs %d: expected at least 1", runs)
	case calls < 1:
		return fmt.Errorf("-calls %d: expected at least 1", calls)
	case pool < 1:
		return fmt.Errorf("-pool %d: expected at least 1 token", pool)
	case refill <= 0:
		return fmt.Errorf("-refill %v: expected a positive number of tokens a minute", refill)
	case reserve < 0 || reserve >= pool:
		return fmt.Errorf("-reserve %d: expected at least 0 and less than the pool (%d)", reserve, pool)
	}
	usable := pool - reserve
	ideal := time.Duration(0)
	if calls > usable {
		ideal = time.Duration(float64(calls-usable) / (refill / 60) * float64(time.Second))
	}
	fmt.Printf("%d calls on a pool of %d refilling at %.0f a minute, %d kept in reserve: ideal time %s (first %d at once)\n\n",
		calls, pool, refill, reserve, ideal.Round(time.Millisecond), usable)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "callers\t429s sent by the API\t429s seen by callers\tfailed calls\tAPI requests\ttime\tover ideal\t")
	var measured, limitedRuns, sent, failed int
	for _, n := range counts {
		for range runs {
			r, err := measure(n, calls, pool, refill, reserve)
			if err != nil {
				return err
			}
			over := "-"
			if ideal > 0 {
				over = fmt.Sprintf("%+.1f%%", (r.elapsed.Seconds()/ideal.Seconds()-1)*100)
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%.2fs\t%s\t\n", n, r.sent429, r.seen429, r.failed, r.requests, r.elapsed.Seconds(), over)
			measured++
			sent += r.sent429
			failed += r.failed
			if r.sent429 > 0 {
				limitedRuns++
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	if sent > 0 || failed > 0 {
		return fmt.Errorf("the API sent %d 429s, in %d of %d runs; %d calls failed", sent, limitedRuns, measured, failed)
	}
	return nil
}

// measure makes calls ListFormation calls from callers goroutines sharing one client and one limiter, against a
// fresh fake whose pool starts full.
func measure(callers, calls, pool int, refill float64, reserve int) (result, error) {
	const tok = "bench-token"
	f := fake.New(fake.Options{Token: tok, Pool: pool, RefillPerMinute: refill})
	f.AddApp("bench", fake.Process{Type: "web", Quantity: 1})
	srv := httptest.NewServer(f)
	defer srv.Close()
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: pool, PerHour: refill * 60, Reserve: reserve})
	if err != nil {
		return result{}, fmt.Errorf("making the limiter: %w", err)
	}
	c, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: tok, Limiter: l})
	if err != nil {
		return result{}, fmt.Errorf("making the client: %w", err)
	}

	var next, failed, limited atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				_, err := c.ListFormation(ctx, "bench")
				cancel()
				if err != nil {
					failed.Add(1)
					if errors.Is(err, herokuapi.RateLimit) {
						limited.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	return result{
		callers: callers, failed: int(failed.Load()), seen429: int(limited.Load()), sent429: f.TooManyRequests(),
		requests: len(f.Requests()), elapsed: time.Since(start),
	}, nil
}
