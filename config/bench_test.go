package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dynopilot/dynopilot/config"
)

// benchEnviron is a configuration of n valid policies as a large installation writes it: two process types per
// app, a POLICY_DEFAULT_ or two, a mix of sources, some schedules and cron intervals, and the global settings.
func benchEnviron(n int) []string {
	environ := []string{
		"HEROKU_API_KEY=k", "REDIS_URL=redis://127.0.0.1:6379/0", "DYNOPILOT_DRAIN_TOKEN=t",
		"POLICY_DEFAULT_MAX=8", "POLICY_DEFAULT_INTERVAL=15s", "POLICY_DEFAULT_DOWN_COOLDOWN=10m",
	}
	for i := range n {
		p := fmt.Sprintf("POLICY_%d_", i)
		app := fmt.Sprintf("app-%d", i/2)
		environ = append(environ, p+"APP="+app)
		switch i % 4 {
		case 0:
			environ = append(environ, p+"PROCESS=web", p+"SOURCE=hirefire", p+"SOURCE_URL=https://"+app+".example/hirefire/t/info",
				p+"TARGET=300ms", p+"MAX=12")
		case 1:
			environ = append(environ, p+"PROCESS=worker", p+"SOURCE=sidekiq", p+"QUEUES=default,mailers", p+"TARGET=10s",
				p+"SCHEDULE=CRON_TZ=Europe/Berlin 0 8 * * MON-FRI for 10h min=4")
		case 2:
			environ = append(environ, p+"PROCESS=web", p+"SOURCE=logdrain", p+"TARGET=250ms", p+"INTERVAL=*/1 * * * *")
		case 3:
			environ = append(environ, p+"PROCESS=worker", p+"SOURCE=hirefire", p+"SOURCE_URL=https://"+app+".example/hirefire/t/info",
				p+"MODE=step", p+"UP_ABOVE=50", p+"DOWN_BELOW=5", p+"MIN=0")
		}
	}
	return environ
}

// BenchmarkLoad loads n policies. The process environment holds the same variables, as it does in the daemon
// (`dynopilot run` passes os.Environ()): whatever reads the process environment again per policy is measured too.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{500, 1000, 4000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			environ := benchEnviron(n)
			for _, kv := range environ {
				k, v, _ := strings.Cut(kv, "=")
				b.Setenv(k, v)
			}
			b.ReportAllocs()
			for b.Loop() {
				cfg, err := config.Load(environ)
				if err != nil {
					b.Fatal(err)
				}
				if len(cfg.Policies) != n {
					b.Fatalf("%d policies, want %d", len(cfg.Policies), n)
				}
			}
		})
	}
}
