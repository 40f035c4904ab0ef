package setting_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/internal/setting"
)

func TestListReportsEveryProblem(t *testing.T) {
	var l setting.List
	if l.Err() != nil {
		t.Fatal("an empty list is not an error")
	}
	l.Add(nil)
	l.Add(setting.Errorf("MIN", "abc", "a whole number from %d", 0))
	l.Add(&setting.Error{Name: "MAX", Expected: "a whole number (required)"})
	err := l.Err()
	if got := len(setting.Flatten(err)); got != 2 {
		t.Fatalf("%d problems, want 2", got)
	}
	want := "MIN=\"abc\": expected a whole number from 0\nMAX is empty: expected a whole number (required)"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestPrefixedNamesTheVariableAndDropsNothing(t *testing.T) {
	var l setting.List
	l.Add(setting.Errorf("MIN", "-1", "0 or more"))
	l.Add(errors.New("not a setting error"))
	joined := errors.Join(l.Err(), setting.Errorf("TARGET", "x", "a number"))

	direct := setting.Flatten(setting.Prefixed("POLICY_3_", joined))
	var names []string
	for _, e := range direct {
		var se *setting.Error
		if errors.As(e, &se) {
			names = append(names, se.Name)
		}
	}
	if got := strings.Join(names, ","); got != "POLICY_3_MIN,POLICY_3_TARGET" || len(direct) != 3 {
		t.Errorf("names %q over %d problems, want POLICY_3_MIN,POLICY_3_TARGET over 3", got, len(direct))
	}

	// An error that wraps several problems is kept whole: every problem is still in it.
	wrapped := setting.Prefixed("POLICY_3_", fmt.Errorf("reading policy: %w", joined))
	for _, want := range []string{"MIN", "not a setting error", "TARGET"} {
		if !strings.Contains(wrapped.Error(), want) {
			t.Errorf("%q lost %s", wrapped, want)
		}
	}
}
