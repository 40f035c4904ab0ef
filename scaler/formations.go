package scaler

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi"
)

// refreshShare is the part of the hourly API budget that periodic formation reads may use; the rest is left for
// scale events (two requests each: the fresh read a PATCH is checked against, and the PATCH), token checks and
// bursts.
const refreshShare = 0.5

// RefreshInterval stretches the configured formation refresh so that reading every app's formation fits the share
// of the hourly budget (tokens dynopilot may spend per hour) set aside for it.
func RefreshInterval(configured time.Duration, apps int, budgetPerHour float64) time.Duration {
	if apps <= 0 || budgetPerHour <= 0 {
		return configured
	}
	floor := time.Duration(float64(apps) * 3600 / (budgetPerHour * refreshShare) * float64(time.Second))
	if floor > configured {
		return floor.Round(time.Second)
	}
	return configured
}

// formationCache keeps each app's formation, read at most once per refresh interval and updated by every PATCH
// answer, so that the many policies of an app cost one API call between them.
//
// Each app is re-read at its own instants: its phase (a hash of its name) after each multiple of the refresh
// interval since the Unix epoch. Otherwise the formations read together on the first round would all expire
// together, and every refresh of every app would go out in one burst (500 GETs every 15 minutes, 2,000 every
// hour) rather than a steady trickle. The phase is stable, so no later event re-aligns the apps: not a restart,
// not a load spike that scales them all in the same minute. A formation is never older than one refresh interval
// (and a tick) when it is used, and a periodic read is made at most once per interval for each app, the rate the
// budget plans for.
type formationCache struct {
	api      Heroku
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	apps map[string]*appFormation
}

type appFormation struct {
	mu     sync.Mutex // one read or PATCH of this app at a time
	byType map[string]herokuapi.Formation
	phase  time.Duration // the app's instant within the refresh interval
	due    time.Time     // the next periodic read; zero: at the next tick
}

func newFormationCache(api Heroku, interval time.Duration, now func() time.Time) *formationCache {
	return &formationCache{api: api, interval: interval, now: now, apps: map[string]*appFormation{}}
}

func (c *formationCache) app(name string) *appFormation {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := strings.ToLower(name)
	a, ok := c.apps[key]
	if !ok {
		a = &appFormation{phase: refreshOffset(key, c.interval)}
		c.apps[key] = a
	}
	return a
}

// get returns the app's formation, reading it when its periodic read is due. A failed read keeps the last good
// formation only for deciding whether to hold: the error is returned with it.
func (c *formationCache) get(ctx context.Context, app string) (map[string]herokuapi.Formation, error) {
	return c.read(ctx, app, false)
}

// fresh reads the app's formation now, whatever the cache holds: what a decision to PATCH is checked against, since
// a person (or another instance) may have scaled since the last refresh. The answer refreshes the cache but leaves
// the app's next periodic read where it was, at the app's phase.
func (c *formationCache) fresh(ctx context.Context, app string) (map[string]herokuapi.Formation, error) {
	return c.read(ctx, app, true)
}

func (c *formationCache) read(ctx context.Context, app string, fresh bool) (map[string]herokuapi.Formation, error) {
	a := c.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !fresh && a.byType != nil && c.now().Before(a.due) {
		return a.byType, nil
	}
	fs, err := c.api.ListFormation(ctx, app)
	if err != nil {
		return a.byType, fmt.Errorf("reading formation of %s: %w", app, err)
	}
	a.byType = index(fs)
	if now := c.now(); !fresh || !now.Before(a.due) { // a fresh read made when the periodic one is due stands for it
		a.due = nextAt(now, c.interval, a.phase)
	}
	return a.byType, nil
}

// patch applies quantities to one app in one request and stores the answer.
func (c *formationCache) patch(ctx context.Context, app string, updates []herokuapi.FormationUpdate) error {
	a := c.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	var fs []herokuapi.Formation
	var err error
	if len(updates) == 1 {
		var f herokuapi.Formation
		f, err = c.api.UpdateFormation(ctx, app, updates[0].Type, updates[0].Quantity)
		fs = []herokuapi.Formation{f}
	} else {
		fs, err = c.api.BatchUpdateFormation(ctx, app, updates)
	}
	if err != nil {
		// The outcome is unknown (the PATCH may have landed): force the next tick to re-read the formation.
		a.due = time.Time{}
		return err
	}
	if a.byType == nil {
		a.byType = map[string]herokuapi.Formation{}
	}
	next := make(map[string]herokuapi.Formation, len(a.byType))
	for k, v := range a.byType {
		next[k] = v
	}
	for _, f := range fs {
		next[strings.ToLower(f.Type)] = f
	}
	a.byType = next
	return nil
}

func index(fs []herokuapi.Formation) map[string]herokuapi.Formation {
	m := make(map[string]herokuapi.Formation, len(fs))
	for _, f := range fs {
		m[strings.ToLower(f.Type)] = f
	}
	return m
}

// costPerHour is quantity times the list price of size.
func costPerHour(quantity int, hourly float64) float64 {
	if quantity <= 0 || math.IsNaN(hourly) {
		return 0
	}
	return float64(quantity) * hourly
}
