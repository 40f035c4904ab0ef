package sim_test

import (
	"os"
	"path/filepath"
	"testing"
)

// tracePath finds a shared trace: in /work/shared/traces (where they live in this workspace) or in
// DYNOPILOT_TRACES; the test is skipped when neither has it.
func tracePath(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("DYNOPILOT_TRACES"), "../../shared/traces", "/work/shared/traces"} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("trace %s not found (set DYNOPILOT_TRACES to the traces directory)", name)
	return ""
}
