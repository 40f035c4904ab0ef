package metrics

import (
	"net/url"
	"testing"
)

// TestSameOrigin: where credentials configured for a URL may go (issue 11, item 8).
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"http://prom:9090/api/v1/query", "http://prom:9090/x", true},
		{"http://PROM:9090/a", "http://prom:9090/b", true},
		{"https://prom/a", "https://prom:443/b", true},
		{"http://prom/a", "http://prom:80/b", true},
		{"https://prom/a", "http://prom/a", false}, // a downgrade to plain text
		{"https://prom:8443/a", "http://prom:8443/a", false},
		{"http://prom:9090/a", "http://prom:9091/a", false},
		{"http://prom/a", "http://evil.example/a", false},
		{"http://prom.evil.example/a", "http://prom/a", false},
	} {
		a, _ := url.Parse(c.a)
		b, _ := url.Parse(c.b)
		if got := sameOrigin(a, b); got != c.same {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}
