package fake

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/dynopilot/dynopilot/internal/dynosize"
	"github.com/dynopilot/dynopilot/internal/setting"
)

// AppFlag is the name ParseApp's errors give the setting: fakeheroku's -app flag.
const AppFlag = "-app"

// appNamePattern is Heroku's rule for app names.
var appNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,28}[a-z0-9]$`)

// AppSpec is an app as given on fakeheroku's command line, ready for Server.AddApp.
type AppSpec struct {
	Name      string
	Processes []Process
}

// ParseApp reads "NAME:TYPE=QTY[:SIZE][,TYPE=QTY[:SIZE]…]", e.g. "shop:web=2:Standard-1X,worker=1:Performance-M"
// (SIZE defaults to Standard-1X, any case). It checks everything AddApp would and reports every problem at once, each
// a *setting.Error naming the -app flag, the bad part and what was expected.
func ParseApp(spec string) (AppSpec, error) {
	const format = "NAME:TYPE=QTY[:SIZE][,TYPE=QTY[:SIZE]…]"
	name, rest, found := strings.Cut(spec, ":")
	if !found || rest == "" {
		return AppSpec{}, setting.Errorf(AppFlag, spec, "%s, e.g. shop:web=2:Standard-1X,worker=1", format)
	}
	var problems setting.List
	if !appNamePattern.MatchString(name) {
		problems.Add(setting.Errorf(AppFlag, name,
			"an app name of 3 to 30 lower-case letters, digits and dashes, starting with a letter (in %s)", format))
	}
	out := AppSpec{Name: name}
	seen := map[string]bool{}
	total := 0
	for part := range strings.SplitSeq(rest, ",") {
		typ, value, found := strings.Cut(part, "=")
		if !found {
			problems.Add(setting.Errorf(AppFlag, part, "TYPE=QTY[:SIZE], e.g. web=2:Standard-1X"))
			continue
		}
		qty, size, _ := strings.Cut(value, ":")
		p := Process{Type: typ, Size: size}
		ok := true
		if !typePattern.MatchString(typ) {
			problems.Add(setting.Errorf(AppFlag, part, "a process type of 1 to 128 letters, digits, '_' or '-' before '='"))
			ok = false
		} else if seen[typ] {
			problems.Add(setting.Errorf(AppFlag, part, "process type %q only once per app", typ))
			ok = false
		}
		seen[typ] = true
		n, err := strconv.Atoi(qty)
		if err != nil || n < 0 {
			problems.Add(setting.Errorf(AppFlag, part, "a quantity of 0 or more after '=' (got %q)", qty))
			ok = false
		}
		p.Quantity = n
		if !ok {
			continue
		}
		if p.Size == "" {
			p.Size = DefaultSize
		}
		canonical, limit, known := canonicalSize(p.Size)
		if !known {
			problems.Add(setting.Errorf(AppFlag, part, "a Heroku dyno size such as Standard-1X, Performance-M or Eco after the quantity (got %q)", p.Size))
			continue
		}
		if n > limit {
			problems.Add(setting.Errorf(AppFlag, part, "at most %d %s dynos per process type", limit, canonical))
			continue
		}
		p.Size = canonical
		total += n
		out.Processes = append(out.Processes, p)
	}
	var sizes []string
	for _, p := range out.Processes {
		sizes = append(sizes, p.Size)
	}
	limit := appDynoLimit
	if generationOf(sizes) == firGeneration {
		limit = dynosize.FirLimit
		for _, p := range out.Processes {
			if !dynosize.Fir(p.Size) {
				problems.Add(setting.Errorf(AppFlag, spec, "one generation per app: %s is a Cedar size beside Fir sizes (dyno-…)", p.Size))
			}
		}
	}
	if total > limit {
		problems.Add(setting.Errorf(AppFlag, spec, "at most %d dynos per app in total (got %d)", limit, total))
	}
	if err := problems.Err(); err != nil {
		return AppSpec{}, err
	}
	return out, nil
}
