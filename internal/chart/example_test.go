package chart_test

import (
	"fmt"
	"math"
	"os"
	"time"

	"github.com/dynopilot/dynopilot/internal/chart"
)

// The status page's chart for one policy: the reading against its target above, the dynos within their bounds
// below, and each scale event a dot that explains itself on hover. History comes from the page's event store; a
// NaN reading is a failed one and draws a gap.
func ExampleRender() {
	now := time.Date(2026, 3, 14, 14, 30, 0, 0, time.UTC)
	at := func(minutesAgo int) time.Time { return now.Add(-time.Duration(minutesAgo) * time.Minute) }
	c := chart.Chart{
		Width: 900, Height: 320, Start: now.Add(-6 * time.Hour), End: now,
		Columns: []chart.Column{{
			Title: "shop · web", Note: "4 dynos now",
			Panels: []chart.Panel{{
				Title: "p95 latency", Format: chart.Seconds,
				Series: []chart.Series{{Name: "reading", Points: []chart.Point{
					{T: at(30), V: 0.31}, {T: at(20), V: 0.52}, {T: at(10), V: 0.38}, {T: at(5), V: math.NaN()}, {T: at(0), V: 0.29}}}},
				Rules: []chart.Rule{{Value: 0.4, Label: "target 400ms", Color: "#d62728", Fit: true}},
			}, {
				Title: "dynos",
				Series: []chart.Series{
					{Name: "current", Style: chart.Step, Color: "#e6550d", Points: []chart.Point{{T: at(400), V: 3}, {T: at(19), V: 4}}},
					{Name: "desired", Style: chart.Step, Dashed: true, Color: "#555555", Points: []chart.Point{{T: at(400), V: 3}, {T: at(20), V: 4}}},
				},
				Rules: []chart.Rule{{Value: 10, Label: "MAX 10", Color: "#888888"}, {Value: 2, Label: "MIN 2", Color: "#888888"}},
				Markers: []chart.Marker{{Kind: chart.Dot, At: at(19), Value: 4, Name: "scaled up", Color: "#2ca02c",
					Title: "14:11 UTC: scaled up 3 → 4 dynos (p95 520ms above the 400ms target)"}},
			}},
		}},
	}
	if err := chart.Render(os.Stdout, c); err != nil {
		fmt.Println(err)
	}
}
