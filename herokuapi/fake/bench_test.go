package fake_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
)

// BenchmarkServeHTTP measures the fake's own cost per request, without the network: it should stay far below
// anything a test would notice.
func BenchmarkServeHTTP(b *testing.B) {
	srv := fake.New(fake.Options{Token: token, Pool: 1 << 30, Now: newClock().Now})
	srv.AddApp("shop", fake.Process{Type: "web", Quantity: 2}, fake.Process{Type: "worker", Quantity: 1})
	for _, bc := range []struct {
		name, method, path, body string
	}{
		{"list", http.MethodGet, "/apps/shop/formation", ""},
		{"update", http.MethodPatch, "/apps/shop/formation/web", `{"quantity":3}`},
		{"batch", http.MethodPatch, "/apps/shop/formation", `{"updates":[{"type":"web","quantity":4},{"type":"worker","quantity":2}]}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(bc.method, bc.path, strings.NewReader(bc.body))
				req.Header.Set("Accept", acceptV3)
				req.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
