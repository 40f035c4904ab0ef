package scaler

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dynopilot/dynopilot/internal/chart"
)

// Handler serves /metrics, /healthz, /readyz, /api/policies and the status page at /.
func (s *Scaler) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: waiting for Heroku to answer and every enabled policy to be evaluated once\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/policies", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"dry_run": s.opts.DryRun, "ready": s.Ready(), "role": s.Role(), "policies": s.Statuses(), "drains": s.DrainStats()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		span, err := time.ParseDuration(r.URL.Query().Get("span")) // ?span=1h zooms the charts in; default and most: HistorySpan
		if err != nil || span <= 0 || span > HistorySpan {
			span = HistorySpan
		}
		statusPage.Execute(w, map[string]any{"DryRun": s.opts.DryRun, "Ready": s.Ready(), "Role": s.Role(), "Policies": s.Statuses(), "Drains": s.DrainStats(),
			"Now": s.now().UTC().Format(time.RFC3339), "Chartable": s.opts.History != nil,
			"Charts": s.charts(r.URL.Query().Get("policy"), span), "Span": spanText(span), "Policy": r.URL.Query().Get("policy"),
			"Spans": []string{"30m", "1h", "3h", "6h"}})
	})
	return mux
}

// maxCharts is how many policies the status page draws at once; with more, it draws the one asked for
// (/?policy=app/process), so that the page stays quick with thousands of policies.
const maxCharts = 12

// policyChart is one policy's history on the status page.
type policyChart struct {
	Policy string
	SVG    template.HTML // rendered by package chart, its text escaped there
	Scales []ScaleMark
}

// charts renders the history of every policy (at most maxCharts), or of the one named.
func (s *Scaler) charts(only string, span time.Duration) []policyChart {
	if s.opts.History == nil {
		return nil
	}
	now := s.now()
	var out []policyChart
	for _, e := range s.all {
		if (only != "" && e.name != only) || (only == "" && len(s.all) > maxCharts) {
			continue
		}
		var b bytes.Buffer
		if err := chart.Render(&b, s.opts.History.Chart(e.name, now, span, e.Rules.Seconds)); err != nil {
			s.log.Warn("cannot draw a policy's history", "policy", e.name, "err", err)
			continue
		}
		out = append(out, policyChart{Policy: e.name, SVG: template.HTML(b.String()), Scales: s.opts.History.Scales(e.name)})
	}
	return out
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"reading": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return template.HTMLEscapeString(formatFloat(*v))
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"seconds": func(f float64) string {
		if f <= 0 {
			return "—"
		}
		return (time.Duration(f * float64(time.Second))).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>dynopilot</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{padding:.35em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}.up{color:#0a7d27}.down{color:#b35c00}.hold{color:#555}.err{color:#b00020}
.history svg{max-width:100%;height:auto}section.history{margin:1.5em 0}
.tag{display:inline-block;padding:0 .4em;border-radius:3px;background:#eee;font-size:12px}
</style></head><body>
<h1>dynopilot <span class="tag">{{.Role}}</span> {{if .DryRun}}<span class="tag">dry run</span>{{end}} {{if .Ready}}<span class="tag">ready</span>{{else}}<span class="tag">starting</span>{{end}}</h1>
<p>{{len .Policies}} policies · {{.Now}} · <a href="/api/policies">JSON</a> · <a href="/metrics">metrics</a></p>
<table><tr><th>policy</th><th>source</th><th>dynos</th><th>desired</th><th>bounds</th><th>reading</th><th>target</th><th>decision</th><th>cooldown left</th><th>last scale</th></tr>
{{range .Policies}}<tr>
<td><b>{{if $.Chartable}}<a href="/?policy={{.Policy}}#history">{{.Policy}}</a>{{else}}{{.Policy}}{{end}}</b>{{if not .Enabled}} <span class="tag">disabled</span>{{end}}<br><small>{{.Mode}} · {{.Interval}}{{if .Size}} · {{.Size}}{{end}}</small>
{{with .Predict}}<br><small><span class="tag">predict {{if .On}}on{{else}}off{{end}}</span>{{if .Quantity}} {{.Quantity}} dynos ahead{{end}} {{.Status}}</small>{{end}}</td>
<td>{{.Source}}</td><td>{{.Current}}</td><td>{{.Desired}}</td><td>{{.Min}}–{{.Max}}</td>
{{if gt (len .Metrics) 1}}<td>{{range .Metrics}}<div>{{.Metric}}: {{reading .Value}} <small>{{.Source}}{{if .Measure}} {{.Measure}}{{end}} · {{.Mode}} {{.Target}}</small>{{if .Error}}<br><small class="err">{{.Error}}</small>{{end}}</div>{{end}}</td>
{{else}}<td>{{reading .Reading}}{{if .ReadingError}}<br><small class="err">{{.ReadingError}}</small>{{end}}</td>{{end}}<td>{{.Target}}</td>
<td class="{{.Action}}"><b>{{.Action}}</b> {{.Reason}}<br><small>{{.Explanation}}</small>{{if .LastError}}<br><small class="err">{{.LastError}}{{if not .RetryAt.IsZero}} (no PATCH before {{.RetryAt.Format "15:04:05"}}){{end}}</small>{{end}}</td>
<td>{{seconds .CooldownLeftSeconds}}</td><td>{{ago .LastScale}}</td>
</tr>{{end}}</table>
{{if .Charts}}<h2 id="history">The last {{.Span}}</h2>
<p><small>Each minute shows its highest reading; the dynos step at each scale event; a gap is a failed reading. Dots are scale events: hover one for its explanation.
Show the last {{range $i, $s := .Spans}}{{if $i}} · {{end}}<a href="/?span={{$s}}{{if $.Policy}}&amp;policy={{$.Policy}}{{end}}#history">{{$s}}</a>{{end}}.</small></p>
{{range .Charts}}<section class="history">{{.SVG}}
{{if .Scales}}<table><tr><th>time (UTC)</th><th>change</th><th>result</th><th>reason</th><th>explanation</th></tr>
{{range .Scales}}<tr><td>{{.At.UTC.Format "2006-01-02 15:04:05"}}</td><td>{{.From}} → {{.To}}</td><td class="{{if eq .Result "error"}}err{{end}}">{{.Result}}</td><td>{{.Reason}}</td><td><small>{{.Explanation}}{{if .Error}}<br><span class="err">{{.Error}}</span>{{end}}</small></td></tr>{{end}}</table>
{{else}}<p><small>No scale event yet.</small></p>{{end}}</section>{{end}}{{else if .Chartable}}<p><small>{{len .Policies}} policies: choose one above to see its last {{.Span}}.</small></p>{{end}}
{{if .Drains}}<h2>Log drains</h2>
<table><tr><th>app</th><th>last line</th><th>lines a minute</th><th>router</th><th>runtime</th><th>app</th><th>lost</th><th>invalid</th><th>traffic</th></tr>
{{range .Drains}}<tr><td><b>{{.App}}</b></td><td>{{if .LastLine.IsZero}}<span class="err">nothing received yet</span>{{else}}{{ago .LastLine}}{{end}}</td>
<td>{{printf "%.0f" .LinesPerMinute}}</td><td>{{index .Lines "router"}}</td><td>{{index .Lines "runtime"}}</td><td>{{index .Lines "app"}}</td>
<td>{{with index .Lines "lost"}}<span class="err">{{.}}</span>{{else}}0{{end}}{{if not .LastLost.IsZero}}<br><small class="err">last {{ago .LastLost}}</small>{{end}}</td>
<td>{{index .Lines "invalid"}}</td><td><a href="/api/traffic/{{.App}}.csv">{{.App}}.csv</a></td></tr>{{end}}</table>{{end}}
</body></html>`))

// formatFloat shows a reading to four significant digits: enough to compare with a target at a glance.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
