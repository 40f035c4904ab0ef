package herokuapi

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// Formation is the quantity and size of one process type of an app, as the API returns it.
type Formation struct {
	App       Ref       `json:"app"`
	Command   string    `json:"command"`
	CreatedAt time.Time `json:"created_at"`
	DynoSize  Ref       `json:"dyno_size"`
	ID        string    `json:"id"`
	Quantity  int       `json:"quantity"`
	Size      string    `json:"size"` // deprecated by Heroku in favour of DynoSize; read both
	Type      string    `json:"type"`
	UpdatedAt time.Time `json:"updated_at"` // when it was last scaled, by anyone: what cooldowns count from
}

// Ref names a related resource.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// SizeName returns the dyno size's name, from dyno_size or the deprecated size field.
func (f Formation) SizeName() string {
	if f.DynoSize.Name != "" {
		return f.DynoSize.Name
	}
	return f.Size
}

// FormationUpdate is one entry of a batch update.
type FormationUpdate struct {
	Type     string `json:"type"`
	Quantity int    `json:"quantity"`
}

var processType = regexp.MustCompile(`^[-\w]{1,128}$`)

// ListFormation returns every process type of app (name or id).
func (c *Client) ListFormation(ctx context.Context, app string) ([]Formation, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	var out []Formation
	cl := call{method: "GET", endpoint: "/apps/{app}/formation", path: "/apps/" + url.PathEscape(app) + "/formation", limited: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	return out, checkFormations(cl, out)
}

// UpdateFormation sets the quantity of one process type. The quantity is absolute, so a retried PATCH is safe.
func (c *Client) UpdateFormation(ctx context.Context, app, typ string, quantity int) (Formation, error) {
	if err := checkApp(app); err != nil {
		return Formation{}, err
	}
	if err := checkUpdate(FormationUpdate{Type: typ, Quantity: quantity}); err != nil {
		return Formation{}, err
	}
	var out Formation
	cl := call{method: "PATCH", endpoint: "/apps/{app}/formation/{type}", path: "/apps/" + url.PathEscape(app) + "/formation/" + typ,
		body: map[string]int{"quantity": quantity}, limited: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return Formation{}, err
	}
	return out, checkFormations(cl, []Formation{out})
}

// BatchUpdateFormation sets several process types of one app in one request (one token), all or nothing.
func (c *Client) BatchUpdateFormation(ctx context.Context, app string, updates []FormationUpdate) ([]Formation, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	if len(updates) == 0 {
		return nil, fmt.Errorf("batch formation update of %s: expected at least one update", app)
	}
	for _, u := range updates {
		if err := checkUpdate(u); err != nil {
			return nil, err
		}
	}
	var out []Formation
	cl := call{method: "PATCH", endpoint: "/apps/{app}/formation", path: "/apps/" + url.PathEscape(app) + "/formation",
		body: map[string][]FormationUpdate{"updates": updates}, limited: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return nil, err
	}
	return out, checkFormations(cl, out)
}

func checkApp(app string) error {
	if app == "" {
		return fmt.Errorf("heroku app name is empty: expected an app name or id")
	}
	return nil
}

func checkUpdate(u FormationUpdate) error {
	if !processType.MatchString(u.Type) {
		return fmt.Errorf("process type %q: expected 1 to 128 letters, digits, '_' or '-'", u.Type)
	}
	if u.Quantity < 0 {
		return fmt.Errorf("quantity %d for process type %s: expected 0 or more", u.Quantity, u.Type)
	}
	return nil
}

// checkFormations rejects answers that would mislead a decision: a negative quantity or a missing type.
func checkFormations(cl call, fs []Formation) error {
	for _, f := range fs {
		if f.Type == "" || f.Quantity < 0 {
			return &Error{Method: cl.method, Endpoint: cl.endpoint, Path: cl.path, Status: 200, ID: "bad_answer",
				Err: fmt.Errorf("formation %q with quantity %d: expected a process type and a quantity of 0 or more", f.Type, f.Quantity)}
		}
	}
	return nil
}
