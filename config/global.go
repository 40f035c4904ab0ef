package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// checkGlobal validates what the types alone do not.
func checkGlobal(g Global, vars map[string]string) []error {
	var l setting.List
	l = append(l, setting.Flatten(g.Notify.Validate())...)
	if g.APIRate <= 0 {
		l.Add(setting.Errorf("DYNOPILOT_API_RATE", vars["DYNOPILOT_API_RATE"], "a positive number of request tokens per hour (Heroku's default is 4500)"))
	}
	if g.APIReserve < 0 || (g.APIRate > 0 && g.APIReserve >= g.APIRate) {
		l.Add(setting.Errorf("DYNOPILOT_API_RESERVE", vars["DYNOPILOT_API_RESERVE"], "0 or more and less than DYNOPILOT_API_RATE (%d)", g.APIRate))
	}
	if g.FormationRefresh < 5*time.Second {
		l.Add(setting.Errorf("DYNOPILOT_FORMATION_REFRESH", vars["DYNOPILOT_FORMATION_REFRESH"], "a duration of at least 5s, such as 1m (how often each app's formation is re-read)"))
	}
	if g.PushInterval <= 0 {
		l.Add(setting.Errorf("DYNOPILOT_PUSH_INTERVAL", vars["DYNOPILOT_PUSH_INTERVAL"], "a positive duration such as 15s"))
	}
	for _, v := range []struct{ name, value string }{
		{"HEROKU_API_URL", g.APIURL}, {"PUSHGATEWAY_URL", g.PushgatewayURL}, {"PROMETHEUS_URL", g.Sources.PrometheusURL},
		{"DYNOPILOT_URL", g.DaemonURL},
	} {
		if v.value == "" {
			continue
		}
		u, err := url.Parse(v.value)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			l.Add(setting.Errorf(v.name, v.value, "an http:// or https:// URL"))
		case v.name == "HEROKU_API_URL" && u.User != nil:
			l.Add(setting.Errorf(v.name, v.value, "an http:// or https:// URL without credentials: the token goes in HEROKU_API_KEY"))
		}
	}
	if g.StateURL != "" {
		if scheme, _, ok := strings.Cut(g.StateURL, "://"); !ok || (scheme != "postgres" && scheme != "postgresql") {
			l.Add(setting.Errorf("DYNOPILOT_STATE_URL", g.StateURL, "a postgres:// URL (the database's direct URL, not a connection pooler's)"))
		}
	}
	switch strings.ToLower(g.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		l.Add(setting.Errorf("LOG_LEVEL", g.LogLevel, "one of debug, info, warn, error"))
	}
	switch strings.ToLower(g.LogFormat) {
	case "auto", "pretty", "text", "json":
	default:
		l.Add(setting.Errorf("LOG_FORMAT", g.LogFormat, "one of auto, pretty, text, json"))
	}
	if g.Listen != "" && !strings.Contains(g.Listen, ":") {
		l.Add(setting.Errorf("DYNOPILOT_LISTEN", g.Listen, "a host:port address such as :9090 or 127.0.0.1:9090"))
	}
	return l
}

// StatusURL is where `check` finds the running daemon's /api/policies: DYNOPILOT_URL, else the app's own domain
// when Heroku tells it (runtime-dyno-metadata), else "".
func (g Global) StatusURL() string {
	switch {
	case g.DaemonURL != "":
		return strings.TrimRight(g.DaemonURL, "/")
	case g.AppDomain != "":
		return "https://" + g.AppDomain
	}
	return ""
}

// String describes the global configuration without secrets.
func (g Global) String() string {
	key := "unset"
	if g.APIKey != "" {
		key = "set"
	}
	return fmt.Sprintf("api=%s key=%s dry_run=%v listen=%s", setting.Redact("HEROKU_API_URL", g.APIURL), key, g.DryRun, g.ListenAddr())
}
