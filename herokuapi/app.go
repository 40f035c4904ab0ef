package herokuapi

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
)

// AppInfo is what dynopilot reads of an app: who it is and its generation.
type AppInfo struct {
	ID         string
	Name       string
	Generation string // "cedar" or "fir" (lower case); "cedar" when the API does not say, as for apps before Fir
}

// App reads GET /apps/{app}.
func (c *Client) App(ctx context.Context, app string) (AppInfo, error) {
	if err := checkApp(app); err != nil {
		return AppInfo{}, err
	}
	var out struct {
		ID         string          `json:"id"`
		Name       string          `json:"name"`
		Generation json.RawMessage `json:"generation"`
	}
	cl := call{method: "GET", endpoint: "/apps/{app}", path: "/apps/" + url.PathEscape(app), limited: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return AppInfo{}, err
	}
	return AppInfo{ID: out.ID, Name: out.Name, Generation: generationName(out.Generation)}, nil
}

// generationName reads the app's generation whether the API gives it as an object ({"name": "fir"}) or a string.
func generationName(raw json.RawMessage) string {
	var obj struct {
		Name string `json:"name"`
	}
	var name string
	switch {
	case json.Unmarshal(raw, &obj) == nil && obj.Name != "":
		name = obj.Name
	case json.Unmarshal(raw, &name) == nil && name != "":
	default:
		name = "cedar"
	}
	return strings.ToLower(name)
}
