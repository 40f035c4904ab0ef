package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeSource is a Source whose Read is a function.
type fakeSource struct {
	read func(ctx context.Context) (metrics.Reading, error)
}

var _ metrics.Source = fakeSource{}

func (f fakeSource) Read(ctx context.Context) (metrics.Reading, error) { return f.read(ctx) }

func TestInstruments(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	ins, err := metrics.NewInstruments(reg)
	if err != nil {
		t.Fatal(err)
	}
	spec := parse(t, metrics.Settings{Source: "sidekiq", URL: "redis://:Instr-Secret@redis:6379/0", Timeout: "200ms"})
	other := parse(t, metrics.Settings{Source: "postgres", URL: "postgres://db/app", Query: "SELECT 1"})
	at := time.Now()
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })

	cases := []struct {
		name    string
		spec    metrics.Spec
		src     fakeSource
		wantErr string // "" for success
	}{
		{"ok", spec, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{Value: 3, At: at}, nil }}, ""},
		{"error", spec, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{}, errors.New("boom") }}, "boom"},
		{"no data", spec, fakeSource{func(context.Context) (metrics.Reading, error) {
			return metrics.Reading{}, fmt.Errorf("empty: %w", metrics.ErrNoData)
		}}, "no data"},
		{"panic", spec, fakeSource{func(context.Context) (metrics.Reading, error) { panic("redis://:Instr-Secret@redis broke") }},
			"sidekiq redis://xxxxx@redis:6379/0: panic: redis://xxxxx@redis broke"},
		{"NaN", spec, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{Value: math.NaN()}, nil }}, "NaN"},
		// Issue 11: a negative value scaled down. No latency or size is negative: a failed reading naming the value.
		{"negative", spec, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{Value: -5}, nil }},
			"sidekiq redis://xxxxx@redis:6379/0: read -5: expected a latency of 0 or more"},
		{"tiny negative", spec, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{Value: -0.001}, nil }},
			"read -0.001: expected a latency of 0 or more"},
		{"negative from a query", other, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{Value: -1e-9}, nil }},
			"postgres postgres://db/app: read -1e-09: expected a latency of 0 or more"},
		{"ignores its context", spec, fakeSource{func(context.Context) (metrics.Reading, error) { <-stuck; return metrics.Reading{}, nil }}, "TIMEOUT=200ms"},
		{"other policy", other, fakeSource{func(context.Context) (metrics.Reading, error) { return metrics.Reading{}, errors.New("down") }}, "down"},
	}
	for _, c := range cases {
		policy := "app/worker"
		if c.spec.Kind == "postgres" {
			policy = "app/web"
		}
		r, err := ins.Wrap(policy, c.spec, c.src).Read(context.Background())
		switch {
		case c.wantErr == "" && (err != nil || r.Value != 3 || !r.At.Equal(at)):
			t.Errorf("%s: got %+v, %v", c.name, r, err)
		case c.wantErr != "":
			wantError(t, err, c.wantErr)
			wantNoSecret(t, err, "Instr-Secret")
		}
	}

	// Errors: error, panic, NaN, two negatives and timeout for app/worker; no data is not an error.
	want := `
# HELP dynopilot_reading_errors_total Readings that failed (error, timeout, panic, or a value that is negative or not finite); a source with nothing to report is not counted.
# TYPE dynopilot_reading_errors_total counter
dynopilot_reading_errors_total{policy="app/web",source="postgres"} 2
dynopilot_reading_errors_total{policy="app/worker",source="sidekiq"} 6
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dynopilot_reading_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "dynopilot_reading_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want one per source kind (2)", n)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "dynopilot_reading_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			count := m.GetHistogram().GetSampleCount()
			source := m.GetLabel()[0].GetValue()
			if (source == "sidekiq" && count != 8) || (source == "postgres" && count != 2) {
				t.Errorf("%s: %d durations observed", source, count)
			}
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	if _, err := metrics.NewInstruments(reg); err == nil {
		t.Error("registering twice in one registry: no error")
	}
}

func TestInstrumentsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	ins, err := metrics.NewInstruments(reg)
	if err != nil {
		t.Fatal(err)
	}
	ins.Wrap("app/worker", parse(t, metrics.Settings{Source: "rq", URL: "redis://r"}), fakeSource{})
	want := `
# HELP dynopilot_reading_errors_total Readings that failed (error, timeout, panic, or a value that is negative or not finite); a source with nothing to report is not counted.
# TYPE dynopilot_reading_errors_total counter
dynopilot_reading_errors_total{policy="app/worker",source="rq"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dynopilot_reading_errors_total"); err != nil {
		t.Error(err)
	}
}
