package herokuapi_test

import (
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/herokuapi"
)

// TestNewNeverShowsTheURLsCredentials: issue 11, item 7. A HEROKU_API_URL that url.Parse rejects was shown as
// written, password included; one it accepts showed its user name. The error names the variable, never the
// userinfo.
func TestNewNeverShowsTheURLsCredentials(t *testing.T) {
	for _, raw := range []string{
		"http://apiuser:hunter2@host:bad",
		"http://apiuser:hun/ter2@api.example.com",
		"ftp://apiuser:hunter2@api.example.com",
		"https://apiuser:hunter2@api.heroku.com",
		"https://hunter2@api.heroku.com",
	} {
		_, err := herokuapi.New(herokuapi.Config{BaseURL: raw, Token: "t"})
		if err == nil {
			t.Errorf("New(%q) accepted", raw)
			continue
		}
		if !strings.HasPrefix(err.Error(), "HEROKU_API_URL=") {
			t.Errorf("New(%q): %q does not name HEROKU_API_URL", raw, err)
		}
		for _, secret := range []string{"hunter2", "hun/ter2", "apiuser"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("New(%q): %q shows %q", raw, err, secret)
			}
		}
	}
}
