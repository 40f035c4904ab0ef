package fake_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/internal/setting"
)

func TestParseApp(t *testing.T) {
	got, err := fake.ParseApp("shop-prod:web=2:standard-2x,worker=1:Performance-M,clock=0")
	if err != nil {
		t.Fatal(err)
	}
	want := fake.AppSpec{Name: "shop-prod", Processes: []fake.Process{
		{Type: "web", Quantity: 2, Size: "Standard-2X"},
		{Type: "worker", Quantity: 1, Size: "Performance-M"},
		{Type: "clock", Quantity: 0, Size: "Standard-1X"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseApp = %+v, want %+v", got, want)
	}
	srv := fake.New(fake.Options{})
	srv.AddApp(got.Name, got.Processes...) // must not panic: ParseApp checks what AddApp does
	if f, ok := srv.Formation("shop-prod", "worker"); !ok || f.Size != "Performance-M" || f.Quantity != 1 {
		t.Errorf("AddApp of a parsed spec: %+v", f)
	}
}

func TestParseAppErrors(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []string // each a separate problem, in order
	}{
		{"shop", []string{`-app="shop": expected NAME:TYPE=QTY[:SIZE]`}},
		{"shop:", []string{`-app="shop:"`}},
		{"Shop_1:web=1", []string{`-app="Shop_1": expected an app name`}},
		{"shop:web", []string{`-app="web": expected TYPE=QTY[:SIZE]`}},
		{"shop:web=x", []string{`-app="web=x": expected a quantity of 0 or more after '=' (got "x")`}},
		{"shop:web=-1", []string{`-app="web=-1": expected a quantity of 0 or more`}},
		{"shop:w eb=1", []string{`-app="w eb=1": expected a process type`}},
		{"shop:web=1:Huge-9X", []string{`-app="web=1:Huge-9X": expected a Heroku dyno size such as Standard-1X, Performance-M or Eco after the quantity (got "Huge-9X")`}},
		{"shop:web=11:performance-l", []string{`-app="web=11:performance-l": expected at most 10 Performance-L dynos per process type`}},
		{"shop:web=2:eco", []string{`expected at most 1 Eco dynos`}},
		{"shop:web=1,web=2", []string{`-app="web=2": expected process type "web" only once`}},
		{"shop:web=60,worker=41", []string{`expected at most 100 dynos per app in total (got 101)`}},
		// Every problem at once.
		{"BAD:web=x,w!=1,worker=3:Nope", []string{`-app="BAD"`, `-app="web=x"`, `-app="w!=1"`, `-app="worker=3:Nope"`}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := fake.ParseApp(tc.spec)
			if err == nil {
				t.Fatalf("ParseApp(%q) succeeded, want an error", tc.spec)
			}
			var se *setting.Error
			if !errors.As(err, &se) || se.Name != fake.AppFlag {
				t.Errorf("error %v is not a *setting.Error naming -app", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i < len(lines) && !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
