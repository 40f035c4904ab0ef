package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/metrics"
)

func TestLogDrainSettings(t *testing.T) {
	spec, err := metrics.Settings{Source: "logdrain"}.Parse("shop", "web", defaults)
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Spec{Kind: "logdrain", App: "shop", Process: "web", Measure: "latency", Empty: "missing",
		Timeout: metrics.DefaultTimeout, Quantile: 0.95, Window: time.Minute}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("got  %+v\nwant %+v", spec, want)
	}
	if got := spec.String(); got != "logdrain shop/web latency quantile=0.95 window=1m0s" {
		t.Errorf("String() = %q", got)
	}
	spec, err = metrics.Settings{Source: "logdrain", Measure: "queue-time", Quantile: "0.5", Window: "30s"}.Parse("shop", "web", defaults)
	if err != nil || spec.Quantile != 0.5 || spec.Window != 30*time.Second || spec.Measure != metrics.MeasureQueueTime {
		t.Errorf("queue-time p50 over 30s: %+v, %v", spec, err)
	}

	for _, c := range []struct {
		name     string
		settings metrics.Settings
		want     string
	}{
		{"a quantile of 1", metrics.Settings{Source: "logdrain", Quantile: "1"}, `QUANTILE="1": expected a number between 0 and 1`},
		{"a window too short", metrics.Settings{Source: "logdrain", Window: "5s"}, `WINDOW="5s": expected a duration from 10s to 5m`},
		{"a window too long", metrics.Settings{Source: "logdrain", Window: "1h"}, `WINDOW="1h": expected a duration from 10s to 5m`},
		{"a URL", metrics.Settings{Source: "logdrain", URL: "https://u:Secret1@x"}, `SOURCE_URL="https://xxxxx@x": expected nothing: SOURCE=logdrain reads what Heroku sends`},
		{"a quantile of a rate", metrics.Settings{Source: "logdrain", Measure: "rate", Quantile: "0.9"}, `QUANTILE="0.9": expected nothing with MEASURE=rate`},
		{"a size", metrics.Settings{Source: "logdrain", Measure: "size"}, `MEASURE="size": expected latency, queue-time, rate, load with SOURCE=logdrain`},
		{"QUANTILE for another kind", metrics.Settings{Source: "sidekiq", Quantile: "0.9"}, `QUANTILE="0.9": expected nothing: QUANTILE is used only by SOURCE=logdrain`},
		{"WINDOW for another kind", metrics.Settings{Source: "sidekiq", Window: "1m"}, `WINDOW="1m": expected nothing: WINDOW is used only by SOURCE=logdrain`},
		{"a drain measure for another kind", metrics.Settings{Source: "sidekiq", Measure: "load"}, `MEASURE="load": expected latency or size with SOURCE=sidekiq`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.settings.Parse("shop", "web", defaults)
			wantError(t, err, c.want)
			wantNoSecret(t, err, "Secret1")
		})
	}
}

// drains is a metrics.Drains whose answers the test sets.
type drains struct {
	ReadFn func(app, process, measure string, quantile float64, window time.Duration) (float64, time.Time, error)
}

var _ metrics.Drains = drains{}

func (d drains) Read(app, process, measure string, quantile float64, window time.Duration) (float64, time.Time, error) {
	return d.ReadFn(app, process, measure, quantile, window)
}

func TestLogDrainSource(t *testing.T) {
	spec, err := metrics.Settings{Source: "logdrain", Measure: "queue-time", Quantile: "0.99", Window: "2m"}.Parse("shop", "web", defaults)
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.NewConnections(nil)
	defer c.Close()
	if _, err := c.Open(spec); err == nil {
		t.Fatal("opened a logdrain source with no drain receiver")
	} else {
		wantError(t, err, "DYNOPILOT_DRAIN_TOKEN")
	}

	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var asked string
	c.UseDrains(drains{ReadFn: func(app, process, measure string, q float64, w time.Duration) (float64, time.Time, error) {
		asked = fmt.Sprintf("%s %s %s %g %s", app, process, measure, q, w)
		if app == "silent" {
			return 0, time.Time{}, fmt.Errorf("drain of %s silent since 11:50: %w", app, metrics.ErrNoData)
		}
		return 0.25, at, nil
	}})
	src, err := c.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := metrics.NewInstruments(nil)
	r, err := in.Wrap("shop/web", spec, src).Read(context.Background())
	if err != nil || r.Value != 0.25 || !r.At.Equal(at) {
		t.Errorf("Read = %+v, %v; want 0.25 at %v", r, err, at)
	}
	if asked != "shop web queue-time 0.99 2m0s" {
		t.Errorf("the drain was asked for %q", asked)
	}

	spec.App = "silent"
	src, _ = c.Open(spec)
	_, err = in.Wrap("silent/web", spec, src).Read(context.Background())
	if !errors.Is(err, metrics.ErrNoData) {
		t.Errorf("a silent drain read %v, want an error wrapping ErrNoData", err)
	}
	wantError(t, err, "logdrain silent/web", "silent since")
}
