// Command ratelimit measures the account-wide limiter against the fake Heroku: concurrent callers share one client
// on a small pool, and the program prints how many 429s reached callers (the goal is none), how many the API sent,
// and the total time against the ideal the pool allows.
//
//	go run ./bench/ratelimit [-callers 20] [-calls 200] [-pool 50] [-refill 600]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi"
	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

func main() {
	callers := flag.Int("callers", 20, "concurrent callers")
	calls := flag.Int("calls", 200, "calls in total")
	pool := flag.Int("pool", 50, "the account's pool of request tokens")
	refill := flag.Float64("refill", 600, "tokens returned per minute")
	reserve := flag.Int("reserve", 0, "tokens kept for people")
	flag.Parse()
	if err := run(*callers, *calls, *pool, *refill, *reserve); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
}

func run(callers, calls, pool int, refill float64, reserve int) error {
	const tok = "bench-token"
	f := fake.New(fake.Options{Token: tok, Pool: pool, RefillPerMinute: refill})
	f.AddApp("bench", fake.Process{Type: "web", Quantity: 1})
	srv := httptest.NewServer(f)
	defer srv.Close()
	l, err := herokuapi.NewLimiter(herokuapi.LimiterConfig{Capacity: pool, PerHour: refill * 60, Reserve: reserve})
	if err != nil {
		return err
	}
	c, err := herokuapi.New(herokuapi.Config{BaseURL: srv.URL, Token: tok, Limiter: l})
	if err != nil {
		return err
	}

	var next, failed, limited atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var received429 int
	for _, r := range f.Requests() {
		if r.Status == 429 {
			received429++
		}
	}
	usable := pool - reserve
	ideal := time.Duration(0)
	if calls > usable {
		ideal = time.Duration(float64(calls-usable) / (refill / 60) * float64(time.Second))
	}
	fmt.Printf("callers                  %d\n", callers)
	fmt.Printf("calls made               %d (failed %d)\n", calls, failed.Load())
	fmt.Printf("429s seen by callers     %d\n", limited.Load())
	fmt.Printf("429s received from API   %d\n", received429)
	fmt.Printf("requests sent to API     %d\n", len(f.Requests()))
	fmt.Printf("total time               %s\n", elapsed.Round(time.Millisecond))
	fmt.Printf("ideal time               %s (first %d at once, then %.0f a minute)\n", ideal.Round(time.Millisecond), usable, refill)
	if ideal > 0 {
		fmt.Printf("over ideal               %+.1f%%\n", (elapsed.Seconds()/ideal.Seconds()-1)*100)
	}
	if limited.Load() > 0 || failed.Load() > 0 {
		return fmt.Errorf("%d calls failed, %d of them rate-limited", failed.Load(), limited.Load())
	}
	return nil
}
