package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dynopilot/dynopilot/event"
	"github.com/dynopilot/dynopilot/notify"
)

// ExampleVerify is a webhook receiver: read the body as bytes, verify, then parse.
func ExampleVerify() {
	secret := vectorSecret // os.Getenv("DYNOPILOT_WEBHOOK_SECRET") in a real receiver
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read", http.StatusBadRequest)
			return
		}
		if err := notify.Verify(secret, r.Header, body, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Type string `json:"type"`
			Data struct {
				Summary string `json:"summary"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &msg)
		fmt.Println(msg.Type+":", msg.Data.Summary)
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	// dynopilot's side, as the daemon sends it.
	w, err := notify.NewWebhook(notify.WebhookSettings{URL: srv.URL, Secret: secret}, notify.Options{})
	if err != nil {
		log.Fatal(err)
	}
	w.Publish(context.Background(), event.Event{
		Type: event.Scaled, Time: time.Now(), Policy: "shop/web", From: 2, To: 4, Reason: "above_target",
	})
	// Output: scaled: shop/web scaled up from 2 to 4 dynos (above_target)
}
