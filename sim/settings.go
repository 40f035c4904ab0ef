package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"
	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/policy"
	"github.com/dynopilot/dynopilot/setting"
)

// PolicyConfig is one policy as the simulator runs it: the validated policy, its evaluation interval, and the
// settings as written (for the report).
type PolicyConfig struct {
	Policy   *policy.Policy
	Interval string            // a cron spec robfig/cron accepts, e.g. "@every 15s"
	Settings map[string]string // the POLICY_<n>_ settings that were set, without the prefix
}

// LoadPolicy reads policy n from environ (KEY=VALUE entries), the way the daemon does: POLICY_<n>_<SETTING>, with
// POLICY_DEFAULT_<SETTING> for settings the policy leaves unset, parsed by caarlos0/env into policy.Settings and
// validated by Settings.Parse; INTERVAL (default 10s) by config.ParseInterval. APP and PROCESS default to "sim" and
// "web" because nothing is scaled. Every problem is reported at once, named with its variable.
//
// This is deliberately smaller than config.Load: it ignores SOURCE and the global settings, which a simulation does
// not use, but it rejects POLICY_<n>_ names that are no setting at all, so a typo cannot silently leave a default in
// place while a user tunes.
func LoadPolicy(environ []string, n int) (*PolicyConfig, error) {
	prefix := fmt.Sprintf("POLICY_%d_", n)
	vars := map[string]string{}
	defaults := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, prefix):
			vars[k] = v
		case strings.HasPrefix(k, "POLICY_DEFAULT_"):
			defaults[strings.TrimPrefix(k, "POLICY_DEFAULT_")] = v
		}
	}
	for name, v := range defaults {
		if _, set := vars[prefix+name]; !set {
			vars[prefix+name] = v
		}
	}
	var problems setting.List
	known := config.SettingNames()
	shown := map[string]string{}
	for k, v := range vars {
		name := strings.TrimPrefix(k, prefix)
		if !slices.Contains(known, name) {
			problems.Add(setting.Errorf(k, v, "a policy setting (%s)", strings.Join(known, ", ")))
			continue
		}
		shown[name] = v
	}
	for name, v := range map[string]string{"APP": "sim", "PROCESS": "web"} {
		if _, set := vars[prefix+name]; !set {
			vars[prefix+name] = v
		}
	}
	var s policy.Settings
	if err := env.ParseWithOptions(&s, env.Options{Prefix: prefix, Environment: vars}); err != nil {
		problems.Add(fmt.Errorf("read %s settings: %w", prefix, err))
	}
	p, err := s.Parse()
	if err != nil {
		problems.Add(setting.Prefixed(prefix, err))
	}
	interval := "@every 10s"
	if v, set := vars[prefix+"INTERVAL"]; set {
		spec, _, err := config.ParseInterval(v)
		if err != nil {
			problems.Add(setting.Errorf(prefix+"INTERVAL", v, "%v", err))
		}
		interval = spec
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return &PolicyConfig{Policy: p, Interval: interval, Settings: shown}, nil
}

// ReadEnvFile reads KEY=VALUE lines (blank lines and # comments ignored, an optional "export " and matching quotes
// around the value removed) as environ entries.
func ReadEnvFile(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		k, v, ok := strings.Cut(text, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: %q: expected KEY=VALUE", name, line, text)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, k+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// interval is an evaluation schedule on the virtual clock.
func parseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, errors.New("interval " + spec + ": " + err.Error())
	}
	return s, nil
}
