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
type formationCache struct {
	api      Heroku
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	apps map[string]*appFormation
}

type appFormation struct {
	mu      sync.Mutex // one read or PATCH of this app at a time
	byType  map[string]herokuapi.Formation
	fetched time.Time
	err     error
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
		a = &appFormation{}
		c.apps[key] = a
	}
	return a
}

// get returns the app's formation, reading it when it is older than the refresh interval. A failed read keeps the
// last good formation only for deciding whether to hold: the error is returned with it.
func (c *formationCache) get(ctx context.Context, app string) (map[string]herokuapi.Formation, error) {
	return c.read(ctx, app, c.interval)
}

// fresh reads the app's formation now, whatever the cache holds: what a decision to PATCH is checked against, since
// a person (or another instance) may have scaled since the last refresh. The answer refreshes the cache, so it
// takes the place of the next periodic read.
func (c *formationCache) fresh(ctx context.Context, app string) (map[string]herokuapi.Formation, error) {
	return c.read(ctx, app, 0)
}

func (c *formationCache) read(ctx context.Context, app string, maxAge time.Duration) (map[string]herokuapi.Formation, error) {
	a := c.app(app)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byType != nil && c.now().Sub(a.fetched) < maxAge {
		return a.byType, nil
	}
	fs, err := c.api.ListFormation(ctx, app)
	if err != nil {
		return a.byType, fmt.Errorf("reading formation of %s: %w", app, err)
	}
	a.byType = index(fs)
	a.fetched = c.now()
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
		a.fetched = time.Time{}
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
