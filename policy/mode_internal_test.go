package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/setting"
)

// The tests here make a new mode fail loudly when it is not complete: see the comment at the top of mode.go.

var modeT0 = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

// modeConstants returns the names of the constants of type Mode declared in the package.
func modeConstants(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Mode" {
					for _, n := range vs.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no constant of type Mode: has the declaration changed?")
	}
	return names
}

// TestEveryModeConstantIsRegistered: a Mode constant declared without a line in modes would be refused by Parse.
func TestEveryModeConstantIsRegistered(t *testing.T) {
	consts := modeConstants(t)
	values := map[string]Mode{"ModeTarget": ModeTarget, "ModeStep": ModeStep, "ModeRatio": ModeRatio}
	for _, c := range consts {
		v, ok := values[c]
		if !ok {
			t.Errorf("Mode constant %s is new: register it in modes (mode.go), then add it to this test's map", c)
			continue
		}
		if v.rules() == nil {
			t.Errorf("Mode constant %s (%q) has no line in modes (mode.go)", c, v)
		}
	}
	if len(Modes()) != len(consts) {
		t.Errorf("Modes() = %q, but the package declares %d Mode constants %q", Modes(), len(consts), consts)
	}
	seen := map[Mode]bool{}
	for _, m := range modes {
		if seen[m.name] || m.rules == nil || m.name == "" || m.name != Mode(strings.ToLower(string(m.name))) {
			t.Errorf("modes: %q is registered twice, without rules, or not in lower case (Parse lowers MODE)", m.name)
		}
		seen[m.name] = true
	}
}

// modeReasonConstants returns the names of the Reason constants that some mode gives (modeRules.reasons).
func modeReasonConstants(t *testing.T) []string {
	t.Helper()
	own := map[Reason]bool{}
	for _, m := range modes {
		for _, r := range m.rules.reasons() {
			own[r] = true
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "decide.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" || len(vs.Values) != len(vs.Names) {
					continue
				}
				for i, n := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						if v, err := strconv.Unquote(lit.Value); err == nil && own[Reason(v)] {
							names = append(names, n.Name)
						}
					}
				}
			}
		}
	}
	if len(names) < len(own) {
		t.Fatalf("found the constants %q in decide.go for the modes' reasons %v: has the declaration moved?", names, own)
	}
	return names
}

// TestNothingElseLooksAtTheMode: in the whole module (tests apart), no code switches on or compares a Mode, or
// names a Mode constant or a reason only a mode gives, outside policy.go (the declaration) and mode.go (the
// table); the reasons' own declaration and Reasons() are the exceptions. A switch elsewhere is where a mode missed
// in one place would quietly behave as another.
func TestNothingElseLooksAtTheMode(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root is not the policy package's parent: %v", err)
	}
	consts := append(modeConstants(t), modeReasonConstants(t)...)
	const policyPath = "github.com/dynopilot/dynopilot/policy"
	allowed := map[string]bool{"policy/policy.go": true, "policy/mode.go": true}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if n := e.Name(); path != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if allowed[rel] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		// Which name the file knows package policy by: "" inside it.
		pkg, uses := "", f.Name.Name == "policy" && filepath.Dir(rel) == "policy"
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == policyPath {
				pkg, uses = "policy", true
				if imp.Name != nil {
					pkg = imp.Name.Name
				}
			}
		}
		if !uses {
			return nil
		}
		checked++
		isMode := func(x ast.Expr) bool { // p.Mode, pc.Policy.Mode, ...
			s, ok := x.(*ast.SelectorExpr)
			return ok && s.Sel.Name == "Mode"
		}
		isConst := func(n ast.Node) (string, bool) {
			switch x := n.(type) {
			case *ast.Ident:
				if pkg == "" && slices.Contains(consts, x.Name) {
					return x.Name, true
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && pkg != "" && id.Name == pkg && slices.Contains(consts, x.Sel.Name) {
					return x.Sel.Name, true
				}
			}
			return "", false
		}
		declared := map[*ast.Ident]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.FuncDecl:
				if pkg == "" && x.Recv == nil && x.Name.Name == "Reasons" { // the vocabulary lists every reason
					return false
				}
			case *ast.ValueSpec:
				for _, id := range x.Names {
					declared[id] = true
				}
			case *ast.SwitchStmt:
				if x.Tag != nil && isMode(x.Tag) {
					t.Errorf("%s: a switch on a Mode: ask the mode's rules (mode.go) instead", fset.Position(x.Pos()))
				}
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && (isMode(x.X) || isMode(x.Y)) {
					t.Errorf("%s: a comparison with a Mode: ask the mode's rules (mode.go) instead", fset.Position(x.Pos()))
				}
			case *ast.SelectorExpr, *ast.Ident:
				if id, ok := x.(*ast.Ident); ok && declared[id] {
					return true
				}
				if c, ok := isConst(x); ok {
					t.Errorf("%s: %s named outside mode.go: ask the mode's rules instead", fset.Position(x.Pos()), c)
					return false
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked only %d files that use package policy: is the walk broken?", checked)
	}
}

// modePolicy parses a policy in mode m with every mode's thresholds set (each mode reads its own).
func modePolicy(t *testing.T, m Mode, more ...string) *Policy {
	t.Helper()
	s := Settings{App: "shop", Process: "web", Enabled: "true", Min: "1", Max: "50", UpCooldown: "0", DownCooldown: "0", UpStabilization: "0", DownStabilization: "0",
		MaxStepUp: "0", MaxStepDown: "0", FallbackAfter: "3", ProtectBusyMax: "1h", RuleSettings: RuleSettings{Mode: string(m), Target: "1", Tolerance: "0.1", UpAbove: "2", DownBelow: "1", UpBy: "2", DownBy: "1", PerDyno: "1", Safety: "0", Activation: "0"}}
	for i := 0; i+1 < len(more); i += 2 {
		switch more[i] {
		case "SAFETY":
			s.Safety = more[i+1]
		case "ACTIVATION":
			s.Activation = more[i+1]
		default:
			t.Fatalf("modePolicy: %s", more[i])
		}
	}
	p, err := s.Parse()
	if err != nil {
		t.Fatalf("MODE=%s: %v", m, err)
	}
	if p.Mode != m {
		t.Fatalf("MODE=%s parsed as %q", m, p.Mode)
	}
	return p
}

var modeValues = []float64{0, 1e-9, 0.05, 0.5, 0.95, 1, 1.05, 1.5, 2, 2.5, 3, 10, 1e6, 1e300}

// TestModeRules: every registered mode is complete: Parse takes it and names it in MODE's error, its reasons are
// in the vocabulary and are the ones it gives, Explain has a sentence for each, and Decide allocates nothing.
func TestModeRules(t *testing.T) {
	_, err := Settings{App: "shop", Process: "web", Enabled: "true", Min: "1", Max: "3", RuleSettings: RuleSettings{Mode: "no-such-mode"}}.Parse()
	for _, m := range Modes() {
		if err == nil || !strings.Contains(err.Error(), string(m)) {
			t.Errorf("MODE's error %v does not list %q", err, m)
		}
	}
	for _, m := range Modes() {
		t.Run(string(m), func(t *testing.T) {
			rules := m.rules()
			p := modePolicy(t, m)
			if ref := rules.reference(&p.Rule); !(ref > 0) || math.IsInf(ref, 0) {
				t.Errorf("reference = %v, want the mode's threshold (> 0)", ref)
			}
			own := rules.reasons()
			if len(own) == 0 {
				t.Fatal("no reasons")
			}
			for _, r := range own {
				if !slices.Contains(Reasons(), r) {
					t.Errorf("reason %q is not in Reasons(): add it there (and to the package doc)", r)
				}
				if r == ReasonActivation || r == ReasonBelowActivation {
					t.Errorf("reason %q is every mode's, given by recommend", r)
				}
			}
			reached := map[Reason]bool{}
			for _, v := range modeValues {
				for _, cur := range []int{1, 2, 5, 40, MaxQuantity} {
					n, r := rules.recommend(&p.Rule, cur, v)
					if !slices.Contains(own, r) {
						t.Errorf("recommend(%d, %v) gives %q, not one of reasons() %q", cur, v, r, own)
					}
					if n < 0 || n > MaxQuantity {
						t.Errorf("recommend(%d, %v) = %d, outside [0, MaxQuantity]", cur, v, n)
					}
					reached[r] = true
					d := Decide(p, nil, Input{Now: modeT0, Current: min(cur, 50), Value: v, ReadingOK: true})
					e := d.Explain()
					if strings.Contains(e, "%!") || strings.HasPrefix(e, "value "+formatAmount(v, p.Seconds)+":") {
						t.Errorf("Explain() = %q: the mode has no sentence for %s", e, r)
					}
					var b strings.Builder
					rules.explain(&b, &p.Rule, &d, r, formatAmount(v, p.Seconds))
					if s := b.String(); len(s) <= len("value "+formatAmount(v, p.Seconds)) || strings.Contains(s, "%!") {
						t.Errorf("explain(%s) = %q", r, s)
					}
				}
				if n := rules.activate(&p.Rule, p.Min, v+1); n < 1 || n > MaxQuantity {
					t.Errorf("activate(%v) = %d, want at least one dyno", v+1, n)
				}
			}
			for _, r := range own {
				if !reached[r] {
					t.Errorf("reason %q is never given for values %v", r, modeValues)
				}
			}
			d := Decide(p, nil, Input{Now: modeT0, Current: 0, Value: 5, ReadingOK: true})
			if d.Reason != ReasonActivation || d.Desired < 1 {
				t.Errorf("from zero: %d %s, want activation (%s)", d.Desired, d.Reason, d.Explain())
			}
		})
	}
}

// TestDecideAllocatesNothingInAnyMode: the usual path (a reading, cooldowns, stabilization) allocates nothing,
// whichever mode.
func TestDecideAllocatesNothingInAnyMode(t *testing.T) {
	for _, m := range Modes() {
		p := modePolicy(t, m)
		p.UpCooldown, p.DownCooldown, p.DownStabilization = time.Minute, 5*time.Minute, 2*time.Minute
		var st State
		in := Input{Now: modeT0, Current: 4, Size: "Standard-1X", LastScale: modeT0.Add(-time.Hour), ReadingOK: true}
		i := 0
		allocs := testing.AllocsPerRun(500, func() {
			in.Now = in.Now.Add(15 * time.Second)
			in.Value = modeValues[i%len(modeValues)]
			i++
			if d := Decide(p, &st, in); d.Desired != in.Current {
				in.Current, in.LastScale = d.Desired, in.Now
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", m, allocs)
		}
	}
}

// doubleMode is a mode added by a test, to show that the table is the only place a mode needs: it doubles the
// dynos above UP_ABOVE and never goes down, with reasons of its own.
type doubleMode struct{}

func (doubleMode) reference(p *Rule) float64        { return p.UpAbove * 10 }
func (doubleMode) activate(*Rule, int, float64) int { return 7 }
func (doubleMode) recommend(p *Rule, cur int, value float64) (int, Reason) {
	if value > p.UpAbove {
		return min(2*cur, MaxQuantity), "doubled"
	}
	return cur, "not_doubled"
}
func (doubleMode) quantityFor(*Rule, float64) (int, bool) { return 0, false }
func (doubleMode) reasons() []Reason                      { return []Reason{"doubled", "not_doubled"} }
func (doubleMode) explain(b *strings.Builder, _ *Rule, d *Decision, r Reason, v string) {
	b.WriteString("double mode reads " + v + " as " + string(r))
}
func (doubleMode) validate(p *Rule, t thresholds, errs *setting.List) bool {
	if !t.upAbove.set {
		errs.Add(setting.Errorf("UP_ABOVE", t.upAbove.raw, "double mode's threshold (required)"))
	}
	return true
}

// TestANewModeIsOneLine registers a fake mode and checks that Parse, Decide and Explain all use its rules, none
// another mode's: were any of them to switch on the mode with target mode as the default, this would fail.
func TestANewModeIsOneLine(t *testing.T) {
	saved := modes
	modes = append(slices.Clone(modes), struct {
		name  Mode
		rules modeRules
	}{"double", doubleMode{}})
	t.Cleanup(func() { modes = saved })

	_, err := Settings{App: "shop", Process: "web", Enabled: "true", Min: "1", Max: "3", RuleSettings: RuleSettings{Mode: "bogus"}}.Parse()
	if err == nil || !strings.Contains(err.Error(), "target, step, ratio, double") {
		t.Errorf("MODE's error does not list the new mode: %v", err)
	}
	_, err = Settings{App: "shop", Process: "web", Enabled: "true", Min: "1", Max: "30", UpCooldown: "0", DownCooldown: "0", UpStabilization: "0", DownStabilization: "0",
		MaxStepUp: "0", MaxStepDown: "0", FallbackAfter: "3", RuleSettings: RuleSettings{Mode: "Double", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0", Safety: "0"}}.Parse()
	if err == nil || !strings.Contains(err.Error(), "double mode's threshold") {
		t.Errorf("the new mode's validate was not asked: %v", err)
	}
	p, err := Settings{App: "shop", Process: "web", Enabled: "true", Min: "1", Max: "30", UpCooldown: "0", DownCooldown: "0", UpStabilization: "0",
		DownStabilization: "0", MaxStepUp: "0", MaxStepDown: "0", FallbackAfter: "3", RuleSettings: RuleSettings{Mode: "Double", UpAbove: "2s", Tolerance: "0.1", UpBy: "1", DownBy: "1", Activation: "0", Safety: "0"}}.Parse()
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Mode != "double" || !p.Seconds {
		t.Errorf("parsed as %q, Seconds %v", p.Mode, p.Seconds)
	}
	for _, tc := range []struct {
		cur     int
		value   float64
		desired int
		reason  Reason
		explain string
	}{
		{3, 2.5, 6, "doubled", "double mode reads 2.5s as doubled: 3 -> 6"},
		{3, 0.1, 3, "not_doubled", "double mode reads 0.1s as not_doubled: stay at 3"},
		{20, 9, 30, ReasonAtMax, "double mode reads 9s as doubled: 20 -> 40, capped at MAX=30: 20 -> 30"},
		{0, 1, 7, ReasonActivation, "value 1s is above ACTIVATION=0s at zero dynos: 0 -> 7"},
	} {
		d := Decide(p, nil, Input{Now: modeT0, Current: tc.cur, Value: tc.value, ReadingOK: true})
		if d.Desired != tc.desired || d.Reason != tc.reason || d.Target != 20 || d.Explain() != tc.explain {
			t.Errorf("%d at %v: %d %s target %v %q, want %d %s target 20 %q", tc.cur, tc.value, d.Desired, d.Reason, d.Target,
				d.Explain(), tc.desired, tc.reason, tc.explain)
		}
	}
}

// TestUnknownModeNeverScales: a hand-built Policy whose Mode is not registered (Parse refuses one) reads nothing:
// every reading counts as failed, so it holds, only the bounds move it, and Explain says why.
func TestUnknownModeNeverScales(t *testing.T) {
	p := modePolicy(t, ModeTarget)
	p.Mode = "bogus"
	var st State
	d := Decide(p, &st, Input{Now: modeT0, Current: 3, Value: 100, ReadingOK: true})
	if d.Desired != 3 || d.Reason != ReasonReadingFailed || d.ReadingOK || d.Target != 0 {
		t.Errorf("unknown mode: %d %s ReadingOK %v target %v, want a hold on an unusable reading", d.Desired, d.Reason, d.ReadingOK, d.Target)
	}
	if want := `MODE="bogus" is not a mode (target, step, ratio), so no reading can be used: holding at 3`; !strings.HasPrefix(d.Explain(), want) {
		t.Errorf("Explain() = %q, want it to start %q", d.Explain(), want)
	}
	if d := Decide(p, &st, Input{Now: modeT0, Current: 80, Value: 0, ReadingOK: true}); d.Desired != 50 || d.Reason != ReasonLowerToMax {
		t.Errorf("unknown mode above MAX: %d %s, want 50 lower_to_max", d.Desired, d.Reason)
	}
}
