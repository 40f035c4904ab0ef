package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/redis/go-redis/v9"
)

// The parsers, fed the payloads in testdata/fixtures (see its README for where each comes from), with no Redis,
// PostgreSQL or Prometheus: the tests of each source against the real service are in the *_test.go files of
// package metrics_test.

// fixture reads testdata/fixtures/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureHash reads a fixture that holds a Redis hash as a JSON object of strings.
func fixtureHash(t *testing.T, name string) map[string]string {
	t.Helper()
	var h map[string]string
	if err := json.Unmarshal(fixture(t, name), &h); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return h
}

// sameInstant compares times written as float seconds, which carry about a tenth of a microsecond of rounding.
func sameInstant(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -time.Microsecond && d < time.Microsecond
}

// wantErrorText fails unless err is an error whose text contains every part.
func wantErrorText(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, parts)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not contain %q", what, err, p)
		}
	}
}

func TestSidekiqEnqueuedAtFixtures(t *testing.T) {
	workEntry := func(name string) string { // the job inside a work entry, as the queue held it
		var w struct{ Payload string }
		if err := json.Unmarshal(fixture(t, name), &w); err != nil {
			t.Fatal(err)
		}
		return w.Payload
	}
	for _, c := range []struct {
		name, payload string
		want          time.Time
	}{
		{"Sidekiq 6 float seconds", string(fixture(t, "sidekiq/6.4.1-job.json")), time.Unix(1796153503, 209647400)},
		{"Sidekiq 6 ActiveJob", string(fixture(t, "sidekiq/6.4.1-activejob.json")), time.Unix(1796153503, 210959000)},
		{"Sidekiq 6 job of a work entry", workEntry("sidekiq/6.4.1-workers-entry.json"), time.Unix(1796153503, 809576300)},
		{"Sidekiq 8 integer milliseconds", string(fixture(t, "sidekiq/8-job.json")), time.UnixMilli(1796153503209)},
		{"Sidekiq 8 ActiveJob", string(fixture(t, "sidekiq/8-activejob.json")), time.UnixMilli(1796153503211)},
		{"created_at when enqueued_at is missing", string(fixture(t, "sidekiq/created-at-only.json")), time.Unix(1796153503, 209392500)},
		{"created_at when enqueued_at is null", `{"class":"X","enqueued_at":null,"created_at":1796153503209}`, time.UnixMilli(1796153503209)},
		{"enqueued_at before created_at", `{"class":"X","created_at":1700000000,"enqueued_at":1796153503.5}`, time.Unix(1796153503, 5e8)},
		{"whole seconds from another client", `{"class":"X","enqueued_at":1796153503}`, time.Unix(1796153503, 0)},
		{"milliseconds with a fraction", `{"class":"X","enqueued_at":1796153503209.5}`, time.UnixMilli(1796153503209).Add(500 * time.Microsecond)},
	} {
		got, err := sidekiqEnqueuedAt(c.payload)
		if err != nil || !sameInstant(got, c.want) {
			t.Errorf("%s: sidekiqEnqueuedAt = %v, %v; want %v", c.name, got.UTC(), err, c.want.UTC())
		}
	}

	for _, c := range []struct{ name, payload, want string }{
		{"empty", ``, "not a Sidekiq job"},
		{"not JSON", `HardJob`, "not a Sidekiq job"},
		{"truncated", `{"class":"X","enqueued_at":`, "not a Sidekiq job"},
		{"an array", `[1796153503.2]`, "not a Sidekiq job"},
		{"no timestamps", `{"class":"X","args":[]}`, "neither enqueued_at nor created_at"},
		{"both null", `{"class":"X","enqueued_at":null,"created_at":null}`, "neither enqueued_at nor created_at"},
		{"a date string", `{"class":"X","enqueued_at":"2026-12-01T19:31:43Z"}`, "enqueued_at is \"2026-12-01T19:31:43Z\": expected a number"},
		{"a boolean", `{"class":"X","enqueued_at":true}`, "expected a number"},
		{"an object", `{"class":"X","created_at":{"s":1}}`, "created_at is {\"s\":1}: expected a number"},
		{"too small", `{"class":"X","enqueued_at":42}`, "enqueued_at is 42: expected seconds"},
		{"negative", `{"class":"X","enqueued_at":-1796153503}`, "expected seconds"},
		{"microseconds", `{"class":"X","enqueued_at":1796153503209647}`, "expected seconds"},
		{"between seconds and milliseconds", `{"class":"X","enqueued_at":500000000000}`, "expected seconds"},
		{"bad created_at fallback", `{"class":"X","created_at":7}`, "created_at is 7"},
	} {
		got, err := sidekiqEnqueuedAt(c.payload)
		wantErrorText(t, c.name+" (got "+got.String()+")", err, c.want)
	}
}

func TestSidekiqWorkFixtures(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  string
		want Job
	}{
		{"Sidekiq 6.4 workers entry: payload a JSON string, run_at seconds", string(fixture(t, "sidekiq/6.4.1-workers-entry.json")),
			Job{Started: time.Unix(1796153505, 0), Class: "SlowJob", Queue: "slow"}},
		{"Sidekiq 8 work entry: run_at milliseconds, an ActiveJob", string(fixture(t, "sidekiq/8-work-entry.json")),
			Job{Started: time.UnixMilli(1796153505046), Class: "ResizeImageJob", Queue: "images"}},
		{"before Sidekiq 6.1: payload an object", string(fixture(t, "sidekiq/5-workers-entry.json")),
			Job{Started: time.Unix(1796153505, 0), Class: "SlowJob", Queue: "slow"}},
		{"run_at with a fraction", `{"queue":"q","payload":"{\"class\":\"A\"}","run_at":1796153505.25}`,
			Job{Started: time.Unix(1796153505, 25e7), Class: "A", Queue: "q"}},
	} {
		got, err := sidekiqWork(c.raw)
		if err != nil || !got.Started.Equal(c.want.Started) || got.Class != c.want.Class || got.Queue != c.want.Queue || got.Worker != "" {
			t.Errorf("%s: sidekiqWork = %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}

	for _, c := range []struct{ name, raw, want string }{
		{"not JSON", `tid-1`, "not JSON with queue, payload and run_at"},
		{"an array", `["slow"]`, "not JSON with queue, payload and run_at"},
		{"no run_at", `{"queue":"q","payload":"{\"class\":\"A\"}"}`, `run_at is "": expected a number`},
		{"run_at a date", `{"queue":"q","payload":"{\"class\":\"A\"}","run_at":"2026-12-01T19:31:45Z"}`, "not JSON"},
		{"run_at too small", `{"queue":"q","payload":"{\"class\":\"A\"}","run_at":1234}`, "run_at is 1234: expected seconds"},
		{"payload not a job", `{"queue":"q","payload":"HardJob","run_at":1796153505}`, "payload is not a Sidekiq job"},
		{"payload missing", `{"queue":"q","run_at":1796153505}`, "payload is not a Sidekiq job"},
		{"payload an array", `{"queue":"q","payload":[1],"run_at":1796153505}`, "payload is not a Sidekiq job"},
	} {
		got, err := sidekiqWork(c.raw)
		wantErrorText(t, c.name+" (got "+got.What()+")", err, c.want)
	}
}

// TestSidekiqProcessFixtures: what a Sidekiq process on a dyno records names the dyno.
func TestSidekiqProcessFixtures(t *testing.T) {
	var info struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(fixture(t, "sidekiq/6.4.1-process-info.json"), &info); err != nil {
		t.Fatal(err)
	}
	identity := strings.TrimSpace(string(fixture(t, "sidekiq/6.4.1-identity.txt")))
	for _, worker := range []string{info.Hostname, identity} {
		if process, n, ok := DynoName(worker); !ok || process != "worker" || n != 2 {
			t.Errorf("DynoName(%q) = %q, %d, %v; want worker, 2, true", worker, process, n, ok)
		}
	}
}

func TestRQFixtures(t *testing.T) {
	stamp := func(name string) *redis.StringCmd {
		return redis.NewStringResult(fixtureHash(t, name)["enqueued_at"], nil)
	}
	expired := func() *redis.StringCmd { return redis.NewStringResult("", redis.Nil) }
	ids := []string{"a", "b", "c"}
	for _, c := range []struct {
		name string
		cmds []*redis.StringCmd
		want time.Time
	}{
		{"RQ 1.x: microseconds", []*redis.StringCmd{stamp("rq/1.13-job.json")}, time.Date(2026, 12, 1, 19, 31, 50, 824190000, time.UTC)},
		{"RQ 0.x: no fraction", []*redis.StringCmd{stamp("rq/0.13-job.json")}, time.Date(2026, 12, 1, 19, 31, 50, 0, time.UTC)},
		{"expired jobs at the head are skipped", []*redis.StringCmd{expired(), expired(), stamp("rq/1.13-job.json")},
			time.Date(2026, 12, 1, 19, 31, 50, 824190000, time.UTC)},
		{"the first stored job counts", []*redis.StringCmd{stamp("rq/0.13-job.json"), stamp("rq/1.13-job.json")},
			time.Date(2026, 12, 1, 19, 31, 50, 0, time.UTC)},
		{"spaces around", []*redis.StringCmd{redis.NewStringResult(" 2026-12-01T19:31:50.824190Z\n", nil)},
			time.Date(2026, 12, 1, 19, 31, 50, 824190000, time.UTC)},
	} {
		got, err := rqOldest(ids[:len(c.cmds)], c.cmds)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: rqOldest = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		cmds []*redis.StringCmd
		want string
	}{
		{"Python's isoformat", []*redis.StringCmd{redis.NewStringResult("2026-12-01 19:31:50.824190", nil)}, `rq:job:a has enqueued_at "2026-12-01 19:31:50.824190": expected RQ's UTC format`},
		{"epoch seconds", []*redis.StringCmd{redis.NewStringResult("1796153510.8", nil)}, "expected RQ's UTC format"},
		{"empty", []*redis.StringCmd{redis.NewStringResult("", nil)}, "expected RQ's UTC format"},
		{"every job expired", []*redis.StringCmd{expired(), expired()}, "none of the 2 jobs at the head"},
		{"a Redis error", []*redis.StringCmd{redis.NewStringResult("", errors.New("LOADING Redis is loading"))}, "LOADING"},
	} {
		_, err := rqOldest(ids[:len(c.cmds)], c.cmds)
		wantErrorText(t, c.name, err, c.want)
	}
}

func TestRQRunningFixtures(t *testing.T) {
	worker := fixtureHash(t, "rq/1.13-worker.json")
	running := fixtureHash(t, "rq/1.13-running-job.json")
	if worker["current_job"] == "" || running["worker_name"] != "worker.1" {
		t.Fatalf("the fixtures do not show worker.1 running a job: %v %v", worker, running)
	}
	hmget := func(h map[string]string) []any { // HMGET started_at origin description, as go-redis returns it
		var vals []any
		for _, f := range []string{"started_at", "origin", "description"} {
			if v, ok := h[f]; ok {
				vals = append(vals, v)
			} else {
				vals = append(vals, nil)
			}
		}
		return vals
	}
	j, ok, err := rqRunningJob("worker.1", worker["current_job"], hmget(running))
	want := Job{Worker: "worker.1", Started: time.Date(2026, 12, 1, 19, 31, 51, 714833000, time.UTC), Class: "rqjobs.resize_image", Queue: "images"}
	if err != nil || !ok || j != want {
		t.Errorf("rqRunningJob = %+v, %v, %v; want %+v", j, ok, err, want)
	}

	// The description's arguments (anything: an address, a token) are dropped.
	queued := fixtureHash(t, "rq/1.13-job.json")
	queued["started_at"] = "2026-12-01T19:31:52.000001Z"
	if j, ok, err := rqRunningJob("d0a6e6c06b0f4a8e9b5c3f3c0c5a8e1d", "x", hmget(queued)); err != nil || !ok || j.Class != "app.jobs.resize_image" || j.Queue != "default" {
		t.Errorf("rqRunningJob of a job with arguments = %+v, %v, %v; want class app.jobs.resize_image", j, ok, err)
	}
	long := strings.Repeat("très_long.", 20) + "f(1)"
	if j, _, _ := rqRunningJob("w", "x", []any{"2026-12-01T19:31:52Z", "q", long}); len(j.Class) > 80+len("…") || !strings.HasSuffix(j.Class, "…") {
		t.Errorf("a long function name is kept as %q", j.Class)
	}

	// The job ended between the two reads: its hash is gone, or it has no started_at any more.
	for _, vals := range [][]any{{nil, nil, nil}, {"", "images", "f()"}, {}} {
		if j, ok, err := rqRunningJob("worker.1", "x", vals); ok || err != nil {
			t.Errorf("rqRunningJob(%q) = %+v, %v, %v; want not running", vals, j, ok, err)
		}
	}
	_, _, err = rqRunningJob("worker.1", "abc", []any{"yesterday", "images", "f()"})
	wantErrorText(t, "garbage started_at", err, `rq:job:abc (run by worker worker.1) has started_at "yesterday"`)
}

func TestCeleryFixtures(t *testing.T) {
	var lists map[string]int
	if err := json.Unmarshal(fixture(t, "celery/5.2-lists.json"), &lists); err != nil {
		t.Fatal(err)
	}
	keys := celeryKeys([]string{"celery", "images"})
	total := map[string]int{}
	for name, n := range lists {
		if !slices.Contains(keys, name) {
			t.Errorf("kombu's list %q is not read", name)
		}
		queue, _, _ := strings.Cut(name, "\x06\x16")
		total[queue] += n
	}
	if len(lists) < 8 || total["celery"] != 10 || total["images"] != 10 {
		t.Errorf("the fixture should hold the 10 tasks sent to each queue: %v", total)
	}
	for _, k := range celeryKeys([]string{"celery"}) {
		if !strings.HasPrefix(k, "celery") || strings.HasPrefix(k, "images") {
			t.Errorf("queue celery reads %q", k)
		}
	}
	if got := celeryKeys(nil); len(got) != 0 {
		t.Errorf("celeryKeys(nil) = %q", got)
	}
}

func TestHireFireFixtures(t *testing.T) {
	for _, c := range []struct {
		fixture, name string
		want          float64
	}{
		{"hirefire/1.x-info.json", "web", 0.021},
		{"hirefire/1.x-info.json", "worker", 12},
		{"hirefire/1.x-info.json", "mailer", 0},
		{"hirefire/0.x-info.json", "worker", 12},
	} {
		got, err := hirefireValue(fixture(t, c.fixture), c.name)
		if err != nil || got != c.want {
			t.Errorf("%s %s: hirefireValue = %v, %v; want %v", c.fixture, c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, body, entry, want string }{
		{"a name not there", string(fixture(t, "hirefire/1.x-info.json")), "scheduler", `no entry named "scheduler": the payload has "web", "worker", "mailer"`},
		{"0.x's null quantity", string(fixture(t, "hirefire/0.x-info.json")), "mailer", `entry "mailer" has quantity null: expected a number ≥ 0`},
		{"no entries", `[]`, "worker", `no entry named "worker": the payload has no entries`},
		{"an object", `{"name":"worker","value":1}`, "worker", "not a HireFire info payload"},
		{"an HTML page", `<!DOCTYPE html><html>`, "worker", "not a HireFire info payload"},
		{"twice", `[{"name":"worker","value":1},{"name":"worker","value":2}]`, "worker", `2 entries named "worker": expected one`},
		{"a string value", `[{"name":"worker","value":"12"}]`, "worker", `entry "worker" has value "12": expected a number`},
		{"a negative value", `[{"name":"worker","value":-3}]`, "worker", `entry "worker" has value -3`},
		{"neither field", `[{"name":"worker"}]`, "worker", `entry "worker" has neither value nor quantity`},
	} {
		_, err := hirefireValue([]byte(c.body), c.entry)
		wantErrorText(t, c.name, err, c.want)
	}
	many := "["
	for i := range 25 {
		if i > 0 {
			many += ","
		}
		many += `{"name":"q` + string(rune('a'+i)) + `","value":1}`
	}
	_, err := hirefireValue([]byte(many+"]"), "worker")
	wantErrorText(t, "25 entries", err, `"qt", …`)
}

// TestPrometheusFixtures serves Prometheus's captured answers to the client library, as the real server would,
// and checks what the source makes of each.
func TestPrometheusFixtures(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	client, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	query := func(name, empty string) (Reading, error) {
		body = fixture(t, "prometheus/"+name+".json")
		s := &promQuery{api: v1.NewAPI(client), query: "q", empty: empty, logger: slog.New(slog.DiscardHandler)}
		return s.Read(context.Background())
	}
	for _, c := range []struct {
		name  string
		empty string
		value float64
		at    time.Time // zero: the time of the query
	}{
		{"vector-one", EmptyMissing, 0.42, time.UnixMilli(1796153522604)},
		{"scalar", EmptyMissing, 7, time.UnixMilli(1796153523346)},
		{"vector-negative", EmptyMissing, -5, time.UnixMilli(1796153523225)}, // for Instruments.Wrap to refuse
		{"vector-empty", EmptyZero, 0, time.Time{}},
		{"vector-nan", EmptyZero, 0, time.UnixMilli(1796153523034)},
		{"scalar-nan", EmptyZero, 0, time.UnixMilli(1796153523476)},
	} {
		before := time.Now()
		r, err := query(c.name, c.empty)
		atOK := r.At.Equal(c.at) || (c.at.IsZero() && !r.At.Before(before) && !r.At.After(time.Now()))
		if err != nil || r.Value != c.value || !atOK {
			t.Errorf("%s (EMPTY=%s): %v at %v, %v; want %v at %v", c.name, c.empty, r.Value, r.At, err, c.value, c.at)
		}
	}
	for _, c := range []struct {
		name string
		want []string
	}{
		{"vector-empty", []string{`query "q" returned an empty result (EMPTY=missing)`}},
		{"vector-nan", []string{`query "q" returned NaN (EMPTY=missing)`}},
		{"scalar-nan", []string{"returned NaN"}},
		{"vector-inf", []string{"returned +Inf: expected a finite number"}},
		{"vector-three", []string{`returned 3 series ({queue="a"}, {queue="b"}, {queue="c"}): expected one`, "sum(…)"}},
		{"vector-four", []string{`returned 4 series ({queue="a"}, {queue="b"}, {queue="c"}, …)`}},
		{"matrix", []string{"returned a matrix: expected an instant vector of one series or a scalar"}},
		{"string", []string{`query "q"`, `unexpected value type "string"`}}, // the client library refuses it
	} {
		_, err := query(c.name, EmptyMissing)
		wantErrorText(t, c.name, err, c.want...)
		if strings.HasSuffix(c.name, "empty") || strings.HasSuffix(c.name, "nan") {
			if !errors.Is(err, ErrNoData) {
				t.Errorf("%s: %v is not ErrNoData", c.name, err)
			}
		} else if errors.Is(err, ErrNoData) {
			t.Errorf("%s: %v is ErrNoData, which would hide a broken query", c.name, err)
		}
	}
}

// TestDynoName: the worker strings the backends record, as apps started with $DYNO write them.
func TestDynoName(t *testing.T) {
	for _, c := range []struct {
		worker  string
		process string
		number  int
	}{
		{"worker.2", "worker", 2},                                                  // Sidekiq's hostname ($DYNO), RQ --name $DYNO, river ID=$DYNO
		{"worker.2:3821:26fff8bc3ed4", "worker", 2},                                // Sidekiq's identity
		{"worker.1:host:4c5d2f1e-9a8b-4c3d-8e7f-6a5b4c3d2e1f pid:42", "worker", 1}, // Delayed Job with --prefix "$DYNO:"
		{"web.12 host:4c5d2f1e pid:7", "web", 12},
		{"urgent_worker.3@4c5d2f1e", "urgent_worker", 3},
		{"image-resizer.7/abc", "image-resizer", 7},
		{"worker.999999", "worker", 999999},
		{"run.4821", "run", 4821}, // a one-off dyno: the caller keeps only its own process type
	} {
		p, n, ok := DynoName(c.worker)
		if !ok || p != c.process || n != c.number {
			t.Errorf("DynoName(%q) = %q, %d, %v; want %q, %d, true", c.worker, p, n, ok, c.process, c.number)
		}
	}
	for _, worker := range []string{
		"", "worker", "worker.", ".2", "worker.0", "worker.02", "worker.1234567", "worker.-1", "worker.2.3", "worker 2",
		"host:4c5d2f1e-9a8b-4c3d-8e7f-6a5b4c3d2e1f pid:42", // Delayed Job without a prefix
		"vm",                                   // RQ's hostname field
		"d0a6e6c06b0f4a8e9b5c3f3c0c5a8e1d",     // RQ's default worker name
		"4c5d2f1e-9a8b-4c3d-8e7f-6a5b4c3d2e1f", // a Heroku host name (Solid Queue, GoodJob)
		":worker.2", "wörker.2", strings.Repeat("w", 129) + ".2",
	} {
		if p, n, ok := DynoName(worker); ok {
			t.Errorf("DynoName(%q) = %q, %d, true; want no dyno", worker, p, n)
		}
	}
	if _, _, ok := DynoName(strings.Repeat("w", 128) + ".2"); !ok {
		t.Error("a 128-character process type is a process type")
	}
}
