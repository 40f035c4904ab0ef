package herokuapi_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynopilot/dynopilot/herokuapi"
)

func TestLookupToken(t *testing.T) {
	dir := t.TempDir()
	netrc := filepath.Join(dir, ".netrc")
	if err := os.WriteFile(netrc, []byte("machine git.heroku.com\n  login a@b.c\n  password GIT\nmachine api.heroku.com\n  login a@b.c\n  password API-TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, src, err := herokuapi.LookupToken("ENV-TOKEN", netrc)
	if err != nil || tok != "ENV-TOKEN" || src != "HEROKU_API_KEY" {
		t.Errorf("with HEROKU_API_KEY: %q %q %v", tok, src, err)
	}
	tok, src, err = herokuapi.LookupToken("", netrc)
	if err != nil || tok != "API-TOKEN" || src != netrc {
		t.Errorf("from netrc: %q %q %v", tok, src, err)
	}
	_, _, err = herokuapi.LookupToken("", filepath.Join(dir, "missing"))
	if !errors.Is(err, herokuapi.ErrNoToken) {
		t.Errorf("no token anywhere: %v, want ErrNoToken", err)
	}
	one := filepath.Join(dir, "oneline")
	os.WriteFile(one, []byte("machine api.heroku.com login x password ONE-LINE"), 0o600)
	if tok, _, _ := herokuapi.LookupToken("", one); tok != "ONE-LINE" {
		t.Errorf("single-line netrc: %q", tok)
	}
}
