// Package dynosize holds what the Heroku API does not report about dyno sizes: how many dynos of a size one process
// type may run, and the list price, so that a target past the limit is caught before it is sent and a formation's
// cost can be shown. Limits are Heroku's defaults (support can raise them; callers accept an override).
package dynosize

import "strings"

// DefaultLimit is the per-process-type limit for sizes not in the table (Standard and unknown sizes).
const DefaultLimit = 100

// FirLimit is the Fir generation's limit, per process type and per app.
const FirLimit = 255

// Fir reports whether a size is of the Fir generation (dyno-<cpu>c-<memory>gb), known to the table or not.
func Fir(name string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(name)), "dyno-")
}

// Info is what dynopilot knows of one dyno size.
type Info struct {
	Name  string  // canonical name as Heroku spells it, e.g. "Standard-1X"
	Limit int     // dynos of this size per process type
	Hour  float64 // list price in US dollars per dyno-hour (monthly price / 720)
}

// sizes is keyed by lower-case name. Prices are Heroku's published monthly list prices divided by 720 hours.
var sizes = map[string]Info{
	"eco":               {"Eco", 1, 5.0 / 720},
	"basic":             {"Basic", 1, 7.0 / 720},
	"free":              {"Free", 1, 0},
	"hobby":             {"Hobby", 1, 7.0 / 720},
	"standard-1x":       {"Standard-1X", 100, 25.0 / 720},
	"standard-2x":       {"Standard-2X", 100, 50.0 / 720},
	"performance-m":     {"Performance-M", 10, 250.0 / 720},
	"performance-l":     {"Performance-L", 10, 500.0 / 720},
	"performance-l-ram": {"Performance-L-RAM", 10, 500.0 / 720},
	"performance-xl":    {"Performance-XL", 10, 750.0 / 720},
	"performance-2xl":   {"Performance-2XL", 10, 1500.0 / 720},
	"private-s":         {"Private-S", 10, 300.0 / 720},
	"private-m":         {"Private-M", 10, 600.0 / 720},
	"private-l":         {"Private-L", 10, 1200.0 / 720},
	"shield-s":          {"Shield-S", 10, 360.0 / 720},
	"shield-m":          {"Shield-M", 10, 720.0 / 720},
	"shield-l":          {"Shield-L", 10, 1440.0 / 720},
	// Fir generation: 255 per process type (and per app); monthly list prices per the CLI's table.
	"dyno-1c-0.5gb":  {"dyno-1c-0.5gb", FirLimit, 25.0 / 720},
	"dyno-2c-1gb":    {"dyno-2c-1gb", FirLimit, 50.0 / 720},
	"dyno-1c-4gb":    {"dyno-1c-4gb", FirLimit, 80.0 / 720},
	"dyno-1c-8gb":    {"dyno-1c-8gb", FirLimit, 100.0 / 720},
	"dyno-2c-4gb":    {"dyno-2c-4gb", FirLimit, 150.0 / 720},
	"dyno-2c-8gb":    {"dyno-2c-8gb", FirLimit, 160.0 / 720},
	"dyno-2c-16gb":   {"dyno-2c-16gb", FirLimit, 250.0 / 720},
	"dyno-4c-8gb":    {"dyno-4c-8gb", FirLimit, 300.0 / 720},
	"dyno-4c-16gb":   {"dyno-4c-16gb", FirLimit, 320.0 / 720},
	"dyno-4c-32gb":   {"dyno-4c-32gb", FirLimit, 500.0 / 720},
	"dyno-8c-16gb":   {"dyno-8c-16gb", FirLimit, 600.0 / 720},
	"dyno-8c-32gb":   {"dyno-8c-32gb", FirLimit, 640.0 / 720},
	"dyno-8c-64gb":   {"dyno-8c-64gb", FirLimit, 750.0 / 720},
	"dyno-16c-32gb":  {"dyno-16c-32gb", FirLimit, 1200.0 / 720},
	"dyno-16c-64gb":  {"dyno-16c-64gb", FirLimit, 1000.0 / 720},
	"dyno-16c-128gb": {"dyno-16c-128gb", FirLimit, 1500.0 / 720},
	"dyno-32c-64gb":  {"dyno-32c-64gb", FirLimit, 2400.0 / 720},
}

// Lookup returns what is known of a size, matched without regard to case. Unknown sizes get DefaultLimit, a zero
// price and ok=false; a "Performance-*", "Private-*" or "Shield-*" size not in the table still gets their limit of 10,
// and a Fir "dyno-*" size FirLimit.
func Lookup(name string) (info Info, ok bool) {
	key := strings.ToLower(strings.TrimSpace(name))
	if i, found := sizes[key]; found {
		return i, true
	}
	for _, family := range []string{"performance-", "private-", "shield-"} {
		if strings.HasPrefix(key, family) {
			return Info{Name: name, Limit: 10}, false
		}
	}
	if Fir(key) {
		return Info{Name: name, Limit: FirLimit}, false
	}
	return Info{Name: name, Limit: DefaultLimit}, false
}

// Limit returns the number of dynos of this size one process type may run.
func Limit(name string) int {
	i, _ := Lookup(name)
	return i.Limit
}
