package dynosize_test

import (
	"testing"

	"github.com/dynopilot/dynopilot/internal/dynosize"
)

func TestLimitsFollowHerokusDefaults(t *testing.T) {
	for size, want := range map[string]int{
		"Eco": 1, "basic": 1, "Standard-1X": 100, "standard-2x": 100, "Performance-M": 10, "PERFORMANCE-L": 10,
		"Private-S": 10, "Shield-L": 10, "Performance-XYZ": 10, "shield-future": 10, "something-new": 100, "": 100,
	} {
		if got := dynosize.Limit(size); got != want {
			t.Errorf("Limit(%q) = %d, want %d", size, got, want)
		}
	}
}

func TestLookupPrices(t *testing.T) {
	i, ok := dynosize.Lookup(" standard-1x ")
	if !ok || i.Name != "Standard-1X" || i.Hour < 0.03 || i.Hour > 0.04 {
		t.Errorf("Standard-1X: %+v %v, want about $25/720 an hour", i, ok)
	}
	if i, ok := dynosize.Lookup("mystery"); ok || i.Hour != 0 {
		t.Errorf("unknown size: %+v %v, want no price and ok=false", i, ok)
	}
}

func TestFirSizes(t *testing.T) {
	for _, c := range []struct {
		size  string
		month float64
	}{{"dyno-1c-0.5gb", 25}, {"Dyno-2C-4GB", 150}, {"dyno-16c-64gb", 1000}, {"dyno-32c-64gb", 2400}} {
		i, ok := dynosize.Lookup(c.size)
		if !ok || i.Limit != 255 || i.Hour*720 < c.month-1e-9 || i.Hour*720 > c.month+1e-9 {
			t.Errorf("Lookup(%q) = %+v, %v; want 255 a process type at $%v a month", c.size, i, ok, c.month)
		}
	}
	if !dynosize.Fir("dyno-64c-128gb") || dynosize.Limit("dyno-64c-128gb") != 255 || dynosize.Fir("Standard-1X") {
		t.Errorf("an unknown Fir size is not recognised as Fir, or a Cedar one is")
	}
}
