package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"

	"github.com/dynopilot/dynopilot/config"
	"github.com/dynopilot/dynopilot/policy"
)

// PolicyConfig is one policy as the simulator runs it: the validated policy, its evaluation interval, and the
// settings as written (for the report).
type PolicyConfig struct {
	Policy   *policy.Policy
	Interval string            // a cron spec robfig/cron accepts, e.g. "@every 15s"
	Settings map[string]string // the POLICY_<n>_ settings that were set, without the prefix
}

// LoadPolicy reads policy n from environ (KEY=VALUE entries) through config.LoadDecision, so exactly as the daemon
// reads it: POLICY_<n>_<SETTING> with POLICY_DEFAULT_<SETTING> for what the policy leaves unset, every name checked
// and every problem reported at once, named with its variable. The source settings are not read: the simulator
// makes the readings. APP and PROCESS default to "sim" and "web" because nothing is scaled.
func LoadPolicy(environ []string, n int) (*PolicyConfig, error) {
	prefix := fmt.Sprintf("POLICY_%d_", n)
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	env := slices.Clone(environ)
	for name, v := range map[string]string{"APP": "sim", "PROCESS": "web"} {
		_, own := vars[prefix+name]
		_, shared := vars["POLICY_DEFAULT_"+name]
		if !own && !shared {
			env = append(env, prefix+name+"="+v)
		}
	}
	pol, interval, err := config.LoadDecision(env, n)
	if err != nil {
		return nil, err
	}
	shown := map[string]string{} // the settings as written, for the report
	for _, name := range config.SettingNames() {
		if v, ok := vars[prefix+name]; ok {
			shown[name] = v
		} else if v, ok := vars["POLICY_DEFAULT_"+name]; ok {
			shown[name] = v
		}
	}
	return &PolicyConfig{Policy: pol, Interval: interval, Settings: shown}, nil
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
