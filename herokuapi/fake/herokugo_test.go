package fake_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

// batchUpdate is the anonymous element type of heroku.FormationBatchUpdateOpts.Updates.
type batchUpdate = struct {
	DynoSize *struct {
		ID   *string `json:"id,omitempty" url:"id,omitempty,key"`
		Name *string `json:"name,omitempty" url:"name,omitempty,key"`
	} `json:"dyno_size,omitempty" url:"dyno_size,omitempty,key"`
	Quantity *int   `json:"quantity,omitempty" url:"quantity,omitempty,key"`
	Type     string `json:"type" url:"type,key"`
}

// herokuService is Heroku's own client pointed at the fake. heroku.Transport sets the v3 Accept header, the
// bearer token, and turns every non-2xx answer into a heroku.Error decoded from the body.
func herokuService(e *env, tok string) *heroku.Service {
	s := heroku.NewService(&http.Client{Transport: &heroku.Transport{BearerToken: tok, UserAgent: "dynopilot-fake-test"}})
	s.URL = e.url
	return s
}

// TestHerokuGoWireCompatibility checks the fake against github.com/heroku/heroku-go/v6: every answer decodes into
// its types, and errors come back as heroku.Error with Heroku's status and id.
func TestHerokuGoWireCompatibility(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	h := herokuService(e, token)

	list, err := h.FormationList(ctx, "shop", nil)
	if err != nil {
		t.Fatalf("FormationList: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("FormationList = %d formations, want 2", len(list))
	}
	created := time.Date(2026, 11, 20, 9, 14, 3, 0, time.UTC)
	web, worker := list[0], list[1]
	if web.Type != "web" || web.Quantity != 2 || web.Size != "Standard-1X" || web.DynoSize.Name != "Standard-1X" ||
		web.App.ID != e.app.ID || web.App.Name != "shop" || web.Command != "bundle exec puma -C config/puma.rb" ||
		!web.CreatedAt.Equal(created) || !web.UpdatedAt.Equal(created) || web.ID == "" || web.DynoSize.ID == "" {
		t.Errorf("FormationList web = %+v", web)
	}
	if worker.Type != "worker" || worker.Quantity != 1 || worker.DynoSize.Name != "Performance-M" {
		t.Errorf("FormationList worker = %+v", worker)
	}

	info, err := h.FormationInfo(ctx, e.app.ID, "worker")
	if err != nil || info.ID != worker.ID || info.Quantity != 1 {
		t.Errorf("FormationInfo = %+v, %v", info, err)
	}

	// FormationUpdate: quantity and dyno_size, as heroku-go sends them.
	e.clock.Advance(2 * time.Minute)
	qty, size := 4, "Standard-2X"
	var upd heroku.FormationUpdateOpts
	upd.Quantity = &qty
	upd.DynoSize = &struct {
		ID   *string `json:"id,omitempty" url:"id,omitempty,key"`
		Name *string `json:"name,omitempty" url:"name,omitempty,key"`
	}{Name: &size}
	f, err := h.FormationUpdate(ctx, "shop", "web", upd)
	if err != nil {
		t.Fatalf("FormationUpdate: %v", err)
	}
	if f.Quantity != 4 || f.Size != "Standard-2X" || f.DynoSize.Name != "Standard-2X" || !f.UpdatedAt.Equal(created.Add(2*time.Minute)) {
		t.Errorf("FormationUpdate = %+v", f)
	}
	if got, _ := e.srv.Formation("shop", "web"); got.Quantity != 4 || got.Size != "Standard-2X" {
		t.Errorf("fake after FormationUpdate = %+v", got)
	}

	// FormationBatchUpdate.
	var batch heroku.FormationBatchUpdateOpts
	batch.Updates = []batchUpdate{{Type: "web", Quantity: heroku.Int(6)}, {Type: "worker", Quantity: heroku.Int(3)}}
	res, err := h.FormationBatchUpdate(ctx, "shop", batch)
	if err != nil {
		t.Fatalf("FormationBatchUpdate: %v", err)
	}
	if len(res) != 2 || res[0].Type != "web" || res[0].Quantity != 6 || res[1].Type != "worker" || res[1].Quantity != 3 {
		t.Errorf("FormationBatchUpdate = %+v", res)
	}

	acct, err := h.AccountInfo(ctx)
	if err != nil || acct.Email != fake.DefaultEmail || acct.ID == "" {
		t.Errorf("AccountInfo = %+v, %v", acct, err)
	}
	rl, err := h.RateLimitInfo(ctx)
	// The 2 minutes refilled the pool; then update, batch update and account took 3 (rate limits take none).
	if err != nil || rl.Remaining != e.srv.Pool() || rl.Remaining != fake.DefaultPool-3 {
		t.Errorf("RateLimitInfo = %+v, %v; want %d", rl, err, fake.DefaultPool-3)
	}
	e.srv.AddAuthorization("auth-1", heroku.Int(86400))
	e.srv.AddAuthorization("auth-2", nil)
	auth, err := h.OAuthAuthorizationInfo(ctx, "auth-1")
	if err != nil || auth.AccessToken == nil || auth.AccessToken.ExpiresIn == nil || *auth.AccessToken.ExpiresIn != 86400 {
		t.Errorf("OAuthAuthorizationInfo(auth-1) = %+v, %v", auth, err)
	}
	auth, err = h.OAuthAuthorizationInfo(ctx, "auth-2")
	if err != nil || auth.AccessToken == nil || auth.AccessToken.ExpiresIn != nil {
		t.Errorf("OAuthAuthorizationInfo(auth-2) = %+v, %v; want expires_in nil", auth, err)
	}
}

func TestHerokuGoErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	h := herokuService(e, token)

	check := func(name string, err error, status int, id, message string) {
		t.Helper()
		var he heroku.Error
		if !errors.As(err, &he) {
			t.Errorf("%s: error %v (%T) is not a heroku.Error", name, err, err)
			return
		}
		if he.StatusCode != status || he.ID != id || (message != "" && he.Error() != message) {
			t.Errorf("%s: heroku.Error{StatusCode:%d ID:%q message:%q}, want %d %q %q", name, he.StatusCode, he.ID, he.Error(), status, id, message)
		}
	}

	_, err := h.FormationList(ctx, "nope", nil)
	check("unknown app", err, 404, "not_found", "Couldn't find that app.")

	_, err = h.FormationInfo(ctx, "shop", "clock")
	check("unknown type", err, 404, "not_found", "Couldn't find that formation.")

	_, err = h.FormationUpdate(ctx, "shop", "worker", heroku.FormationUpdateOpts{Quantity: heroku.Int(11)})
	check("past the limit", err, 422, "invalid_params", "Cannot scale to more than 10 Performance-M size dynos per process type.")

	_, err = h.FormationBatchUpdate(ctx, "shop", heroku.FormationBatchUpdateOpts{
		Updates: []batchUpdate{{Type: "worker", Quantity: heroku.Int(12)}},
	})
	check("batch past the limit", err, 422, "invalid_params", "Cannot scale to more than 10 Performance-M size dynos per process type.")

	_, err = herokuService(e, "wrong-token").FormationList(ctx, "shop", nil)
	check("bad token", err, 401, "unauthorized", "Invalid credentials provided.")

	e.srv.SetPool(0)
	_, err = h.FormationList(ctx, "shop", nil)
	check("empty pool", err, 429, "rate_limit", "")

	e.srv.SetPool(10)
	e.srv.Fail(503, 1)
	_, err = h.AccountInfo(ctx)
	check("injected failure", err, 503, "service_unavailable", "")

	if w, _ := e.srv.Formation("shop", "worker"); w.Quantity != 1 {
		t.Errorf("failed updates changed the worker to %d", w.Quantity)
	}
}
