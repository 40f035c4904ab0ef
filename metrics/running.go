package metrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Job is one job running now, as its backend records it. Sources that can see running jobs read them along with
// their value when the policy protects busy dynos (Spec.Running), so that a scale-down never stops a dyno in the
// middle of a job.
type Job struct {
	// Worker is where the backend says the job runs: Sidekiq's process hostname (which Sidekiq takes from $DYNO on
	// Heroku), RQ's worker name, river's client ID, Delayed Job's locked_by, Solid Queue's process hostname. It
	// names a dyno only when it starts with one (DynoName); "" when the backend records nothing.
	Worker  string
	Started time.Time // when the job began to run
	Class   string    // what runs: the job's class or function
	Queue   string
}

// What describes the job for a person, e.g. "HardJob (queue default)".
func (j Job) What() string {
	class := j.Class
	if class == "" {
		class = "a job"
	}
	if j.Queue == "" {
		return class
	}
	return class + " (queue " + j.Queue + ")"
}

// dynoName is a Heroku dyno's name, as $DYNO gives it: the process type, a dot and the dyno's number.
var dynoName = regexp.MustCompile(`^([A-Za-z0-9_-]{1,128})\.([1-9][0-9]{0,5})$`)

// DynoName reads the dyno a worker string names: the whole string, or what comes before the first ':', '@', '/' or
// space ("worker.2", "worker.2:4711:1a2b", "worker.2@host", "worker.2 host:… pid:…"). ok is false when it names
// no dyno: the backend does not know the dyno, or the app does not name its workers after $DYNO.
func DynoName(worker string) (process string, number int, ok bool) {
	head := worker
	if i := strings.IndexAny(worker, ":@/ "); i >= 0 {
		head = worker[:i]
	}
	m := dynoName.FindStringSubmatch(head)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return "", 0, false
	}
	return m[1], n, true
}

// keepRunning reports whether a running job concerns a policy reading queues (nil: all): every job on a named dyno
// does (the caller keeps those of its process type, whatever queue they come from: stopping the dyno stops them
// all), and a job whose dyno is unknown does when it comes from one of the policy's queues.
func keepRunning(j Job, queues []string) bool {
	if _, _, ok := DynoName(j.Worker); ok || len(queues) == 0 {
		return true
	}
	return slices.Contains(queues, j.Queue)
}

// epochTime reads a time written as seconds since 1970 (Sidekiq up to 7, RQ workers) or milliseconds (Sidekiq 8),
// told apart by magnitude for any date between 2001 and 5138; anything else is an error naming field.
func epochTime(field string, v float64) (time.Time, error) {
	switch {
	case v >= 1e9 && v < 1e11: // seconds
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
	case v >= 1e12 && v < 1e14: // milliseconds
		ms, frac := math.Modf(v)
		return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round(frac * 1e6))), nil
	}
	return time.Time{}, fmt.Errorf("%s is %v: expected seconds (Sidekiq up to 7) or milliseconds (Sidekiq 8) since 1970", field, v)
}

// RunningJobs reports whether a source as configured can see running jobs, and when it cannot, why: PROTECT_BUSY
// is on by default where it can and refused where it cannot.
func RunningJobs(s Spec) (ok bool, why string) {
	k, found := kindNamed(s.Kind)
	if !found {
		return false, "unknown source"
	}
	if k.running == nil {
		return false, fmt.Sprintf("SOURCE=%s cannot see which jobs are running", k.name)
	}
	if why := k.running(s); why != "" {
		return false, why
	}
	return true, ""
}
